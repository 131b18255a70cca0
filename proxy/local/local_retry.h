// How a link to the local server comes back after it closed (LocalOut, LocalComponent): while
// stanzas wait it retries with a growing delay, and once the server has been unreachable for
// local.queue_timeout it gives up on them (they are bounced) until the next stanza.
#pragma once

#include <cstdint>

namespace s2s {

class LocalRetry {
public:
    static constexpr uint64_t kFirstRetryMs = 250;
    static constexpr uint64_t kMaxRetryMs = 5000;

    enum class Next {
        Idle,    // nothing waits: connect again when a stanza comes
        GiveUp,  // unreachable for queue_timeout: bounce what waits, then as Idle
        Retry,   // try again after delay_ms
    };
    struct Decision {
        Next next;
        uint64_t delay_ms = 0;  // with Retry
    };

    // The link closed at loop time `now` (`was_ready`: it had been up; `waiting`: stanzas queued).
    [[nodiscard]] Decision after_close(bool was_ready, bool waiting, uint64_t now, uint64_t queue_timeout_ms);
    // The link is up: the next failure starts a new count.
    void ready() noexcept {
        down_since_ = 0;
        delay_ = kFirstRetryMs;
    }

private:
    uint64_t delay_ = kFirstRetryMs;
    uint64_t down_since_ = 0;  // loop time of the first failure in a row; 0 when up
};

}  // namespace s2s
