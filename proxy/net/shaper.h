// A shaper (`[shaper.NAME] max_rate`, bytes per second) as a token bucket: each connection that
// a shaper applies to gets its own bucket, as in MongooseIM. Reading takes tokens; when the
// bucket runs dry the stream stops reading until enough have come back, and the TCP window
// then slows the sender. The bucket holds at most one second's worth, so a quiet connection may
// send a burst of max_rate bytes at once and is held to max_rate after that.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/config/config.h"

namespace s2s {

// A listener's `shaper` as bytes per second for one remote domain: "none" (0: no shaper), a
// [shaper.NAME], or, as in MongooseIM's listeners, the name of an [access] rule whose value is a
// shaper name or "none", evaluated for `remote` ("" before a domain is known, when only acls that
// need no domain match; no match is no shaper).
[[nodiscard]] uint64_t shaper_rate(const Config& config, const std::string& shaper, std::string_view remote);

// The bucket itself counts any unit: the [antispam] limits (proxy/xmpp/rate_limits.h) count
// stanzas per remote domain with it, with a capacity (burst) of their own.
class TokenBucket {
public:
    // rate: tokens (bytes, stanzas...) per second (> 0); now_ms: loop time; capacity: what a full
    // bucket holds (the burst), 0 for one second's worth.
    TokenBucket(uint64_t rate, uint64_t now_ms, uint64_t capacity = 0);

    // Takes `bytes` that were just read; returns how many ms reading must pause (0: none).
    uint64_t take(uint64_t bytes, uint64_t now_ms);
    // A new rate and capacity as in the constructor (SIGHUP); what was taken stays taken.
    void set_rate(uint64_t rate, uint64_t capacity = 0) noexcept;
    // Whether it is full again: then it is no different from a new bucket.
    [[nodiscard]] bool full(uint64_t now_ms) { return available(now_ms) >= static_cast<int64_t>(capacity_); }

    // Tokens now (may be negative while a pause pays a debt back).
    [[nodiscard]] int64_t available(uint64_t now_ms) {
        refill(now_ms);
        return tokens_;
    }
    [[nodiscard]] uint64_t rate() const noexcept { return rate_; }
    [[nodiscard]] uint64_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] int64_t tokens() const noexcept { return tokens_; }

private:
    void refill(uint64_t now_ms);

    uint64_t rate_;
    uint64_t capacity_;
    int64_t tokens_;     // may go negative: the debt a pause pays back
    uint64_t last_ms_;
    uint64_t remainder_ = 0;  // rate * ms not yet turned into whole tokens (keeps slow rates exact)
};

}  // namespace s2s
