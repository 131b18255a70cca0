#include "proxy/net/connection_rate.h"

#include <algorithm>

namespace s2s {

ConnectionRate::Verdict ConnectionRate::admit(const std::string& host, const Limit& limit, uint64_t now_ms) {
    if (limit.infinite) {
        buckets_.clear();
        return Verdict::Allowed;
    }
    uint64_t rate = static_cast<uint64_t>(std::max<int64_t>(limit.value, 1));
    auto it = buckets_.find(host);
    if (it == buckets_.end()) {
        if (buckets_.size() >= sweep_at_) sweep(now_ms);
        if (buckets_.size() >= kMaxHosts) return Verdict::TableFull;
        it = buckets_.emplace(host, TokenBucket(rate, now_ms)).first;
    } else if (it->second.rate() != rate) {
        it->second.set_rate(rate);  // reloaded
    }
    if (it->second.available(now_ms) < 1) return Verdict::OverRate;
    (void)it->second.take(1, now_ms);
    return Verdict::Allowed;
}

void ConnectionRate::sweep(uint64_t now_ms) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
        if (it->second.available(now_ms) >= static_cast<int64_t>(it->second.rate())) it = buckets_.erase(it);
        else ++it;
    }
    sweep_at_ = std::min(std::max<size_t>(1024, buckets_.size() * 2), kMaxHosts);
}

}  // namespace s2s
