#include "proxy/features/dial_plan.h"

#include <algorithm>

#include "proxy/ops/metrics.h"

namespace s2s {

const char* fallback_name(Fallback f) noexcept {
    switch (f) {
        case Fallback::Closed: return "closed";
        case Fallback::Tls: return "tls";
        case Fallback::Certificate: return "certificate";
        case Fallback::StreamError: return "stream_error";
        case Fallback::Timeout: return "timeout";
        case Fallback::Negotiation: return "negotiation";
    }
    return "?";
}

std::string DialPlan::refusal(const Candidate& c, const LogContext* log) const {
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
    if (!log) return why;
    metrics().outgoing_refused.add(reason);
    S2S_LOG_NOTICE(*log, "candidate-refused", "not connecting to %s: %s%s", c.describe().c_str(), why,
                   c.configured ? " (s2s.outgoing.address)" : "");
    // The text goes to local senders: it names the case, not the address.
    if (c.configured) return "s2s.outgoing.address for " + remote_ + " leads back into s2s-proxy";
    return "DNS for " + remote_ + " points at a forbidden address";
}

const Candidate* DialPlan::next(const LogContext& log) {
    while (next_ < candidates_.size()) {
        const Candidate& c = candidates_[next_++];
        if (was_dialled(c)) {
            S2S_LOG_DEBUG(log, "candidate-skipped", "%s: already dialled in this attempt", c.describe().c_str());
            continue;
        }
        std::string refused = refusal(c, &log);
        if (refused.empty()) {
            dialled(c);
            return current_ = &c;
        }
        refused_ = std::move(refused);
    }
    return nullptr;
}

namespace {

std::string address_of(const Candidate& c) { return format_sockaddr(reinterpret_cast<const sockaddr*>(&c.addr)); }

uint16_t port_of(const Candidate& c) {
    if (c.addr.ss_family == AF_INET6) return reinterpret_cast<const sockaddr_in6*>(&c.addr)->sin6_port;
    return reinterpret_cast<const sockaddr_in*>(&c.addr)->sin_port;
}

}  // namespace

bool DialPlan::was_dialled(const Candidate& c) const {
    return std::find(dialled_.begin(), dialled_.end(), address_of(c)) != dialled_.end();
}

void DialPlan::dialled(const Candidate& c) {
    if (!was_dialled(c)) dialled_.push_back(address_of(c));
}

const Candidate* DialPlan::partner() const {
    if (!current_) return nullptr;
    for (size_t i = next_; i < candidates_.size(); ++i) {
        const Candidate& c = candidates_[i];
        if (c.host != current_->host || c.direct_tls != current_->direct_tls || port_of(c) != port_of(*current_))
            return nullptr;  // the next target: the partner is within this one
        if (c.addr.ss_family != current_->addr.ss_family && !was_dialled(c) && refusal(c, nullptr).empty()) return &c;
    }
    return nullptr;
}

void DialPlan::fell_back(Fallback reason, const std::string& why, const LogContext& log) const {
    metrics().outgoing_fallbacks.add(fallback_name(reason));
    S2S_LOG_NOTICE(log, "fallback", "%s failed (%s): %s; trying the next address", current().describe().c_str(),
                   fallback_name(reason), why.c_str());
}

}  // namespace s2s
