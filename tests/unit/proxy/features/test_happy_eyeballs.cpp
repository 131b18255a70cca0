// Happy eyeballs (proxy/features/happy_eyeballs): one target's addresses in two families raced over
// loopback, against a listener that accepts and a blackhole (a listener whose accept queue is full,
// so further connection attempts hang).
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "proxy/features/happy_eyeballs.h"
#include "proxy/ops/metrics.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/plan_world.h"

using namespace s2s;

namespace {

Candidate at(const char* ip, uint16_t port) {
    Candidate c{};
    c.host = "host.b.test";
    if (std::string(ip).find(':') != std::string::npos) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&c.addr);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        REQUIRE(inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1);
    } else {
        auto* sin = reinterpret_cast<sockaddr_in*>(&c.addr);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        REQUIRE(inet_pton(AF_INET, ip, &sin->sin_addr) == 1);
    }
    return c;
}

// [::1]:port where connection attempts hang: listen(0) and a few connections never accepted.
struct Blackhole {
    int listener = -1;
    std::vector<int> fillers;
    explicit Blackhole(uint16_t port) {
        Candidate c = at("::1", port);
        listener = socket(AF_INET6, SOCK_STREAM, 0);
        REQUIRE(listener >= 0);
        int one = 1;
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        REQUIRE(bind(listener, reinterpret_cast<const sockaddr*>(&c.addr), sizeof(sockaddr_in6)) == 0);
        REQUIRE(listen(listener, 0) == 0);
        for (int i = 0; i < 3; ++i) {
            int f = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
            (void)connect(f, reinterpret_cast<const sockaddr*>(&c.addr), sizeof(sockaddr_in6));
            fillers.push_back(f);
            usleep(20000);
        }
    }
    ~Blackhole() {
        for (int f : fillers) ::close(f);
        ::close(listener);
    }
};

// A plan, and a listener on 127.0.0.1 that accepts (and holds) every connection.
struct World : test::PlanWorld {
    int accepted = 0;
    std::vector<uv_tcp_t*> conns;
    uint16_t port = 0;
    World() {
        t.listen([this](uv_stream_t* l) {
            auto* c = new uv_tcp_t;
            uv_tcp_init(t.uv(), c);
            REQUIRE(uv_accept(l, reinterpret_cast<uv_stream_t*>(c)) == 0);
            conns.push_back(c);
            ++accepted;
        });
        port = ntohs(reinterpret_cast<const sockaddr_in*>(t.address())->sin_port);
    }
    std::unique_ptr<HappyEyeballs> eyeballs;
    int got = -2;  // the fd reported (-1: failed), -2 until then
    std::string error;
    uint64_t started = 0;
    // Races `first` against `second` (connect timeout 5 s); got and error say how it ended.
    void race(const Candidate& first, const Candidate& second) {
        plan->reset({first, second});
        REQUIRE(plan->next(log));
        eyeballs = std::make_unique<HappyEyeballs>(t.uv());
        started = t.loop().now_ms();
        eyeballs->start(*plan, log, 5000, [this](int fd, const std::string& e) { got = fd, error = e; });
    }
    bool ended(uint64_t max_ms = 5000) { return t.run_until([this] { return got != -2; }, max_ms); }
    ~World() {
        if (got >= 0) ::close(got);
        for (auto* c : conns) uv_close(reinterpret_cast<uv_handle_t*>(c), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    }
};

}  // namespace

TEST_CASE("happy_eyeballs: the preferred family never answers; the other connects after the delay and wins") {
    World w;
    Blackhole hole(w.port);
    w.race(at("::1", w.port), at("127.0.0.1", w.port));
    REQUIRE(w.ended(3000));
    uint64_t took = w.t.loop().now_ms() - w.started;
    CHECK(w.got >= 0);
    CHECK(w.error.empty());
    CHECK(took >= HappyEyeballs::kConnectionAttemptDelayMs);
    CHECK(took < 2000);  // well under the connect timeout
    CHECK(format_sockaddr(reinterpret_cast<const sockaddr*>(&w.plan->current().addr)) ==
          "127.0.0.1:" + std::to_string(w.port));
    CHECK_FALSE(w.eyeballs->running());
    CHECK(w.plan->next(w.log) == nullptr);  // both addresses were dialled
    REQUIRE(w.t.run_until([&] { return w.accepted == 1; }));
}

TEST_CASE("happy_eyeballs: the preferred family connects at once; the other is never dialled and stays in the plan") {
    World w;
    w.race(at("127.0.0.1", w.port), at("::1", w.port));
    REQUIRE(w.ended());
    CHECK(w.got >= 0);
    CHECK(w.plan->current().addr.ss_family == AF_INET);
    w.t.run_for(400);  // past the delay: nothing more is dialled
    const Candidate* next = w.plan->next(w.log);
    REQUIRE(next);  // left for a fallback
    CHECK(next->addr.ss_family == AF_INET6);
}

TEST_CASE("happy_eyeballs: when the first is refused, the other starts at once; both failing says why for each") {
    World w;
    uint16_t closed_port = w.port;
    // nothing listens on 127.0.0.3 or ::1 at that port
    w.race(at("127.0.0.3", closed_port), at("::1", closed_port));
    REQUIRE(w.ended());
    CHECK(w.got == -1);
    CHECK(w.t.loop().now_ms() - w.started < HappyEyeballs::kConnectionAttemptDelayMs);
    CHECK(w.error.find("(127.0.0.3 port " + std::to_string(closed_port) + "): connection refused; ") != std::string::npos);
    CHECK(w.error.find("(::1 port " + std::to_string(closed_port) + "): connection refused") != std::string::npos);
}

TEST_CASE("happy_eyeballs: cancelled while racing, nothing is reported and every handle closes") {
    World w;
    Blackhole hole(w.port);
    w.race(at("::1", w.port), at("127.0.0.3", w.port));
    w.t.run_for(300);
    CHECK(w.eyeballs->running());
    w.eyeballs.reset();
    w.t.run_for(50);
    CHECK(w.got == -2);
}
