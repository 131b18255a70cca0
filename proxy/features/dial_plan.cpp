#include "proxy/features/dial_plan.h"

#include "proxy/ops/metrics.h"

namespace s2s {

std::string DialPlan::refusal(const Candidate& c, const LogContext& log) const {
    const auto* addr = reinterpret_cast<const sockaddr*>(&c.addr);
    const char* reason = nullptr;
    const char* why = nullptr;
    if (own_listeners_ && own_listeners_->reaches(addr)) {
        reason = "own_listener";
        why = "s2s-proxy itself listens there";
    } else if (!c.configured && ctx_.config.outgoing.denied_networks.contains(addr)) {
        reason = "denied_network";
        why = "it is in s2s.outgoing.denied_networks";
    } else {
        return {};
    }
    metrics().outgoing_refused.add(reason);
    S2S_LOG_NOTICE(log, "candidate-refused", "not connecting to %s: %s%s", c.describe().c_str(), why,
                   c.configured ? " (s2s.outgoing.address)" : "");
    // The text goes to local senders: it names the case, not the address.
    if (c.configured) return "s2s.outgoing.address for " + remote_ + " leads back into s2s-proxy";
    return "DNS for " + remote_ + " points at a forbidden address";
}

const Candidate* DialPlan::next(const LogContext& log) {
    while (next_ < candidates_.size()) {
        const Candidate& c = candidates_[next_++];
        std::string refused = refusal(c, log);
        if (refused.empty()) return &c;
        refused_ = std::move(refused);
    }
    return nullptr;
}

}  // namespace s2s
