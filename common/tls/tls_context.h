// A TLS configuration shared by many sessions: certificates and keys, trusted CAs and CRLs,
// versions, cipher suites, verification policy, ALPN, SNI certificates, session tickets.
//
//   tls::ContextOptions o;                 // filled from config's TlsOptions by the caller
//   o.role = tls::Role::Server;
//   o.certificate = {"/etc/s2s/a.pem", "/etc/s2s/a.key"};
//   auto made = tls::Context::create(o);
//   if (!made) { log(made.error); exit; }  // the error names the file or option and why
//   for (auto& w : made.warnings) log(w);
//   std::shared_ptr<const tls::Context> ctx = made.context;   // sessions keep it alive
//
// A Context is immutable once made (config reload builds a new one; live sessions keep the
// old one). It holds the random generator sessions draw from, so it is not thread-safe: use it
// from one loop thread. Nothing here throws except std::bad_alloc.
//
// Verification policy for s2s: a server always *asks* for a client certificate without
// requiring one (a peer without one can still use dialback); a client always checks the
// server's chain without failing on a bad one. The outcome is reported per session
// (Session::peer_verification) and becomes a handshake failure only with require_valid_peer.
// Names are never checked by mbedTLS: Session::authenticate_peer applies RFC 6125 instead.
//
// Session tickets (server): each context draws its own ticket keys from its own random
// generator, so a ticket is resumed only by the context that issued it. A reload builds new
// contexts: tickets issued before it get a full handshake, with the CAs and CRLs read again, and
// a listener never resumes another listener's sessions. There is no session-id cache.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct mbedtls_ssl_config;
struct mbedtls_ssl_context;
struct mbedtls_x509_crt;
struct mbedtls_x509_crl;
struct mbedtls_pk_context;

namespace s2s::tls {

/// Which end of the connection a context is for.
enum class Role : std::uint8_t { Client, Server };

/// How the peer's certificate chain is judged (config: tls.verify_mode).
enum class VerifyMode : std::uint8_t {
    Peer,            ///< chain to a trusted CA, in date, not revoked
    SelfSignedPeer,  ///< as Peer, but a self-signed leaf also counts as trusted
    None,            ///< not checked at all (certificates are still read for identities)
};

inline constexpr const char* kSystemCaFile = "/etc/ssl/certs/ca-certificates.crt";
inline constexpr const char* kAlpnXmppServer = "xmpp-server";  ///< XEP-0368 direct TLS
/// MongooseIM's default cipher string: every suite that needs TLS 1.2 (AEAD or a SHA-2 MAC), and the
/// TLS 1.3 suites where the library has them.
inline constexpr const char* kDefaultCiphers = "TLSv1.2:TLSv1.3";

/// A certificate chain with its private key.
struct CertificateSpec {
    std::string certfile;             ///< PEM (or DER): the leaf first, then intermediates
    std::string keyfile;              ///< empty: the key is in certfile
    std::string password;             ///< for an encrypted key; never logged
    /// Server, SNI: the names this certificate is chosen for ("example.org", "*.example.org").
    /// Empty: the certificate's own DNS-IDs, SRV-IDs, XmppAddrs (or CN when it has none).
    std::vector<std::string> names;
};

struct ContextOptions {
    Role role = Role::Server;
    /// Server: required; sent when the client asks for no name or an unknown one.
    /// Client: optional; sent when the server asks for a certificate (SASL EXTERNAL).
    CertificateSpec certificate;
    /// Server: more certificates, chosen by the name the client asks for (SNI), exact names
    /// before wildcards. With no `certificate`, the first one is the default.
    std::vector<CertificateSpec> sni_certificates;
    std::string cacertfile;               ///< PEM file or directory; empty: system_cafile
    /// The system's CA store, used when cacertfile is empty. When it is missing or holds no CA
    /// the context is still made, with a warning: no peer certificate can be trusted then (a
    /// container without ca-certificates should still serve dialback-only peers).
    std::string system_cafile = kSystemCaFile;
    std::vector<std::string> crl_files;   ///< PEM/DER CRLs checked with the CAs
    std::vector<std::string> versions;    ///< "tlsv1.2", "tlsv1.3"; empty: every one available
    /// An OpenSSL cipher string ("HIGH:!aNULL", "ECDHE+AESGCM", suite names), translated by
    /// select_ciphersuites (tls_ciphers.h); "" means kDefaultCiphers.
    std::string ciphers;
    /// PEM Diffie-Hellman parameters (`openssl dhparam`). Server: DHE suites use this group (its
    /// prime must have 2048 bits or more); "" keeps mbedTLS's RFC 3526 2048-bit group. Client: the
    /// file's prime size becomes the smallest DH prime accepted from servers (mbedTLS: 1024 bits).
    std::string dhfile;
    /// MongooseIM's (fast_tls) protocol options: "no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1"
    /// (always so: TLS 1.2 is the minimum), "no_tlsv1_2" (TLS 1.3 only), "no_tlsv1_3" (TLS 1.2
    /// only), "cipher_server_preference" (mbedTLS servers always choose by their own order),
    /// "no_compression" (mbedTLS never compresses), "no_ticket" (no session tickets).
    std::vector<std::string> protocol_options;
    VerifyMode verify_mode = VerifyMode::Peer;
    /// Fail the handshake unless the peer's chain is valid (server: a client certificate is then
    /// required). For use_starttls = required_trusted. The check runs when mbedTLS finishes the
    /// handshake, so the peer may see its own side complete before our fatal alert arrives.
    /// On an s2s listener this shuts out dialback-only peers: do not derive it from
    /// tls.disconnect_on_failure's default.
    bool require_valid_peer = false;
    std::vector<std::string> alpn;        ///< e.g. {kAlpnXmppServer}; empty: no ALPN
    bool session_tickets = true;          ///< server: issue tickets; client: accept them
    std::uint32_t ticket_lifetime_s = 7200;
    /// Server: accept a client certificate whose extendedKeyUsage lists serverAuth but not
    /// clientAuth. XMPP servers present the same certificate in both directions, and public CAs
    /// have stopped including clientAuth in server certificates.
    bool accept_server_auth_for_clients = true;
    /// Server: list our trusted CA names in CertificateRequest. Off by default: with the system
    /// store that is ~15 KB per handshake, and s2s clients send their one certificate anyway.
    bool send_ca_list = false;
};

class Context;

/// What Context::create returns: a context, or an error naming the file/option and the reason.
struct [[nodiscard]] ContextResult {
    std::shared_ptr<const Context> context;   ///< null on error
    std::string error;
    /// The ContextOptions field the error is about ("ciphers", "certfile", "keyfile", "cacertfile",
    /// "crl_files", "versions", "dhfile", "protocol_options", "alpn"); "" when none is. Every error
    /// about a field begins with the field's name.
    std::string option;
    std::vector<std::string> warnings;        ///< made anyway, but worth logging
    explicit operator bool() const noexcept { return context != nullptr; }
};

class Context {
public:
    [[nodiscard]] static ContextResult create(const ContextOptions& options);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    [[nodiscard]] Role role() const noexcept;
    [[nodiscard]] const ContextOptions& options() const noexcept;
    /// Every name the server certificates answer to (for logs and tests).
    [[nodiscard]] std::vector<std::string> certificate_names() const;

    // For tls::Session only.
    [[nodiscard]] const mbedtls_ssl_config* ssl_config() const noexcept;
    struct KeyPair {
        mbedtls_x509_crt* chain;
        mbedtls_pk_context* key;
    };
    /// The SNI certificate for `server_name` (exact name first, then wildcard); null: default.
    [[nodiscard]] const KeyPair* certificate_for(std::string_view server_name) const noexcept;
    /// The CRLs loaded from crl_files (a chain of them); null without any.
    [[nodiscard]] const mbedtls_x509_crl* revocation_lists() const noexcept;

    struct Impl;

private:
    Context();
    std::unique_ptr<Impl> impl_;
};

/// The values ContextOptions::protocol_options accepts.
[[nodiscard]] const std::vector<std::string>& known_protocol_options();

/// True if this mbedTLS build negotiates TLS 1.3 (mbedTLS 3.6+ with TLS 1.3 enabled).
[[nodiscard]] bool tls13_available() noexcept;

/// Every cipher suite name this mbedTLS build knows (mbedTLS spelling).
[[nodiscard]] std::vector<std::string> available_ciphersuites();

/// mbedTLS verification flags (MBEDTLS_X509_BADCERT_*, BADCRL_*) in words, "; "-separated:
/// "expired; not signed by a trusted CA". "ok" for 0.
[[nodiscard]] std::string describe_verify_flags(std::uint32_t flags);

/// mbedTLS error code in words, with the code: "X509 - Read/write of file failed (-0x2900)".
[[nodiscard]] std::string describe_mbedtls_error(int code);

namespace detail {
// The SNI callback, defined in tls.cpp where it can reach the session; `ctx` is the Context.
int sni_callback(void* ctx, mbedtls_ssl_context* ssl, const unsigned char* name, std::size_t len);
}  // namespace detail

}  // namespace s2s::tls
