#include "proxy/tls_setup.h"

namespace s2s {
namespace {

InboundTls from_mode(TlsMode m) {
    switch (m) {
        case TlsMode::Tls: return InboundTls::Direct;
        case TlsMode::StartTls: return InboundTls::Offer;
        case TlsMode::StartTlsRequired: return InboundTls::Require;
    }
    return InboundTls::None;
}

tls::VerifyMode verify(VerifyMode v) {
    switch (v) {
        case VerifyMode::Peer: return tls::VerifyMode::Peer;
        case VerifyMode::SelfsignedPeer: return tls::VerifyMode::SelfSignedPeer;
        case VerifyMode::None: return tls::VerifyMode::None;
    }
    return tls::VerifyMode::Peer;
}

// The options both sides share: CAs, CRLs, versions, ciphers, verification, certificate.
void common_options(const Config& c, const TlsOptions& t, tls::ContextOptions& o) {
    o.cacertfile = t.cacertfile;
    o.crl_files = t.crl_files;
    o.versions = t.versions;
    o.ciphers = t.ciphers.empty() ? c.ciphers : t.ciphers;
    o.verify_mode = verify(t.verify_mode);
    // Never at the handshake: a peer without a valid certificate may still verify dialback keys
    // with us (db:verify); policy refuses to authenticate its domain (PolicyRules, per domain).
    o.require_valid_peer = false;
    if (!t.certfile.empty()) o.certificate = {t.certfile, t.keyfile, t.password, {}};
    else if (!c.certfile.empty()) o.certificate = {c.certfile, "", "", {}};
}

// The local domains' own certificates (s2s.domain_certfile), chosen by the name a peer asks for.
void domain_certificates(const Config& c, tls::ContextOptions& o) {
    for (auto& d : c.domain_certs) o.sni_certificates.push_back({d.certfile, "", "", {d.domain}});
}

}  // namespace

InboundTls inbound_tls_mode(const Config& c, const Listener& l) {
    if (l.tls.mode) return from_mode(*l.tls.mode);
    if (l.tls.present) return InboundTls::Offer;  // MongooseIM 6: a tls subsection means "starttls"
    switch (c.use_starttls) {
        case StartTls::False: return InboundTls::None;
        case StartTls::Optional: return InboundTls::Offer;
        case StartTls::Required:
        case StartTls::RequiredTrusted: return InboundTls::Require;
    }
    return InboundTls::None;
}

OutboundTls outbound_tls_mode(const Config& c) {
    if (c.outgoing.tls.mode) {
        switch (*c.outgoing.tls.mode) {
            case TlsMode::Tls: return OutboundTls::Direct;
            case TlsMode::StartTls: return OutboundTls::StartTls;
            case TlsMode::StartTlsRequired: return OutboundTls::StartTlsRequired;
        }
    }
    // A tls subsection without a mode, or no TLS setting at all: STARTTLS when the remote offers it.
    if (c.outgoing.tls.present || !c.use_starttls_set) return OutboundTls::StartTls;
    switch (c.use_starttls) {
        case StartTls::False: return OutboundTls::None;
        case StartTls::Optional: return OutboundTls::StartTls;
        case StartTls::Required:
        case StartTls::RequiredTrusted: return OutboundTls::StartTlsRequired;
    }
    return OutboundTls::None;
}

bool outgoing_tls_needed(const Config& c) {
    return outbound_tls_mode(c) != OutboundTls::None || c.secure_auth || !c.secure_domains.empty();
}

std::shared_ptr<const tls::Context> make_listener_context(const Config& c, const Listener& l, std::string* error) {
    tls::ContextOptions o;
    o.role = tls::Role::Server;
    common_options(c, l.tls, o);
    // The listener's own tls subsection with verify_mode = "peer" and disconnect_on_failure = true
    // (MongooseIM's defaults) refuses a handshake without a valid client certificate. TLS that
    // comes from s2s.use_starttls alone keeps the 6.x meaning: certificates judged per domain.
    o.require_valid_peer = l.tls.present && l.tls.verify_mode == VerifyMode::Peer && l.tls.disconnect_on_failure;
    domain_certificates(c, o);
    if (inbound_tls_mode(c, l) == InboundTls::Direct) o.alpn = {tls::kAlpnXmppServer};
    auto made = tls::Context::create(o);
    if (!made) *error = made.error;
    return made.context;
}

std::shared_ptr<const tls::Context> make_outgoing_context(const Config& c, const std::string& local,
                                                          bool* have_certificate, std::string* error) {
    tls::ContextOptions o;
    o.role = tls::Role::Client;
    common_options(c, c.outgoing.tls, o);
    for (auto& d : c.domain_certs)
        if (d.domain == local) o.certificate = {d.certfile, "", "", {}};
    if (outbound_tls_mode(c) == OutboundTls::Direct) o.alpn = {tls::kAlpnXmppServer};
    *have_certificate = !o.certificate.certfile.empty();
    auto made = tls::Context::create(o);
    if (!made) *error = made.error;
    return made.context;
}

}  // namespace s2s
