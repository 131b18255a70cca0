// proxy/ops/loop_lag: the worst delay of the event loop over a sliding window.
#include <doctest/doctest.h>

#include <uv.h>

#include <chrono>
#include <thread>

#include "proxy/ops/loop_lag.h"

using namespace s2s;

namespace {
constexpr uint64_t kMs = 1000000;  // ns
}  // namespace

TEST_CASE("loop_lag: the worst delay of a window is kept through the next, then ages out") {
    LoopLag lag;
    CHECK(lag.worst_seconds() == 0);
    lag.observe(1000 * kMs, 1003 * kMs);  // 3 ms late
    lag.observe(1250 * kMs, 1250 * kMs);  // on time
    lag.observe(1500 * kMs, 1400 * kMs);  // early counts as 0
    CHECK(lag.worst_seconds() == doctest::Approx(0.003));
    lag.observe(2000 * kMs, 2120 * kMs);  // 120 ms
    CHECK(lag.worst_seconds() == doctest::Approx(0.120));
    // Next window (the first started at 0): the worst of the previous one still shows.
    lag.observe(10500 * kMs, 10501 * kMs);
    CHECK(lag.worst_seconds() == doctest::Approx(0.120));
    // The window after that: it is gone.
    lag.observe(20600 * kMs, 20602 * kMs);
    CHECK(lag.worst_seconds() == doctest::Approx(0.002));
}

TEST_CASE("loop_lag: a stall longer than two windows is reported, not aged out by its own length") {
    LoopLag lag;
    lag.observe(0, 1 * kMs);
    lag.observe(250 * kMs, 25250 * kMs);  // the loop was stuck for 25 s
    CHECK(lag.worst_seconds() == doctest::Approx(25.0));
}

TEST_CASE("loop_lag: a callback that blocks the loop shows as lag") {
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    LoopLag lag;
    lag.start(&loop);
    uv_timer_t busy;
    uv_timer_init(&loop, &busy);
    uv_timer_start(
        &busy, [](uv_timer_t*) { std::this_thread::sleep_for(std::chrono::milliseconds(400)); }, 100, 0);
    uv_timer_t end;
    uv_timer_init(&loop, &end);
    end.data = &lag;
    uv_timer_start(
        &end,
        [](uv_timer_t* t) {
            static_cast<LoopLag*>(t->data)->stop();
            uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
        },
        900, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&busy), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    // The tick due at 250 ms ran after the 400 ms sleep that began at 100 ms.
    CHECK(lag.worst_seconds() >= 0.2);
    CHECK(lag.worst_seconds() < 2.0);
}
