#include "proxy/features/sasl_external.h"

#include <mbedtls/base64.h>

#include "common/xmpp/jid.h"
#include "proxy/net/access.h"
#include "proxy/features/admission.h"
#include "proxy/ops/metrics.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {

// ---- receiving server ----------------------------------------------------------------------------

std::string SaslExternalServer::feature(const ProxyContext& ctx, const tls::Session* tls,
                                        const std::string& claimed) const {
    if (!tls || succeeded() || claimed.empty() || refuse_claim(ctx, claimed) ||
        tls->authenticate_peer(claimed) != tls::PeerAuth::Authenticated)
        return {};
    return "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>";
}

SaslExternalServer::Answer SaslExternalServer::failure(const LogContext& log, const char* condition,
                                                       const std::string& text) {
    Answer a;
    a.bytes = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><" + std::string(condition) + "/>";
    if (!text.empty()) a.bytes += "<text>" + xml::escape_text(text) + "</text>";
    a.bytes += "</failure>";
    S2S_LOG_NOTICE(log, "sasl-failure", "%s: %s", condition, text.c_str());
    metrics().sasl_external.add("inbound:failure");
    if (++failures_ > kMaxFailures) {
        a.error = StreamError::NotAuthorized;
        a.error_text = "too many SASL failures";
    }
    return a;
}

SaslExternalServer::Answer SaslExternalServer::on_auth(const ProxyContext& ctx, const tls::Session* tls,
                                                       const xml::Element& e, const std::string& claimed,
                                                       const LogContext& log, const PairCheck& check) {
    if (succeeded()) {
        Answer a;
        a.error = StreamError::PolicyViolation;
        a.error_text = "SASL already succeeded on this stream";
        return a;
    }
    if (attr_or_empty(e, "mechanism") != "EXTERNAL") return failure(log, "invalid-mechanism", "only EXTERNAL is offered");
    if (!tls) return failure(log, "encryption-required", "EXTERNAL needs TLS with a certificate");
    // The initial response is the authorization identity, base64; "=" or nothing means none.
    std::string b64 = e.text();
    std::string authzid;
    if (!b64.empty() && b64 != "=") {
        unsigned char buf[1024];
        size_t n = 0;
        if (mbedtls_base64_decode(buf, sizeof buf, &n, reinterpret_cast<const unsigned char*>(b64.data()), b64.size()) != 0)
            return failure(log, "incorrect-encoding", "the authorization identity is not base64");
        authzid.assign(reinterpret_cast<char*>(buf), n);
    }
    std::string domain = authzid.empty() ? claimed : domain_of(authzid);
    if (domain.empty())
        return failure(log, "invalid-authzid",
                       authzid.empty() ? "no domain: the stream header has no 'from' and no authorization identity was given"
                                       : "'" + authzid + "' is not a domain");
    if (!claimed.empty() && domain != claimed)
        return failure(log, "invalid-authzid", "'" + domain + "' is not the stream's 'from' " + claimed);
    if (auto refused = refuse_claim(ctx, domain)) return failure(log, "not-authorized", refused->text);
    if (!ctx.policy.allowed(domain)) return failure(log, "not-authorized", ctx.policy.refusal(domain));
    if (auto refused = check(domain)) return failure(log, "not-authorized", *refused);
    tls::PeerAuth auth = tls->authenticate_peer(domain);
    if (auth != tls::PeerAuth::Authenticated)
        return failure(log, "not-authorized",
                       "the certificate is not valid for " + domain + " (" + tls->describe_peer_auth(auth) + ")");
    metrics().sasl_external.add("inbound:success");
    state_ = State::Succeeded;
    Answer a;
    a.bytes = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
    a.authenticated = domain;
    return a;
}

// ---- initiating server ---------------------------------------------------------------------------

bool SaslExternalClient::offered(const xml::Element& features) {
    bool external = false;
    if (xml::Element mechs = features.child("mechanisms", xml::ns::sasl))
        for (xml::Element m : mechs.elements()) external |= m.name() == "mechanism" && m.text() == "EXTERNAL";
    return external;
}

bool SaslExternalClient::wanted(const xml::Element& features, bool tls_open, bool have_certificate) const {
    return tls_open && offered(features) && have_certificate && state_ == State::NotTried;
}

std::string SaslExternalClient::start() {
    state_ = State::Sent;
    return "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>";
}

bool SaslExternalClient::on_answer(const xml::Element& answer, const LogContext& log, const std::string& remote) {
    if (answer.name() == "success") {
        state_ = State::Succeeded;
        S2S_LOG_INFO(log, "authenticated", "SASL EXTERNAL");
        metrics().sasl_external.add("outbound:success");
        return true;
    }
    state_ = State::Refused;
    S2S_LOG_NOTICE(log, "sasl-failure", "%s refused SASL EXTERNAL; trying dialback", remote.c_str());
    metrics().sasl_external.add("outbound:failure");
    return false;
}

}  // namespace s2s
