#include "proxy/ops/metrics.h"

namespace s2s {

void CounterMap::add(std::string_view label, uint64_t n) {
    auto it = values_.find(label);
    if (it == values_.end()) it = values_.emplace(std::string(label), 0).first;
    it->second += n;
}

uint64_t CounterMap::get(std::string_view label) const {
    auto it = values_.find(label);
    return it == values_.end() ? 0 : it->second;
}

void Histogram::observe(double seconds) {
    if (seconds < 0) seconds = 0;
    for (size_t i = 0; i < kBounds.size(); ++i)
        if (seconds <= kBounds[i]) ++buckets_[i];
    ++count_;
    sum_ += seconds;
}

Metrics& metrics() {
    static Metrics m;
    return m;
}

}  // namespace s2s
