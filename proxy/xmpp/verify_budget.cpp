#include "proxy/xmpp/verify_budget.h"

namespace s2s {

VerifyBudget::Refusal VerifyBudget::take(const std::string& host, size_t max_per_host, size_t max_total) {
    if (max_total != 0 && total_ >= max_total) return Refusal::Total;
    auto it = per_host_.find(host);
    if (max_per_host != 0 && it != per_host_.end() && it->second >= max_per_host) return Refusal::PerHost;
    if (it == per_host_.end()) it = per_host_.emplace(host, 0).first;
    ++it->second;
    ++total_;
    return Refusal::None;
}

void VerifyBudget::give_back(const std::string& host) {
    auto it = per_host_.find(host);
    if (it == per_host_.end()) return;
    if (--it->second == 0) per_host_.erase(it);
    --total_;
}

size_t VerifyBudget::of(const std::string& host) const {
    auto it = per_host_.find(host);
    return it == per_host_.end() ? 0 : it->second;
}

}  // namespace s2s
