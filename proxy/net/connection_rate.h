// New connections per second from one client address (listen.s2s.*.max_connection_rate_per_host):
// a token bucket per address (proxy/net/shaper's TokenBucket, one connection a token), so a client
// may open `rate` connections at once and `rate` a second after that. A refused connection is
// closed before any TLS work, which is what makes a flood of canned ClientHellos cheap.
//
// The table is keyed by peer input, so it is bounded and expires: a bucket that has filled up
// again says nothing an absent one would not, and such buckets are dropped by a sweep that runs
// when the table has doubled since the last one (amortised O(1) per connection). If it still
// holds kMaxHosts addresses after a sweep, a connection from a new address is refused: that many
// distinct addresses within about a second is a flood, not federation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "common/config/config.h"
#include "proxy/net/shaper.h"

namespace s2s {

class ConnectionRate {
public:
    static constexpr size_t kMaxHosts = 65536;

    enum class Verdict {
        Allowed,
        OverRate,   // this address used up its connections for now
        TableFull,  // kMaxHosts other addresses are being tracked
    };

    // A new connection from `host` at loop time `now_ms`, under `limit` connections per second
    // (infinite: always allowed, nothing kept).
    [[nodiscard]] Verdict admit(const std::string& host, const Limit& limit, uint64_t now_ms);

    // Addresses tracked now (some may be full buckets waiting for the next sweep).
    [[nodiscard]] size_t size() const noexcept { return buckets_.size(); }

private:
    void sweep(uint64_t now_ms);

    std::unordered_map<std::string, TokenBucket> buckets_;
    size_t sweep_at_ = 1024;
};

}  // namespace s2s
