// How late the event loop runs, for /metrics (event_loop_lag_seconds).
//
// A repeating timer asks to fire every kTickMs; each time it fires, the delay past the moment it
// was due is how long the loop was busy elsewhere (a long callback, a burst of handshakes). The
// gauge is the worst delay seen over the last kWindowMs to 2 * kWindowMs, so a scrape every 15 s
// sees every stall, and one stall ages out. The timer does not keep the loop alive (uv_unref).
#pragma once

#include <uv.h>

#include <cstdint>

namespace s2s {

class LoopLag {
public:
    static constexpr uint64_t kTickMs = 250;
    static constexpr uint64_t kWindowMs = 10000;

    // Starts the timer on `loop`; stop() closes it (the object must outlive the close).
    void start(uv_loop_t* loop);
    void stop();

    // Notes that the tick due at `due_ns` ran at `now_ns` (uv_hrtime clock); exposed for tests.
    void observe(uint64_t due_ns, uint64_t now_ns);
    // The worst delay over the current and the previous window, in seconds.
    [[nodiscard]] double worst_seconds() const noexcept;

private:
    static void on_tick(uv_timer_t* t) noexcept;

    uv_timer_t timer_{};
    bool running_ = false;
    uint64_t due_ns_ = 0;           // when the next tick should run
    uint64_t window_start_ns_ = 0;  // start of the current window
    uint64_t worst_ns_ = 0;         // worst delay in the current window
    uint64_t previous_ns_ = 0;      // worst delay in the previous window
};

}  // namespace s2s
