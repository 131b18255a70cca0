// The addresses one outbound link (s2s_out) tries in turn, as the resolver gave them (DNS, or
// s2s.outgoing.address), skipping those that lead back into s2s-proxy: an address where it
// listens (own_listeners, overrides included), and an address from DNS (or an IP-literal domain)
// in s2s.outgoing.denied_networks. Each skip is logged and counted
// (outgoing_candidates_refused_total{reason}); the last one's sentence, for local senders, names
// the case, not the address.
//
// Within one attempt each address is dialled at most once: an address already dialled (two SRV
// targets on one host) is passed over. A candidate that accepts the connection but fails before
// the link is negotiated (it closes, the TLS handshake fails, its certificate is refused, it sends
// a stream error or no answer in time) is left for the next address, then the next target: the
// link says so through fell_back() (a log line and outgoing_fallbacks_total{reason}), and the
// domain counts as failed only when no candidate is left.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/log.h"
#include "common/net/net_address.h"
#include "proxy/xmpp/context.h"
#include "proxy/resolve/resolver.h"

namespace s2s {

// Why a candidate that accepted the connection was left for the next (the label of
// outgoing_fallbacks_total).
enum class Fallback : uint8_t {
    Closed,       // the connection closed (or the stream ended) before the link was negotiated
    Tls,          // the TLS handshake failed
    Certificate,  // the certificate is not one the mode (or the domain's policy) accepts
    StreamError,  // the remote sent a stream error before authentication
    Timeout,      // no answer within s2s.outgoing.state_timeout
    Negotiation,  // anything else the negotiation refused (STARTTLS, a bad header...)
};
[[nodiscard]] const char* fallback_name(Fallback f) noexcept;

class DialPlan {
public:
    // `own_listeners`: the settings' pointer, read at each candidate (null: not checked).
    DialPlan(const ProxyContext& ctx, const ListenerSet* const& own_listeners, const std::string& remote)
        : ctx_(ctx), own_listeners_(own_listeners), remote_(remote) {}

    // The resolver's answer, tried from its first candidate.
    void reset(std::vector<Candidate> found) {
        candidates_ = std::move(found);
        next_ = 0;
        current_ = nullptr;
        dialled_.clear();
    }
    [[nodiscard]] bool empty() const noexcept { return candidates_.empty(); }
    // The next candidate that may be dialled (null when none is left); those skipped on the way
    // are logged with `log`, counted and remembered in refused().
    [[nodiscard]] const Candidate* next(const LogContext& log);
    // Whether a candidate is left after current() (it may still be refused or already dialled).
    [[nodiscard]] bool more() const noexcept { return next_ < candidates_.size(); }
    // current() failed before the link was negotiated, for `why`; the next one is tried: logged
    // with `log` and counted by `reason`.
    void fell_back(Fallback reason, const std::string& why, const LogContext& log) const;
    // The candidate next() returned last, or the one won() named since.
    [[nodiscard]] const Candidate& current() const { return *current_; }
    // Happy eyeballs (happy_eyeballs.h): a later candidate of the same target (host, port, direct
    // TLS) in the other address family, not dialled yet and not refused, or null. It counts as
    // dialled only once dialled(); next() passes it over from then on.
    [[nodiscard]] const Candidate* partner() const;
    void dialled(const Candidate& c);
    // `c` (current() or its partner) is the one connected.
    void won(const Candidate& c) { current_ = &c; }
    // Why a candidate was not dialled, for the bounce ("" when none was refused).
    [[nodiscard]] const std::string& refused() const noexcept { return refused_; }

private:
    // Why `c` may not be dialled (a sentence for the bounce), or empty when it may; logged and
    // counted unless `log` is null.
    [[nodiscard]] std::string refusal(const Candidate& c, const LogContext* log) const;
    [[nodiscard]] bool was_dialled(const Candidate& c) const;

    const ProxyContext& ctx_;
    const ListenerSet* const& own_listeners_;
    const std::string& remote_;
    std::vector<Candidate> candidates_;
    size_t next_ = 0;
    const Candidate* current_ = nullptr;
    std::vector<std::string> dialled_;  // the addresses next() returned (at most one per candidate)
    std::string refused_;
};

}  // namespace s2s
