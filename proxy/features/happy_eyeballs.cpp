#include "proxy/features/happy_eyeballs.h"

#include <unistd.h>

#include <utility>

namespace s2s {

// One TCP connect with its deadline; freed once both handles have closed.
struct HappyEyeballs::Attempt {
    uv_tcp_t tcp{};
    uv_connect_t req{};
    uv_timer_t timer{};
    HappyEyeballs* owner = nullptr;  // null once closed: late callbacks are ignored
    const Candidate* candidate = nullptr;
    int status = 0;                  // an error found when dialling, reported from the timer
    bool tcp_open = false;           // the socket handle was made (and must be closed)
    int open_handles = 1;
};

void HappyEyeballs::free_attempt(uv_handle_t* h) noexcept {
    auto* a = static_cast<Attempt*>(h->data);
    if (--a->open_handles == 0) delete a;
}

void HappyEyeballs::start(DialPlan& plan, const LogContext& log, uint64_t timeout_ms, Done done) {
    cancel();
    plan_ = &plan;
    log_ = log;
    timeout_ms_ = timeout_ms;
    done_ = std::move(done);
    errors_.clear();
    first_ = dial(plan.current());
    partner_ = plan.partner();
    if (!partner_) return;
    delay_ = new uv_timer_t{};
    uv_timer_init(loop_, delay_);
    delay_->data = this;
    uv_timer_start(delay_, [](uv_timer_t* t) { static_cast<HappyEyeballs*>(t->data)->start_second(); },
                   kConnectionAttemptDelayMs, 0);
}

HappyEyeballs::Attempt* HappyEyeballs::dial(const Candidate& c) {
    auto* a = new Attempt;
    a->owner = this;
    a->candidate = &c;
    a->tcp.data = a->timer.data = a->req.data = a;
    uv_timer_init(loop_, &a->timer);
    int rc = uv_tcp_init(loop_, &a->tcp);
    a->tcp_open = rc == 0;
    a->open_handles += a->tcp_open;
    if (rc == 0)
        rc = uv_tcp_connect(&a->req, &a->tcp, reinterpret_cast<const sockaddr*>(&c.addr), [](uv_connect_t* r, int status) {
            auto* at = static_cast<Attempt*>(r->data);
            if (at->owner) at->owner->finished(at, status);
        });
    a->status = rc;
    // the deadline, or at once (next loop turn) for an error found now
    uv_timer_start(&a->timer, [](uv_timer_t* t) {
        auto* at = static_cast<Attempt*>(t->data);
        if (at->owner) at->owner->finished(at, at->status ? at->status : UV_ETIMEDOUT);
    }, rc ? 0 : timeout_ms_, 0);
    return a;
}

void HappyEyeballs::close(Attempt*& a) noexcept {
    if (!a) return;
    a->owner = nullptr;
    if (a->tcp_open) uv_close(reinterpret_cast<uv_handle_t*>(&a->tcp), free_attempt);
    uv_close(reinterpret_cast<uv_handle_t*>(&a->timer), free_attempt);
    a = nullptr;
}

void HappyEyeballs::stop_delay() noexcept {
    if (!delay_) return;
    uv_close(reinterpret_cast<uv_handle_t*>(delay_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    delay_ = nullptr;
}

void HappyEyeballs::cancel() noexcept {
    close(first_);
    close(second_);
    stop_delay();
    done_ = nullptr;
}

void HappyEyeballs::start_second() noexcept {
    stop_delay();
    if (!partner_ || second_) return;
    plan_->dialled(*partner_);
    S2S_LOG_INFO(log_, "connecting", "to %s (happy eyeballs: the other address family)", partner_->describe().c_str());
    second_ = dial(*partner_);
}

void HappyEyeballs::finished(Attempt* a, int status) noexcept {
    bool was_first = a == first_;
    if (status == 0) {
        uv_os_fd_t fd = -1;
        int dup_fd = uv_fileno(reinterpret_cast<uv_handle_t*>(&a->tcp), &fd) == 0 ? ::dup(fd) : -1;
        if (dup_fd >= 0) {
            plan_->won(*a->candidate);
            if (first_ && second_)
                S2S_LOG_INFO(log_, "happy-eyeballs", "%s connected first; the other attempt is closed",
                             a->candidate->describe().c_str());
            Done done = std::move(done_);
            cancel();
            if (done) done(dup_fd, "");
            return;
        }
        status = UV_EMFILE;
    }
    if (!errors_.empty()) errors_ += "; ";
    errors_ += a->candidate->describe() + ": " + (status == UV_ETIMEDOUT ? "timed out" : uv_strerror(status));
    close(was_first ? first_ : second_);
    if (was_first && delay_) start_second();  // the first failed before the delay ran out
    if (running()) return;
    Done done = std::move(done_);
    if (done) done(-1, errors_);
}

}  // namespace s2s
