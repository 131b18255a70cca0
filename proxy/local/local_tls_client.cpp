#include "proxy/local/local_tls_client.h"

#include "proxy/ops/metrics.h"
#include "proxy/features/starttls.h"

namespace s2s::local_tls {

std::string connect_failure(const std::string& server, int status) {
    return "cannot connect to the local server at " + server + ": " +
           (status == UV_ETIMEDOUT ? "timed out" : uv_strerror(status));
}

namespace {

void start(Stream& stream, const LocalTlsSettings& s, const std::string& domain) {
    tls::SessionOptions so;
    so.server_name = server_name(s, domain);
    stream.start_tls(s.context, so);
}

}  // namespace

bool start_direct(Stream& stream, const LocalTlsSettings& s, const std::string& domain) {
    if (!s.mode.direct) return false;
    start(stream, s, domain);
    return true;
}

Offer on_features(const LocalTlsSettings& s, const xml::Element& features, std::string* why) {
    xml::Element offered = features.child("starttls", xml::ns::tls);
    bool required = offered && offered.child("required", xml::ns::tls);
    if (s.mode.direct) return Offer::Continue;  // (features come only after the handshake)
    if (!s.mode.starttls) {
        if (!required) return Offer::Continue;  // (Prosody offers it even when it does not require it)
        *why = "the local server requires TLS on s2s: set local.tls.mode (\"starttls\") and local.tls.cacertfile, "
               "or let it accept plain s2s";
        return Offer::Fail;
    }
    if (offered) return Offer::StartTls;
    // With a certificate to check, a missing offer is what a man in the middle stripping
    // <starttls/> would show: the link does not go on in plain text.
    if (!s.mode.required && !s.check_name) return Offer::Continue;
    *why = !s.mode.required
               ? "the local server does not offer STARTTLS, and local.tls.verify_mode asks for its certificate "
                 "(write local.tls.verify_mode = \"none\" to allow plain streams)"
               : "the local server does not offer STARTTLS, which local.tls.mode = \"" + std::string(s.mode.name) +
                     "\" needs";
    return Offer::Fail;
}

Step negotiate(Stream& stream, const LocalTlsSettings& s, const std::string& domain, const xml::Element& e,
               bool awaiting_proceed, std::string* why) {
    if (!awaiting_proceed) {
        if (!e.is("features", xml::ns::streams)) return Step::Other;
        if (stream.tls()) return Step::Continue;
        switch (on_features(s, e, why)) {
            case Offer::Continue: return Step::Continue;
            case Offer::Fail: return Step::Fail;
            case Offer::StartTls:
                stream.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
                return Step::AwaitProceed;
        }
        return Step::Fail;
    }
    if (e.is("proceed", xml::ns::tls)) {
        start(stream, s, domain);
        stream.reset_parser();
        return Step::Handshake;
    }
    if (e.is("failure", xml::ns::tls)) {
        *why = "the local server refused STARTTLS";
        return Step::Refused;
    }
    return Step::Other;
}

std::string check_server(const LocalTlsSettings& s, const tls::Session& t, const std::string& domain) {
    if (!s.check_name) return "";
    std::string name = server_name(s, domain);
    tls::PeerAuth auth = t.authenticate_peer(name);
    if (auth == tls::PeerAuth::Authenticated) return "";
    // selfsigned_peer: the handshake let a self-signed certificate through; it must still name the server.
    if (auth == tls::PeerAuth::Untrusted && t.peer_verification().self_signed_only &&
        tls::certificate_matches_domain(t.peer_identities(), name))
        return "";
    return "the local server's certificate is not valid for " + name + " (" + t.describe_peer_auth(auth) +
           "); check local.tls.cacertfile and local.tls.server_name";
}

std::string established(const LocalTlsSettings& s, const tls::Session& t, const std::string& domain,
                        const LogContext& log, const std::string& server, bool quiet) {
    std::string refused = check_server(s, t, domain);
    if (!refused.empty()) {
        metrics().local_tls.add("client:refused");
        S2S_LOG_WARNING(log, "local-tls-refused", "%s at %s", refused.c_str(), server.c_str());
        return refused;
    }
    metrics().local_tls.add(s.mode.direct ? "client:direct" : "client:starttls");
    if (quiet)
        S2S_LOG_DEBUG(log, "local-tls", "to the local server at %s: %s", server.c_str(), starttls::describe(t).c_str());
    else
        S2S_LOG_INFO(log, "local-tls", "to the local server at %s: %s", server.c_str(), starttls::describe(t).c_str());
    return "";
}

void note_handshake_failure(const LogContext& log, const std::string& server, const std::string& reason) {
    if (reason.rfind("TLS", 0) != 0) return;  // (the stream's own TLS failures start so)
    metrics().local_tls.add("client:refused");
    S2S_LOG_WARNING(log, "local-tls-failed", "TLS with the local server at %s: %s (check local.tls)", server.c_str(),
                    reason.c_str());
}

}  // namespace s2s::local_tls
