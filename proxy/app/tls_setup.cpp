#include "proxy/app/tls_setup.h"

#include "common/config/config_load.h"
#include "proxy/local/local_tls.h"

namespace s2s {
namespace {

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
    o.dhfile = t.dhfile;
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

// The config key behind a context's error about ContextOptions field `option`, for a context made
// from `t` (whose keys stand under `prefix`, e.g. "listen.s2s.0.tls").
std::string key_for(const Config& c, const std::string& prefix, const TlsOptions& t, const tls::ContextResult& made) {
    const std::string& option = made.option;
    if (option == "ciphers") return t.ciphers.empty() ? "s2s.ciphers" : prefix + ".ciphers";
    if (option == "certfile" || option == "keyfile") {
        for (size_t i = 0; i < c.domain_certs.size(); ++i)
            if (made.error.find("'" + c.domain_certs[i].certfile + "'") != std::string::npos)
                return "s2s.domain_certfile." + std::to_string(i) + ".certfile";
        if (!t.certfile.empty()) return prefix + (option == "keyfile" && !t.keyfile.empty() ? ".keyfile" : ".certfile");
        if (!c.certfile.empty()) return "s2s.certfile";
        return prefix;
    }
    if (option.empty()) return prefix;
    return prefix + "." + option;
}

// "proxy.toml:14: listen.s2s.0.tls.ciphers: unknown cipher ...": the error located at its key.
std::string located(const Config& c, const std::string& prefix, const TlsOptions& t, const tls::ContextResult& made) {
    std::string message = made.error;
    // "ciphers: unknown ..." and "dhfile '/x': ..." lose the field name, which the key says.
    if (!made.option.empty() && (message.compare(0, made.option.size() + 2, made.option + ": ") == 0 ||
                                 message.compare(0, made.option.size() + 2, made.option + " '") == 0))
        message.erase(0, made.option.size() + 1 + (message[made.option.size()] == ':'));
    return config::locate(c, key_for(c, prefix, t, made)) + ": " + message;
}

std::string listener_prefix(const Config& c, const Listener& l) {
    for (size_t i = 0; i < c.listen_s2s.size(); ++i)
        if (&c.listen_s2s[i] == &l) return "listen.s2s." + std::to_string(i) + ".tls";
    for (size_t i = 0; i < c.listen_local.size(); ++i)
        if (&c.listen_local[i] == &l) return "listen.local." + std::to_string(i) + ".tls";
    return "listen.s2s.tls";
}

// A context made from `o`, or null with *error set, located at the key under `prefix` behind it.
std::shared_ptr<const tls::Context> create(const Config& c, const std::string& prefix, const TlsOptions& t,
                                           const tls::ContextOptions& o, std::string* error) {
    auto made = tls::Context::create(o);
    if (!made) *error = located(c, prefix, t, made);
    return made.context;
}

// The server context for listener `l` in `mode`, with the local domains' certificates by SNI
// (`sni`) or without. In a strict-handshake mode (the listener's own tls subsection) verify_mode
// = "peer" with disconnect_on_failure = true (MongooseIM's defaults) refuses a handshake without a
// valid client certificate; TLS that comes from s2s.use_starttls alone keeps the 6.x meaning:
// certificates judged per domain.
std::shared_ptr<const tls::Context> server_context(const Config& c, const Listener& l, const starttls::Mode& mode,
                                                   bool sni, std::string* error) {
    tls::ContextOptions o;
    o.role = tls::Role::Server;
    common_options(c, l.tls, o);
    o.require_valid_peer =
        mode.strict_handshake && l.tls.verify_mode == VerifyMode::Peer && l.tls.disconnect_on_failure;
    o.protocol_options = l.tls.protocol_options;
    if (sni) domain_certificates(c, o);
    if (mode.direct) o.alpn = {tls::kAlpnXmppServer};
    return create(c, listener_prefix(c, l), l.tls, o, error);
}

}  // namespace

const starttls::Mode& inbound_tls_mode(const Config& c, const Listener& l) {
    return starttls::configured(l.tls, starttls::mode(c.use_starttls));
}

const starttls::Mode& outbound_tls_mode(const Config& c) {
    // With no TLS setting at all: STARTTLS when the remote offers it.
    const starttls::Mode& otherwise = c.use_starttls_set ? starttls::mode(c.use_starttls) : starttls::mode("starttls");
    return starttls::configured(c.outgoing.tls, otherwise);
}

bool trusted_only(const Config& c) { return starttls::mode(c.use_starttls).trusted; }

bool outgoing_tls_needed(const Config& c) {
    return outbound_tls_mode(c).uses_tls() || c.secure_auth || !c.secure_domains.empty() || c.outgoing.dane;
}

std::shared_ptr<const tls::Context> make_listener_context(const Config& c, const Listener& l, std::string* error) {
    return server_context(c, l, inbound_tls_mode(c, l), true, error);
}

std::shared_ptr<const tls::Context> make_outgoing_context(const Config& c, const std::string& local,
                                                          bool* have_certificate, std::string* error) {
    tls::ContextOptions o;
    o.role = tls::Role::Client;
    common_options(c, c.outgoing.tls, o);
    for (auto& d : c.domain_certs)
        if (d.domain == local) o.certificate = {d.certfile, "", "", {}};
    if (outbound_tls_mode(c).direct) o.alpn = {tls::kAlpnXmppServer};
    *have_certificate = !o.certificate.certfile.empty();
    return create(c, "s2s.outgoing.tls", c.outgoing.tls, o, error);
}

std::shared_ptr<const tls::Context> make_local_listener_context(const Config& c, const Listener& l, std::string* error) {
    return server_context(c, l, local_tls_mode(l), false, error);
}

std::shared_ptr<const tls::Context> make_local_client_context(const Config& c, std::string* error) {
    tls::ContextOptions o;
    o.role = tls::Role::Client;
    common_options(c, c.local_tls, o);
    // The local server has no dialback fallback to offer: a certificate that does not check out
    // (under selfsigned_peer: one that is neither valid nor self-signed) ends the link at the
    // handshake.
    o.require_valid_peer = c.local_tls.verify_mode != VerifyMode::None;
    if (local_client_tls_mode(c).direct) o.alpn = {tls::kAlpnXmppServer};
    return create(c, "local.tls", c.local_tls, o, error);
}

}  // namespace s2s
