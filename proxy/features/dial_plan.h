// The addresses one outbound link (s2s_out) tries in turn, as the resolver gave them (DNS, or
// s2s.outgoing.address), skipping those that lead back into s2s-proxy: an address where it
// listens (own_listeners, overrides included), and an address from DNS (or an IP-literal domain)
// in s2s.outgoing.denied_networks. Each skip is logged and counted
// (outgoing_candidates_refused_total{reason}); the last one's sentence, for local senders, names
// the case, not the address.
#pragma once

#include <string>
#include <vector>

#include "common/base/log.h"
#include "common/net/net_address.h"
#include "proxy/xmpp/context.h"
#include "proxy/resolve/resolver.h"

namespace s2s {

class DialPlan {
public:
    // `own_listeners`: the settings' pointer, read at each candidate (null: not checked).
    DialPlan(const ProxyContext& ctx, const ListenerSet* const& own_listeners, const std::string& remote)
        : ctx_(ctx), own_listeners_(own_listeners), remote_(remote) {}

    // The resolver's answer, tried from its first candidate.
    void reset(std::vector<Candidate> found) {
        candidates_ = std::move(found);
        next_ = 0;
    }
    [[nodiscard]] bool empty() const noexcept { return candidates_.empty(); }
    // The next candidate that may be dialled (null when none is left); those skipped on the way
    // are logged with `log`, counted and remembered in refused().
    [[nodiscard]] const Candidate* next(const LogContext& log);
    // The candidate next() returned last.
    [[nodiscard]] const Candidate& current() const { return candidates_[next_ - 1]; }
    // Why a candidate was not dialled, for the bounce ("" when none was refused).
    [[nodiscard]] const std::string& refused() const noexcept { return refused_; }

private:
    // Why `c` may not be dialled (a sentence for the bounce), or empty when it may.
    [[nodiscard]] std::string refusal(const Candidate& c, const LogContext& log) const;

    const ProxyContext& ctx_;
    const ListenerSet* const& own_listeners_;
    const std::string& remote_;
    std::vector<Candidate> candidates_;
    size_t next_ = 0;
    std::string refused_;
};

}  // namespace s2s
