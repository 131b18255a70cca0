// The contacts our users have approved or asked for, as s2s-proxy saw them go out: each
// (local bare JID, remote bare JID) pair to which one of our users sent presence type='subscribed'
// or 'subscribe'. The [antispam] subscription limit (rate_limits.h) lets a subscription request
// from such a remote JID to that user through at once. Bounded and expiring (STYLE.md 17): at
// most `max_pairs`, the least recently seen forgotten first, and a pair not seen again for
// `ttl_ms` is forgotten; every operation is a hash lookup plus O(1) list moves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace s2s {

class KnownContacts {
public:
    static constexpr std::size_t kDefaultMaxPairs = 100'000;
    static constexpr uint64_t kDefaultTtlMs = 30ull * 24 * 3600 * 1000;  // 30 days

    explicit KnownContacts(std::size_t max_pairs = kDefaultMaxPairs, uint64_t ttl_ms = kDefaultTtlMs)
        : max_pairs_(max_pairs == 0 ? 1 : max_pairs), ttl_ms_(ttl_ms) {}

    // Our user `local` (bare JID, normalised) sent a subscription presence to `remote` at `now_ms`.
    void remember(std::string_view local, std::string_view remote, uint64_t now_ms);
    // Whether `local` sent one to `remote` within the last ttl_ms.
    [[nodiscard]] bool knows(std::string_view local, std::string_view remote, uint64_t now_ms);

    [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }
    // Pairs forgotten to stay within max_pairs (not by age).
    [[nodiscard]] uint64_t evicted() const noexcept { return evicted_; }

private:
    struct Pair {
        std::string key;  // local '\n' remote
        uint64_t seen_ms;
    };
    static std::string key_of(std::string_view local, std::string_view remote);
    // Forgets pairs older than ttl_ms from the least recently seen end.
    void expire(uint64_t now_ms);

    std::size_t max_pairs_;
    uint64_t ttl_ms_;
    std::list<Pair> order_;  // most recently seen first
    std::unordered_map<std::string, std::list<Pair>::iterator> index_;
    uint64_t evicted_ = 0;
};

}  // namespace s2s
