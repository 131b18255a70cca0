#include "proxy/ops/loop_lag.h"

#include <algorithm>

namespace s2s {

namespace {
constexpr uint64_t kNsPerMs = 1000000;
}  // namespace

void LoopLag::start(uv_loop_t* loop) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    uv_timer_start(&timer_, on_tick, kTickMs, kTickMs);
    uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
    running_ = true;
    uint64_t now = uv_hrtime();
    due_ns_ = now + kTickMs * kNsPerMs;
    window_start_ns_ = now;
}

void LoopLag::stop() {
    if (!running_) return;
    running_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void LoopLag::observe(uint64_t due_ns, uint64_t now_ns) {
    if (now_ns - window_start_ns_ >= kWindowMs * kNsPerMs) {
        // A window with no tick at all (the loop stalled through it) still ends here.
        previous_ns_ = now_ns - window_start_ns_ >= 2 * kWindowMs * kNsPerMs ? 0 : worst_ns_;
        worst_ns_ = 0;
        window_start_ns_ = now_ns;
    }
    if (now_ns > due_ns) worst_ns_ = std::max(worst_ns_, now_ns - due_ns);
}

double LoopLag::worst_seconds() const noexcept {
    return static_cast<double>(std::max(worst_ns_, previous_ns_)) * 1e-9;
}

void LoopLag::on_tick(uv_timer_t* t) noexcept {
    auto* self = static_cast<LoopLag*>(t->data);
    uint64_t now = uv_hrtime();
    self->observe(self->due_ns_, now);
    // The timer repeats from when it ran, so the next tick is due one interval from now.
    self->due_ns_ = now + kTickMs * kNsPerMs;
}

}  // namespace s2s
