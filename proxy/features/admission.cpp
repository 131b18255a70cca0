#include "proxy/features/admission.h"

#include "common/xmpp/jid.h"
#include "common/base/log.h"
#include "proxy/net/access.h"
#include "proxy/ops/metrics.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {

// A stanza is forwarded only when its 'from' domain is authenticated on this stream for its
// 'to' domain (RFC 6120 §8.1.1.2, XEP-0220 §2.4, XEP-0288 §2); anything else ends the stream,
// except a sender on the [antispam] JID list, whose stanzas alone are refused.
std::optional<StanzaRefusal> route_remote_stanza(ProxyContext& ctx, uint64_t conn_id, Stream* source, xml::Document& doc,
                                                 const PairSet& pairs, const std::string& access) {
    xml::Element e = doc.root();
    if (pairs.empty()) return StanzaRefusal{StreamError::NotAuthorized, "a stanza arrived before authentication"};
    auto from_attr = e.attr("from"), to_attr = e.attr("to");
    if (!from_attr || !to_attr)
        return StanzaRefusal{StreamError::ImproperAddressing, std::string("a stanza without '") + (from_attr ? "to" : "from") + "'"};
    auto from = JidView::parse(*from_attr);
    if (!from) {
        count_refused_jid("stanza", *from_attr);
        return StanzaRefusal{StreamError::InvalidFrom, "'" + std::string(*from_attr) + "' is not a JID"};
    }
    auto to = JidView::parse(*to_attr);
    if (!to) {
        count_refused_jid("stanza", *to_attr);
        return StanzaRefusal{StreamError::ImproperAddressing, "'" + std::string(*to_attr) + "' is not a JID"};
    }
    canonicalize_address(doc, "from", *from);
    canonicalize_address(doc, "to", *to);
    from_attr = e.attr("from"), to_attr = e.attr("to");
    // One hash lookup, however many pairs the stream carries.
    std::string remote = domain_of(from->domain()), local = domain_of(to->domain());
    if (!pairs.contains(remote, local)) {
        std::string to_domain(to->domain()), from_domain(from->domain());
        if (!ctx.is_local(local)) return StanzaRefusal{StreamError::HostUnknown, to_domain + " is not served here"};
        return StanzaRefusal{StreamError::InvalidFrom, from_domain + " is not authenticated for " + to_domain + " on this stream"};
    }
    if (!ctx.policy.allowed(remote)) return StanzaRefusal{StreamError::PolicyViolation, ctx.policy.refusal(remote)};
    // (a reload may have changed the listener's access rule since the pair authenticated)
    if (!access_allows(ctx.config, access, remote)) {
        metrics().access_refusals.add("stanza");
        return StanzaRefusal{StreamError::PolicyViolation, remote + " is not admitted by this listener's access rule"};
    }
    // A listed sender is refused alone, with a stanza error: its domain's other users go on.
    if (std::string why = ctx.policy.jid_refusal(*from); !why.empty()) {
        ctx.router.refuse_from_remote(remote, local, doc, why, source);
        return std::nullopt;
    }
    S2S_LOG_DEBUG(LogContext{conn_id, local, remote}, "from-remote", "%.*s %.*s %.*s -> %.*s (%s -> s2s-proxy)",
                  static_cast<int>(e.name().size()), e.name().data(), static_cast<int>(e.attr("id").value_or("-").size()),
                  e.attr("id").value_or("-").data(), static_cast<int>(from_attr->size()), from_attr->data(),
                  static_cast<int>(to_attr->size()), to_attr->data(), remote.c_str());
    if (ctx.rate_limits) ctx.rate_limits->inbound(remote, e, source);
    ctx.router.from_remote(remote, local, doc, source);
    return std::nullopt;
}

std::optional<ClaimRefusal> refuse_claim(const ProxyContext& ctx, const std::string& remote) {
    if (ctx.is_local(remote))
        return ClaimRefusal{"policy-violation", remote + " is served here; another server cannot claim it"};
    // An IP literal has no name to find its authoritative server by: verifying it would connect
    // to whatever address the peer chose. One that s2s.host_policy names with policy = "allow"
    // is a server the operator chose to federate with by address, so it stays allowed.
    if (is_ip_literal(remote) && !ctx.policy.listed_allow(remote))
        return ClaimRefusal{"not-acceptable", remote + " is an IP address; it is accepted only when s2s.host_policy "
                                                       "lists it with policy \"allow\""};
    return std::nullopt;
}

}  // namespace s2s
