#include "proxy/features/starttls.h"

#include "common/xml/xml.h"
#include "proxy/ops/metrics.h"

namespace s2s::starttls {

std::string feature(InboundTls mode, const Stream& stream) {
    if (stream.tls_open() || (mode != InboundTls::Offer && mode != InboundTls::Require)) return "";
    return mode == InboundTls::Require ? "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                                       : "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>";
}

bool required_first(InboundTls mode, const Stream& stream) {
    return mode == InboundTls::Require && !stream.tls_open();
}

bool may_proceed(InboundTls mode, const Stream& stream, std::string* why) {
    if (stream.tls()) {
        *why = "STARTTLS asked twice";
        return false;
    }
    if (mode == InboundTls::None || mode == InboundTls::Direct) {
        *why = "STARTTLS asked but not offered";
        return false;
    }
    return true;
}

bool early_enough(bool authenticated, bool verifying, const LogContext& log, std::string* why) {
    if (!authenticated && !verifying) return true;
    *why = std::string("STARTTLS asked after ") +
           (!authenticated ? "a dialback verification was started" : "a domain was authenticated") +
           " on the plain stream";
    S2S_LOG_NOTICE(log, "starttls-refused", "%s", why->c_str());
    return false;
}

void refuse(Stream& stream, const std::string& why) {
    stream.end(why, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
}

void proceed(Stream& stream, std::shared_ptr<const tls::Context> context) {
    stream.send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    stream.start_tls(std::move(context));
    stream.reset_parser();
}

std::string describe(const tls::Session& t) {
    const tls::PeerVerification& v = t.peer_verification();
    std::string s(t.protocol_version());
    s += " ";
    s += t.ciphersuite();
    if (t.resumed()) s += " (resumed session)";
    s += ", peer certificate: ";
    s += v.status == tls::PeerCertificate::Valid && !v.self_signed_only ? "valid"
         : v.status == tls::PeerCertificate::Missing                  ? "none"
                                                                       : v.reason;
    return s;
}

// ---- the initiating side -------------------------------------------------------------------------

ClientStep on_features(OutboundTls mode, bool tls_open, bool must_secure, const xml::Element& f,
                       const std::string& remote, std::string* why) {
    xml::Element starttls = f.child("starttls", xml::ns::tls);
    if (!tls_open && starttls) {
        if (mode == OutboundTls::StartTls || mode == OutboundTls::StartTlsRequired || must_secure) return ClientStep::Ask;
        if (starttls.child("required", xml::ns::tls)) {
            *why = remote + " requires TLS, but TLS is off here (s2s.use_starttls / s2s.outgoing.tls.mode)";
            return ClientStep::Fail;
        }
    }
    if (!tls_open && mode == OutboundTls::StartTlsRequired) {
        *why = remote + " does not offer STARTTLS, which is required here";
        return ClientStep::Fail;
    }
    return ClientStep::Continue;
}

bool pre_1_0_acceptable(OutboundTls mode, bool tls_open, const std::string& remote, std::string* why) {
    bool tls_needed = mode == OutboundTls::StartTlsRequired || mode == OutboundTls::Direct;
    if (!tls_needed || tls_open) return true;
    *why = remote + " does not support STARTTLS, which is required";
    return false;
}

bool secure_enough(const ProxyContext& ctx, const tls::Session* tls, const std::string& remote, const LogContext& log,
                   std::string* why) {
    std::string rule = ctx.policy.certificate_rule(remote);
    if (rule.empty()) return true;
    const char* reason = "certificate";
    if (!tls) {
        *why = remote + " is a secure domain (" + rule + ") and offered no TLS";
        reason = "no_tls";
    } else if (tls::PeerAuth auth = tls->authenticate_peer(remote); auth != tls::PeerAuth::Authenticated) {
        *why = std::string("the certificate of ") + remote + " is not valid for it (" + tls->describe_peer_auth(auth) + ")";
    } else {
        return true;
    }
    S2S_LOG_NOTICE(log, "refused", "%s", why->c_str());
    metrics().secure_domain_refusals.add(std::string("outbound:") + reason);
    return false;
}

}  // namespace s2s::starttls
