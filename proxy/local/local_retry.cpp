#include "proxy/local/local_retry.h"

#include <algorithm>

namespace s2s {

LocalRetry::Decision LocalRetry::after_close(bool was_ready, bool waiting, uint64_t now, uint64_t queue_timeout_ms) {
    if (!waiting) return {Next::Idle};
    if (was_ready || down_since_ == 0) down_since_ = now;
    if (now - down_since_ >= queue_timeout_ms) {
        down_since_ = 0;
        return {Next::GiveUp};
    }
    // A link that was up is retried at once (a restart); failed attempts wait longer each time.
    uint64_t delay = was_ready ? kFirstRetryMs : delay_;
    delay_ = std::min(delay_ * 2, kMaxRetryMs);
    return {Next::Retry, delay};
}

}  // namespace s2s
