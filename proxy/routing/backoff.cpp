#include "proxy/routing/backoff.h"

#include <algorithm>

#include "common/base/random.h"

namespace s2s {

uint64_t BackoffTable::failed(const std::string& host, const std::string& error, uint64_t now, uint64_t cap_ms,
                              size_t max_entries) {
    sweep(now);
    cap_ms = std::max<uint64_t>(cap_ms, 1);
    max_entries = std::max<size_t>(max_entries, 1);
    auto it = entries_.find(host);
    if (it == entries_.end()) {
        while (entries_.size() >= max_entries && !order_.empty()) {
            Node n = std::move(order_.front());
            order_.pop_front();
            auto e = entries_.find(n.host);
            if (e == entries_.end() || e->second.seq != n.seq) continue;  // refreshed since, or forgotten
            entries_.erase(e);
            ++evicted_;
        }
        it = entries_.emplace(host, Entry{}).first;
    }
    Entry& b = it->second;
    uint64_t base = b.delay == 0 ? kFirstDelayMs : std::min(b.delay * 2, cap_ms);
    uint8_t r = 0;
    (void)random_bytes(&r, 1);
    uint64_t jitter = base / 5 * r / 255;  // up to +20%
    b.delay = std::min(base + jitter, cap_ms);
    b.until = now + b.delay;
    b.error = error;
    b.seq = ++next_seq_;
    order_.push_back(Node{now + cap_ms + kForgetSlackMs, host, b.seq});
    if (order_.size() > 2 * entries_.size() + 64) compact();
    return b.delay;
}

void BackoffTable::forget(const std::string& host) { entries_.erase(host); }

void BackoffTable::sweep(uint64_t now) {
    while (!order_.empty() && order_.front().forget_at <= now) {
        const Node& n = order_.front();
        auto e = entries_.find(n.host);
        if (e != entries_.end() && e->second.seq == n.seq) entries_.erase(e);
        order_.pop_front();
    }
}

void BackoffTable::compact() {
    std::deque<Node> kept;
    for (auto& n : order_) {
        auto e = entries_.find(n.host);
        if (e != entries_.end() && e->second.seq == n.seq) kept.push_back(std::move(n));
    }
    order_.swap(kept);
}

uint64_t BackoffTable::remaining(const std::string& host, uint64_t now) const {
    auto it = entries_.find(host);
    return it == entries_.end() || it->second.until <= now ? 0 : it->second.until - now;
}

const BackoffTable::Entry* BackoffTable::find(const std::string& host) const {
    auto it = entries_.find(host);
    return it == entries_.end() ? nullptr : &it->second;
}

size_t BackoffTable::waiting(uint64_t now) const {
    return static_cast<size_t>(
        std::count_if(entries_.begin(), entries_.end(), [now](const auto& e) { return e.second.until > now; }));
}

}  // namespace s2s
