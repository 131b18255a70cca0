#include "proxy/features/bidi.h"

#include "proxy/net/access.h"
#include "proxy/ops/metrics.h"

namespace s2s {

// ---- accepting side ------------------------------------------------------------------------------

std::string BidiServer::feature(bool enabled, bool tls_open, bool fresh) {
    // XEP-0288: asked for before authentication; never offered on a plain stream.
    bool offer = enabled && tls_open && !agreed() && fresh;
    if (!agreed()) state_ = offer ? State::Offered : State::NotOffered;
    return offer ? "<bidi xmlns='urn:xmpp:features:bidi'/>" : "";
}

std::optional<std::string> BidiServer::on_request(bool enabled, bool tls_open, bool fresh, const LogContext& log) {
    if (agreed()) return std::nullopt;  // asked twice: nothing more to do
    // The features that offered it may have been followed by authentication (a pair, a
    // verification under way, SASL): bidi is only for a stream on which nothing is yet.
    if (state_ != State::Offered || !fresh)
        return !enabled  ? "bidi (XEP-0288) is disabled here (s2s.bidi)"
               : !tls_open ? "bidi (XEP-0288) is offered only over TLS"
                           : "bidi (XEP-0288) must be asked for before authentication";
    state_ = State::Agreed;
    S2S_LOG_INFO(log, "bidi", "the peer asked for a bidirectional stream (XEP-0288)");
    return std::nullopt;
}

void ReverseRoutes::offer(const std::string& remote, const std::string& local, const tls::Session& tls) {
    if (routes_.contains(remote, local)) return;
    if (tls.authenticate_peer(remote) != tls::PeerAuth::Authenticated) return;
    routes_.insert(remote, local);
    router_.offer_reverse_route(remote, local, route_);
    S2S_LOG_INFO(LogContext{conn_id_, local, remote}, "bidi-route", "stanzas from %s to %s may go back on this stream",
                 local.c_str(), remote.c_str());
}

void ReverseRoutes::withdraw_all() {
    if (routes_.empty()) return;
    PairSet routes;
    std::swap(routes, routes_);
    for (auto& p : routes.pairs()) router_.withdraw_reverse_route(p.remote, p.local, route_);
}

// ---- initiating side -----------------------------------------------------------------------------

bool BidiClient::wanted(const ProxyContext& ctx, bool enabled, const xml::Element& f, const tls::Session* tls,
                        const std::string& remote, const LogContext& log) const {
    // XEP-0288: asked for before authenticating, and only of a remote whose certificate proves
    // its domain, so that what it sends back on this link is known to come from it.
    if (!enabled || asked_ || !tls || !f.child("bidi", kBidiFeatureNs)) return false;
    tls::PeerAuth auth = tls->authenticate_peer(remote);
    if (!some_listener_admits(ctx.config, remote)) {
        S2S_LOG_INFO(log, "bidi-not-used", "%s offers bidi, but no [[listen.s2s]] access rule admits it", remote.c_str());
        return false;
    }
    if (auth != tls::PeerAuth::Authenticated) {
        S2S_LOG_INFO(log, "bidi-not-used", "%s offers bidi, but its certificate does not prove it (%s)", remote.c_str(),
                     tls::peer_auth_name(auth));
        return false;
    }
    return true;
}

std::string BidiClient::ask(const std::string& remote, const LogContext& log, std::string_view limits) {
    asked_ = true;
    S2S_LOG_INFO(log, "bidi", "asked %s for a bidirectional stream (XEP-0288)", remote.c_str());
    if (limits.empty()) return "<bidi xmlns='urn:xmpp:bidi'/>";
    return "<bidi xmlns='urn:xmpp:bidi'>" + std::string(limits) + "</bidi>";
}

// The remote's stanzas back on the link, checked exactly as on an inbound stream. Without bidi
// the remote has no business sending stanzas here.
std::optional<StanzaRefusal> BidiClient::on_stanza(ProxyContext& ctx, uint64_t conn_id, Stream* source,
                                                   xml::Document& doc, const PairSet& pairs,
                                                   const std::string& remote) const {
    if (!asked_)
        return StanzaRefusal{StreamError::NotAuthorized,
                             remote + " sent a stanza on a stream s2s-proxy opened, which is not bidirectional"};
    // (a reload may have changed the listeners' access rules since bidi was agreed)
    if (!some_listener_admits(ctx.config, remote)) {
        metrics().access_refusals.add("stanza");
        return StanzaRefusal{StreamError::PolicyViolation, remote + " is not admitted by the access rules of [[listen.s2s]]"};
    }
    return route_remote_stanza(ctx, conn_id, source, doc, pairs);
}

}  // namespace s2s
