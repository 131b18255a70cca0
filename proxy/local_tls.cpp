#include "proxy/local_tls.h"

#include <arpa/inet.h>

#include "proxy/metrics.h"

namespace s2s {

InboundTls local_tls_mode(const Listener& l) {
    if (!l.tls.mode) return l.tls.present ? InboundTls::Offer : InboundTls::None;
    switch (*l.tls.mode) {
        case TlsMode::Tls: return InboundTls::Direct;
        case TlsMode::StartTls: return InboundTls::Offer;
        case TlsMode::StartTlsRequired: return InboundTls::Require;
    }
    return InboundTls::None;
}

LocalTls local_client_tls_mode(const Config& c) {
    if (!c.local_tls.mode) return LocalTls::Plain;
    switch (*c.local_tls.mode) {
        case TlsMode::Tls: return LocalTls::Direct;
        case TlsMode::StartTls: return LocalTls::StartTls;
        case TlsMode::StartTlsRequired: return LocalTls::StartTlsRequired;
    }
    return LocalTls::Plain;
}

std::string host_name_of(const std::string& host_port) {
    if (host_port.empty() || host_port[0] == '[') return "";
    size_t colon = host_port.rfind(':');
    std::string host = host_port.substr(0, colon);
    unsigned char buf[16];
    if (host.empty() || inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1)
        return "";
    return host;
}

namespace local_tls {

std::string server_name(const LocalTlsSettings& s, const std::string& domain) {
    return s.server_name.empty() ? domain : s.server_name;
}

bool start_direct(Stream& stream, const LocalTlsSettings& s, const std::string& domain) {
    if (s.mode != LocalTls::Direct) return false;
    tls::SessionOptions so;
    so.server_name = server_name(s, domain);
    stream.start_tls(s.context, so);
    return true;
}

Step on_features(Stream& stream, const LocalTlsSettings& s, const xml::Element& features, std::string* why) {
    xml::Element offered = features.child("starttls", xml::ns::tls);
    bool required = offered && offered.child("required", xml::ns::tls);
    switch (s.mode) {
        case LocalTls::Plain:
            if (!required) return Step::Continue;  // (Prosody offers it even when it does not require it)
            *why = "the local server requires TLS on s2s: set local.tls.mode (\"starttls\") and local.tls.cacertfile, "
                   "or let it accept plain s2s";
            return Step::Fail;
        case LocalTls::Direct:  // (features come only after the handshake)
            return Step::Continue;
        case LocalTls::StartTls:
        case LocalTls::StartTlsRequired:
            if (offered) {
                stream.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
                return Step::SendStartTls;
            }
            // With a certificate to check, a missing offer is what a man in the middle stripping
            // <starttls/> would show: the link does not go on in plain text.
            if (s.mode == LocalTls::StartTls && !s.check_name) return Step::Continue;
            *why = s.mode == LocalTls::StartTls
                       ? "the local server does not offer STARTTLS, and local.tls.verify_mode asks for its certificate "
                         "(write local.tls.verify_mode = \"none\" to allow plain streams)"
                       : "the local server does not offer STARTTLS, which local.tls.mode = \"starttls_required\" needs";
            return Step::Fail;
    }
    return Step::Continue;
}

void proceed(Stream& stream, const LocalTlsSettings& s, const std::string& domain) {
    tls::SessionOptions so;
    so.server_name = server_name(s, domain);
    stream.start_tls(s.context, so);
    stream.reset_parser();
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
    metrics().local_tls.add(s.mode == LocalTls::Direct ? "client:direct" : "client:starttls");
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

}  // namespace local_tls
}  // namespace s2s
