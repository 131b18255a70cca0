// Happy eyeballs (RFC 8305) for the links s2s-proxy opens (s2s_out): the TCP connect to one
// candidate of the DialPlan, raced against the same target's address in the other family when it
// has one (DialPlan::partner). The first address (the family s2s.outgoing.ip_versions lists
// first) is dialled at once, the other kConnectionAttemptDelayMs later, or at once when the first
// fails sooner; the first connection to succeed is kept and the other attempt closed. Each attempt
// has its own deadline (s2s.outgoing.connection_timeout). A target with addresses in one family
// only is dialled alone, the same way.
//
// The winner's socket is handed over as a file descriptor of its own (the attempt's handle is
// closed), for the link to put under its Stream (uv_tcp_open); the plan's current() is then the
// winner, and the address raced counts as dialled in the plan only once its attempt started.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "common/base/log.h"
#include "proxy/features/dial_plan.h"

namespace s2s {

class HappyEyeballs {
public:
    // RFC 8305 §5's recommended Connection Attempt Delay (neither MongooseIM nor ejabberd has a
    // key for it).
    static constexpr uint64_t kConnectionAttemptDelayMs = 250;

    // `fd` >= 0: the connected socket, now the caller's; else `error` says why every attempt
    // failed ("HOST (IP port N): connection refused", one per attempt, "; " between them).
    using Done = std::function<void(int fd, const std::string& error)>;

    explicit HappyEyeballs(uv_loop_t* loop) : loop_(loop) {}
    ~HappyEyeballs() { cancel(); }
    HappyEyeballs(const HappyEyeballs&) = delete;
    HappyEyeballs& operator=(const HappyEyeballs&) = delete;

    // Dials plan.current() (and its partner, if any). `done` runs once, from a later libuv
    // callback, unless cancel() comes first.
    void start(DialPlan& plan, const LogContext& log, uint64_t timeout_ms, Done done);
    // Closes every attempt still running; `done` is not called.
    void cancel() noexcept;
    [[nodiscard]] bool running() const noexcept { return first_ || second_ || delay_; }

private:
    struct Attempt;
    [[nodiscard]] Attempt* dial(const Candidate& c);
    void start_second() noexcept;
    void stop_delay() noexcept;
    void finished(Attempt* a, int status) noexcept;
    static void close(Attempt*& a) noexcept;
    static void free_attempt(uv_handle_t* h) noexcept;

    uv_loop_t* loop_;
    DialPlan* plan_ = nullptr;
    LogContext log_{};
    uint64_t timeout_ms_ = 0;
    Done done_;
    const Candidate* partner_ = nullptr;  // the address raced against current(), null when none
    Attempt* first_ = nullptr;            // running attempts (each frees itself once closed)
    Attempt* second_ = nullptr;
    uv_timer_t* delay_ = nullptr;         // the Connection Attempt Delay, while it runs
    std::string errors_;
};

}  // namespace s2s
