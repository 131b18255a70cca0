#include "proxy/net/shaper.h"

#include <algorithm>

#include "proxy/net/access.h"

namespace s2s {

uint64_t shaper_rate(const Config& c, const std::string& shaper, std::string_view remote) {
    std::string name = shaper;
    if (!c.shapers.count(name) && c.access.count(name)) name = access_value(c, name, remote);
    auto it = c.shapers.find(name);
    return name == "none" || it == c.shapers.end() ? 0 : static_cast<uint64_t>(it->second.max_rate);
}

namespace {
// Rates above this are treated as this (1 TB/s): rate * 1000 must not overflow.
constexpr uint64_t kMaxRate = 1000ull * 1000 * 1000 * 1000;
uint64_t clamp_rate(uint64_t rate) { return std::min(std::max<uint64_t>(rate, 1), kMaxRate); }
uint64_t capacity_for(uint64_t rate, uint64_t capacity) { return capacity == 0 ? rate : std::min(capacity, kMaxRate); }
}  // namespace

TokenBucket::TokenBucket(uint64_t rate, uint64_t now_ms, uint64_t capacity)
    : rate_(clamp_rate(rate)),
      capacity_(capacity_for(rate_, capacity)),
      tokens_(static_cast<int64_t>(capacity_)),
      last_ms_(now_ms) {}

void TokenBucket::refill(uint64_t now_ms) {
    if (now_ms <= last_ms_) return;
    uint64_t elapsed = now_ms - last_ms_;
    last_ms_ = now_ms;
    // Only the time it takes to fill the bucket counts (this also keeps rate * elapsed small).
    uint64_t room = static_cast<uint64_t>(static_cast<int64_t>(capacity_) - tokens_);
    uint64_t fill_ms = room * 1000 / rate_ + 1;
    if (elapsed >= fill_ms) {
        tokens_ = static_cast<int64_t>(capacity_);
        remainder_ = 0;
        return;
    }
    // rate * elapsed / 1000, keeping the fraction for the next call (exact for slow rates).
    uint64_t scaled = rate_ * elapsed + remainder_;
    remainder_ = scaled % 1000;
    tokens_ = std::min<int64_t>(tokens_ + static_cast<int64_t>(scaled / 1000), static_cast<int64_t>(capacity_));
}

uint64_t TokenBucket::take(uint64_t bytes, uint64_t now_ms) {
    refill(now_ms);
    tokens_ -= static_cast<int64_t>(bytes);
    if (tokens_ >= 0) return 0;
    // Long enough for the debt to be paid back, rounded up.
    uint64_t debt = static_cast<uint64_t>(-tokens_);
    return (debt * 1000 + rate_ - 1) / rate_;
}

void TokenBucket::set_rate(uint64_t rate, uint64_t capacity) noexcept {
    rate_ = clamp_rate(rate);
    capacity_ = capacity_for(rate_, capacity);
    tokens_ = std::min<int64_t>(tokens_, static_cast<int64_t>(capacity_));
}

}  // namespace s2s
