#include "common/tls/tls_context.h"

#include "common/tls/tls_ciphers.h"
#include "common/tls/tls_identity.h"
#include "common/tls/tls_keyfile.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/dhm.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>
#if defined(MBEDTLS_SSL_TICKET_C)
#include <mbedtls/ssl_ticket.h>
#endif
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && defined(MBEDTLS_PSA_CRYPTO_C)
#include <psa/crypto.h>
#endif

// TLS 1.3 is used from mbedTLS 3.6 (the first LTS with complete TLS 1.3 client and server,
// tickets included); 2.28 has none.
#if MBEDTLS_VERSION_NUMBER >= 0x03060000 && defined(MBEDTLS_SSL_PROTO_TLS1_3)
#define S2S_TLS13 1
#else
#define S2S_TLS13 0
#endif

namespace s2s::tls {
namespace {

// A loaded certificate chain and its key; never moves (mbedTLS keeps pointers to both).
struct StoredCert {
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    std::vector<std::string> names;  // what SNI matches against (lowercase)
    Context::KeyPair pair{&chain, &key};
    StoredCert() {
        mbedtls_x509_crt_init(&chain);
        mbedtls_pk_init(&key);
    }
    ~StoredCert() {
        mbedtls_pk_free(&key);
        mbedtls_x509_crt_free(&chain);
    }
    StoredCert(const StoredCert&) = delete;
    StoredCert& operator=(const StoredCert&) = delete;
};

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
    return out;
}

std::string quoted(const std::string& path) { return "'" + path + "'"; }

// "" if `path` can be opened for reading, else the system's reason.
std::string unreadable(const std::string& path) {
    if (path.empty()) return "no file given";
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return std::strerror(errno);
    std::fclose(f);
    return "";
}

bool is_directory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

struct Context::Impl {
    ContextOptions options;
    mbedtls_ssl_config conf;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
#if defined(MBEDTLS_SSL_TICKET_C)
    mbedtls_ssl_ticket_context ticket;
#endif
    mbedtls_x509_crt ca;
    mbedtls_x509_crl crl;
    bool have_crl = false;
    std::unique_ptr<StoredCert> default_cert;               // may be null on a client
    std::vector<std::unique_ptr<StoredCert>> sni_certs;
    std::vector<int> ciphersuites;                          // 0-terminated
    bool no_tls12 = false, no_tls13 = false;                // from protocol_options
    std::vector<std::string> alpn;
    std::vector<const char*> alpn_ptrs;                     // null-terminated, into `alpn`

    Impl() {
        mbedtls_ssl_config_init(&conf);
        mbedtls_entropy_init(&entropy);
        mbedtls_ctr_drbg_init(&drbg);
#if defined(MBEDTLS_SSL_TICKET_C)
        mbedtls_ssl_ticket_init(&ticket);
#endif
        mbedtls_x509_crt_init(&ca);
        mbedtls_x509_crl_init(&crl);
    }
    ~Impl() {
        mbedtls_ssl_config_free(&conf);
#if defined(MBEDTLS_SSL_TICKET_C)
        mbedtls_ssl_ticket_free(&ticket);
#endif
        mbedtls_x509_crl_free(&crl);
        mbedtls_x509_crt_free(&ca);
        mbedtls_ctr_drbg_free(&drbg);
        mbedtls_entropy_free(&entropy);
    }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    // Each step returns "" or an error message.
    std::string seed();
    std::string set_protocol_options();
    std::string set_versions(std::vector<std::string>& warnings);
    std::string set_dh_parameters();
    std::string set_ciphers();
    std::string load_certificate(const CertificateSpec& spec, StoredCert& out);
    std::string load_certificates(std::vector<std::string>& warnings);
    std::string load_trust(std::vector<std::string>& warnings);
    std::string set_alpn();
    std::string set_tickets();
};

std::string Context::Impl::seed() {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000 && defined(MBEDTLS_PSA_CRYPTO_C)
    if (psa_crypto_init() != PSA_SUCCESS) return "PSA crypto could not be initialised";
#endif
    static const unsigned char personal[] = "s2s-proxy tls";
    int ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, personal, sizeof personal - 1);
    if (ret != 0) return "random generator: " + describe_mbedtls_error(ret);
    return "";
}

std::string Context::Impl::set_versions(std::vector<std::string>& warnings) {
    bool want12 = false, want13 = false;
    for (const auto& v : options.versions) {
        std::string l = lowercase(v);
        if (l == "tlsv1.2" || l == "tls1.2" || l == "1.2") {
            want12 = true;
        } else if (l == "tlsv1.3" || l == "tls1.3" || l == "1.3") {
            want13 = true;
        } else if (l == "tlsv1" || l == "tlsv1.0" || l == "tlsv1.1" || l == "sslv3") {
            return "versions: '" + v + "' is not supported (TLS 1.0 and 1.1 are obsolete, RFC 8996); use tlsv1.2, tlsv1.3";
        } else {
            return "versions: unknown TLS version '" + v + "' (known: tlsv1.2, tlsv1.3)";
        }
    }
    if (!want12 && !want13) want12 = want13 = true;
    if (no_tls12) want12 = false;
    if (no_tls13) want13 = false;
    if (!want12 && !want13) return "versions: protocol_options exclude every TLS version listed here";
    if (want13 && !S2S_TLS13) {
        if (!want12)
            return std::string("versions: tlsv1.3 is not available in this build (") + MBEDTLS_VERSION_STRING_FULL +
                   " has no TLS 1.3); add tlsv1.2";
        if (!options.versions.empty())
            warnings.push_back(std::string("versions: tlsv1.3 is not available in ") + MBEDTLS_VERSION_STRING_FULL +
                               "; using TLS 1.2 only");
        want13 = false;
    }
#if MBEDTLS_VERSION_NUMBER >= 0x03020000
    mbedtls_ssl_conf_min_tls_version(&conf, want12 ? MBEDTLS_SSL_VERSION_TLS1_2 : MBEDTLS_SSL_VERSION_TLS1_3);
    mbedtls_ssl_conf_max_tls_version(&conf, want13 ? MBEDTLS_SSL_VERSION_TLS1_3 : MBEDTLS_SSL_VERSION_TLS1_2);
#else
    mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
#endif
    return "";
}

std::string Context::Impl::set_protocol_options() {
    for (const auto& o : options.protocol_options) {
        const auto& known = known_protocol_options();
        if (std::find(known.begin(), known.end(), o) == known.end()) {
            std::string list;
            for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
            return "protocol_options: unknown option '" + o + "' (known: " + list + ")";
        }
        if (o == "no_tlsv1_2") no_tls12 = true;
        if (o == "no_tlsv1_3") no_tls13 = true;
        if (o == "no_ticket") options.session_tickets = false;
        // no_sslv2 .. no_tlsv1_1: TLS 1.2 is the minimum anyway. cipher_server_preference: an
        // mbedTLS server chooses by its own order. no_compression: mbedTLS never compresses.
    }
    if (no_tls12 && !S2S_TLS13)
        return std::string("protocol_options: no_tlsv1_2 leaves TLS 1.3 only, and this TLS library (") +
               MBEDTLS_VERSION_STRING_FULL + ") has no TLS 1.3; remove no_tlsv1_2";
    if (no_tls12 && no_tls13) return "protocol_options: no_tlsv1_2 and no_tlsv1_3 together leave no TLS version";
    return "";
}

std::string Context::Impl::set_dh_parameters() {
    if (options.dhfile.empty()) return "";
    if (std::string why = unreadable(options.dhfile); !why.empty()) return "dhfile " + quoted(options.dhfile) + ": " + why;
#if defined(MBEDTLS_DHM_C)
    mbedtls_dhm_context dhm;
    mbedtls_dhm_init(&dhm);
    int ret = mbedtls_dhm_parse_dhmfile(&dhm, options.dhfile.c_str());
    if (ret != 0) {
        mbedtls_dhm_free(&dhm);
        return "dhfile " + quoted(options.dhfile) + ": no PEM DH parameters in it (" + describe_mbedtls_error(ret) +
               "); make them with 'openssl dhparam -out dh.pem 2048'";
    }
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    const std::size_t bits = mbedtls_dhm_get_bitlen(&dhm);
#else
    const std::size_t bits = mbedtls_mpi_bitlen(&dhm.P);
#endif
    if (bits < 2048) {
        mbedtls_dhm_free(&dhm);
        return "dhfile " + quoted(options.dhfile) + ": the prime has " + std::to_string(bits) +
               " bits; at least 2048 are needed (smaller groups are breakable, RFC 8247 and Logjam), e.g. "
               "'openssl dhparam -out dh.pem 2048'";
    }
    if (options.role == Role::Server) {
        ret = mbedtls_ssl_conf_dh_param_ctx(&conf, &dhm);  // copies P and G
    } else {
        mbedtls_ssl_conf_dhm_min_bitlen(&conf, static_cast<unsigned int>(bits));
        ret = 0;
    }
    mbedtls_dhm_free(&dhm);
    if (ret != 0) return "dhfile " + quoted(options.dhfile) + ": " + describe_mbedtls_error(ret);
    return "";
#else
    return "dhfile: this TLS library (" MBEDTLS_VERSION_STRING_FULL ") is built without Diffie-Hellman";
#endif
}

std::string Context::Impl::set_ciphers() {
    CipherSelection selected = select_ciphersuites(options.ciphers);
    if (!selected.error.empty()) return "ciphers: " + selected.error;
    ciphersuites = std::move(selected.suites);
    ciphersuites.push_back(0);
    mbedtls_ssl_conf_ciphersuites(&conf, ciphersuites.data());
    return "";
}

std::string Context::Impl::load_certificate(const CertificateSpec& spec, StoredCert& out) {
    if (std::string why = unreadable(spec.certfile); !why.empty()) return "certfile " + quoted(spec.certfile) + ": " + why;
    int ret = mbedtls_x509_crt_parse_file(&out.chain, spec.certfile.c_str());
    if (ret < 0) return "certfile " + quoted(spec.certfile) + ": " + describe_mbedtls_error(ret);
    if (ret > 0)
        return "certfile " + quoted(spec.certfile) + ": " + std::to_string(ret) + " certificate(s) could not be parsed";

    const std::string& keyfile = spec.keyfile.empty() ? spec.certfile : spec.keyfile;
    if (std::string why = unreadable(keyfile); !why.empty()) return "keyfile " + quoted(keyfile) + ": " + why;
    const char* pwd = spec.password.empty() ? nullptr : spec.password.c_str();
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    ret = mbedtls_pk_parse_keyfile(&out.key, keyfile.c_str(), pwd, mbedtls_ctr_drbg_random, &drbg);
#else
    ret = mbedtls_pk_parse_keyfile(&out.key, keyfile.c_str(), pwd);
#endif
    if (ret != 0)
        if (std::string why = explain_undecryptable_key(keyfile, ret); !why.empty())
            return "keyfile " + quoted(keyfile) + ": " + why;
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) return "keyfile " + quoted(keyfile) + ": the key is encrypted and no password is set";
    if (ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) return "keyfile " + quoted(keyfile) + ": wrong password for the key";
    if (ret != 0) return "keyfile " + quoted(keyfile) + ": " + describe_mbedtls_error(ret);
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    ret = mbedtls_pk_check_pair(&out.chain.pk, &out.key, mbedtls_ctr_drbg_random, &drbg);
#else
    ret = mbedtls_pk_check_pair(&out.chain.pk, &out.key);
#endif
    if (ret != 0)
        return "keyfile " + quoted(keyfile) + " does not belong to the certificate in certfile " + quoted(spec.certfile);

    if (!spec.names.empty()) {
        for (const auto& n : spec.names) out.names.push_back(lowercase(n));
    } else {
        Identities ids = certificate_identities(out.chain);
        for (const auto& n : ids.dns_ids) out.names.push_back(lowercase(n));
        for (const auto& n : ids.srv_ids)
            if (n.size() > 13 && lowercase(n.substr(0, 13)) == "_xmpp-server.") out.names.push_back(lowercase(n.substr(13)));
        for (const auto& n : ids.xmpp_addrs)
            if (n.find_first_of("@/") == std::string::npos) out.names.push_back(lowercase(n));
        if (!ids.has_san_ids)
            for (const auto& n : ids.common_names) out.names.push_back(lowercase(n));
    }
    return "";
}

std::string Context::Impl::load_certificates(std::vector<std::string>& warnings) {
    const bool server = options.role == Role::Server;
    if (!options.certificate.certfile.empty()) {
        default_cert = std::make_unique<StoredCert>();
        if (std::string e = load_certificate(options.certificate, *default_cert); !e.empty()) return e;
    }
    if (server) {
        for (const auto& spec : options.sni_certificates) {
            auto c = std::make_unique<StoredCert>();
            if (std::string e = load_certificate(spec, *c); !e.empty()) return e;
            if (c->names.empty())
                warnings.push_back("certfile " + quoted(spec.certfile) + ": no DNS name in it, so SNI never selects it");
            sni_certs.push_back(std::move(c));
        }
        if (!default_cert && sni_certs.empty()) return "a TLS server needs a certificate (certfile)";
        StoredCert& def = default_cert ? *default_cert : *sni_certs.front();
        int ret = mbedtls_ssl_conf_own_cert(&conf, &def.chain, &def.key);
        if (ret != 0) return "certfile " + quoted(options.certificate.certfile) + ": " + describe_mbedtls_error(ret);
    } else {
        if (!options.sni_certificates.empty()) warnings.push_back("SNI certificates are ignored on the client side");
        if (default_cert) {
            int ret = mbedtls_ssl_conf_own_cert(&conf, &default_cert->chain, &default_cert->key);
            if (ret != 0) return "certfile " + quoted(options.certificate.certfile) + ": " + describe_mbedtls_error(ret);
        }
    }
    return "";
}

std::string Context::Impl::load_trust(std::vector<std::string>& warnings) {
    if (options.verify_mode == VerifyMode::None) {
        mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
        return "";
    }
    const bool system = options.cacertfile.empty();
    const std::string path = system ? options.system_cafile : options.cacertfile;
    int ret;
    std::string failed;
    if (is_directory(path)) {
        ret = mbedtls_x509_crt_parse_path(&ca, path.c_str());
    } else if (std::string why = unreadable(path); !why.empty()) {
        failed = why;
        ret = 0;
    } else {
        ret = mbedtls_x509_crt_parse_file(&ca, path.c_str());
    }
    if (failed.empty() && ret < 0) failed = describe_mbedtls_error(ret);
    if (failed.empty() && ca.version == 0) failed = "no CA certificate in it";
    if (!failed.empty() && !system) return "cacertfile " + quoted(path) + ": " + failed;
    if (!failed.empty()) {
        // Without the system store nothing chains: every peer certificate is untrusted, which the
        // verify mode then judges (dialback-only peers still work where the mode allows them).
        warnings.push_back("the system CA store " + quoted(path) + ": " + failed +
                           "; no peer certificate can be trusted (install ca-certificates or set cacertfile)");
        mbedtls_x509_crt_free(&ca);
        mbedtls_x509_crt_init(&ca);
    }
    if (failed.empty() && ret > 0)
        warnings.push_back("cacertfile " + quoted(path) + ": " + std::to_string(ret) +
                           " certificate(s) could not be parsed and are ignored");
    for (const auto& f : options.crl_files) {
        if (std::string why = unreadable(f); !why.empty()) return "crl_files " + quoted(f) + ": " + why;
        ret = mbedtls_x509_crl_parse_file(&crl, f.c_str());
        if (ret != 0) return "crl_files " + quoted(f) + ": " + describe_mbedtls_error(ret);
        have_crl = true;
    }
    mbedtls_ssl_conf_ca_chain(&conf, failed.empty() ? &ca : nullptr, have_crl ? &crl : nullptr);
    // Ask for / check the peer's certificate, but decide what a bad one means ourselves.
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
    return "";
}

std::string Context::Impl::set_alpn() {
    if (options.alpn.empty()) return "";
    for (const auto& p : options.alpn) {
        if (p.empty() || p.size() > 255) return "alpn: protocol name '" + p + "' must be 1 to 255 bytes";
        alpn.push_back(p);
    }
    for (const auto& p : alpn) alpn_ptrs.push_back(p.c_str());
    alpn_ptrs.push_back(nullptr);
    int ret = mbedtls_ssl_conf_alpn_protocols(&conf, alpn_ptrs.data());
    if (ret != 0) return "alpn: " + describe_mbedtls_error(ret);
    return "";
}

std::string Context::Impl::set_tickets() {
#if defined(MBEDTLS_SSL_SESSION_TICKETS)
    if (options.role == Role::Client) {
        mbedtls_ssl_conf_session_tickets(&conf, options.session_tickets ? MBEDTLS_SSL_SESSION_TICKETS_ENABLED
                                                                        : MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
        return "";
    }
#if defined(MBEDTLS_SSL_TICKET_C)
    if (!options.session_tickets) return "";
    int ret = mbedtls_ssl_ticket_setup(&ticket, mbedtls_ctr_drbg_random, &drbg, MBEDTLS_CIPHER_AES_256_GCM,
                                       options.ticket_lifetime_s);
    if (ret != 0) return "session tickets: " + describe_mbedtls_error(ret);
    mbedtls_ssl_conf_session_tickets_cb(&conf, mbedtls_ssl_ticket_write, mbedtls_ssl_ticket_parse, &ticket);
#endif
#endif
    return "";
}

Context::Context() : impl_(std::make_unique<Impl>()) {}
Context::~Context() = default;

ContextResult Context::create(const ContextOptions& options) {
    ContextResult result;
    std::shared_ptr<Context> ctx(new Context());
    Impl& m = *ctx->impl_;
    m.options = options;
    if (options.require_valid_peer && options.verify_mode == VerifyMode::None) {
        result.error = "require_valid_peer needs verify_mode peer or selfsigned_peer, not none";
        return result;
    }
    int ret = mbedtls_ssl_config_defaults(
        &m.conf, options.role == Role::Server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
        MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        result.error = "TLS defaults: " + describe_mbedtls_error(ret);
        return result;
    }
    std::string err = m.seed();
    if (err.empty()) {
        mbedtls_ssl_conf_rng(&m.conf, mbedtls_ctr_drbg_random, &m.drbg);
        err = m.set_protocol_options();
    }
    if (err.empty()) err = m.set_versions(result.warnings);
    if (err.empty()) err = m.set_ciphers();
    if (err.empty()) err = m.set_dh_parameters();
    if (err.empty()) {
        // Key exchange groups, cheapest first: X25519 costs less than P-256 in mbedTLS.
#if MBEDTLS_VERSION_NUMBER >= 0x03010000
        static const std::uint16_t groups[] = {MBEDTLS_SSL_IANA_TLS_GROUP_X25519, MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
                                               MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
                                               MBEDTLS_SSL_IANA_TLS_GROUP_SECP521R1, MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
        mbedtls_ssl_conf_groups(&m.conf, groups);
#else
        // On 2.28 this list also limits the curves accepted in the peer's certificate.
        static const mbedtls_ecp_group_id curves[] = {
#if defined(MBEDTLS_ECP_DP_CURVE25519_ENABLED)
            MBEDTLS_ECP_DP_CURVE25519,
#endif
            MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_SECP384R1,
#if defined(MBEDTLS_ECP_DP_SECP521R1_ENABLED)
            MBEDTLS_ECP_DP_SECP521R1,
#endif
            MBEDTLS_ECP_DP_NONE};
        mbedtls_ssl_conf_curves(&m.conf, curves);
#endif
        err = m.load_certificates(result.warnings);
    }
    if (err.empty()) err = m.load_trust(result.warnings);
    if (err.empty()) err = m.set_alpn();
    if (err.empty()) err = m.set_tickets();
    if (!err.empty()) {
        static const char* const fields[] = {"ciphers",  "certfile", "keyfile",          "cacertfile", "crl_files",
                                             "versions", "dhfile",   "protocol_options", "alpn"};
        std::size_t word = err.find_first_of(" :");
        for (const char* f : fields)
            if (err.compare(0, word, f) == 0) result.option = f;
        result.error = std::move(err);
        return result;
    }
    if (options.role == Role::Server)
        mbedtls_ssl_conf_cert_req_ca_list(&m.conf, options.send_ca_list ? MBEDTLS_SSL_CERT_REQ_CA_LIST_ENABLED
                                                                        : MBEDTLS_SSL_CERT_REQ_CA_LIST_DISABLED);
    // Always on a server: the session records the name asked for, and SNI certificates are
    // chosen by it.
    if (options.role == Role::Server) mbedtls_ssl_conf_sni(&m.conf, detail::sni_callback, ctx.get());
#if defined(MBEDTLS_SSL_RENEGOTIATION)
    mbedtls_ssl_conf_renegotiation(&m.conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
    // The key passwords are not needed any more: do not keep them in memory.
    m.options.certificate.password.assign(m.options.certificate.password.size(), '\0');
    m.options.certificate.password.clear();
    for (auto& c : m.options.sni_certificates) {
        c.password.assign(c.password.size(), '\0');
        c.password.clear();
    }
    result.context = std::move(ctx);
    return result;
}

Role Context::role() const noexcept { return impl_->options.role; }
const ContextOptions& Context::options() const noexcept { return impl_->options; }
const mbedtls_ssl_config* Context::ssl_config() const noexcept { return &impl_->conf; }

const mbedtls_x509_crl* Context::revocation_lists() const noexcept { return impl_->have_crl ? &impl_->crl : nullptr; }

std::vector<std::string> Context::certificate_names() const {
    std::vector<std::string> out;
    if (impl_->default_cert) out = impl_->default_cert->names;
    for (const auto& c : impl_->sni_certs) out.insert(out.end(), c->names.begin(), c->names.end());
    return out;
}

const Context::KeyPair* Context::certificate_for(std::string_view server_name) const noexcept {
    for (bool wildcard : {false, true})
        for (const auto& c : impl_->sni_certs)
            for (const auto& n : c->names)
                if ((n.find('*') != std::string::npos) == wildcard && dns_id_matches(n, server_name)) return &c->pair;
    return nullptr;
}

const std::vector<std::string>& known_protocol_options() {
    static const std::vector<std::string> known = {"no_sslv2",   "no_sslv3",   "no_tlsv1",
                                                   "no_tlsv1_1", "no_tlsv1_2", "no_tlsv1_3",
                                                   "cipher_server_preference", "no_compression", "no_ticket"};
    return known;
}

bool tls13_available() noexcept { return S2S_TLS13 != 0; }

std::vector<std::string> available_ciphersuites() {
    std::vector<std::string> out;
    for (const int* id = mbedtls_ssl_list_ciphersuites(); *id != 0; ++id)
        if (const char* name = mbedtls_ssl_get_ciphersuite_name(*id)) out.emplace_back(name);
    return out;
}

std::string describe_verify_flags(std::uint32_t flags) {
    if (flags == 0) return "ok";
    static const struct {
        std::uint32_t flag;
        const char* words;
    } table[] = {
        {MBEDTLS_X509_BADCERT_MISSING, "no certificate"},
        {MBEDTLS_X509_BADCERT_NOT_TRUSTED, "not signed by a trusted CA"},
        {MBEDTLS_X509_BADCERT_EXPIRED, "expired"},
        {MBEDTLS_X509_BADCERT_FUTURE, "not valid yet"},
        {MBEDTLS_X509_BADCERT_REVOKED, "revoked (listed in a CRL)"},
        {MBEDTLS_X509_BADCERT_CN_MISMATCH, "name mismatch"},
        {MBEDTLS_X509_BADCERT_KEY_USAGE, "keyUsage does not allow this use"},
        {MBEDTLS_X509_BADCERT_EXT_KEY_USAGE, "extendedKeyUsage does not allow this use"},
        {MBEDTLS_X509_BADCERT_NS_CERT_TYPE, "nsCertType does not allow this use"},
        {MBEDTLS_X509_BADCERT_BAD_MD, "signed with a hash algorithm not allowed"},
        {MBEDTLS_X509_BADCERT_BAD_PK, "signed with a key type not allowed"},
        {MBEDTLS_X509_BADCERT_BAD_KEY, "key too weak or curve not allowed"},
        {MBEDTLS_X509_BADCERT_SKIP_VERIFY, "verification skipped"},
        {MBEDTLS_X509_BADCERT_OTHER, "rejected"},
        {MBEDTLS_X509_BADCRL_NOT_TRUSTED, "a CRL is not signed by a trusted CA"},
        {MBEDTLS_X509_BADCRL_EXPIRED, "a CRL is out of date"},
        {MBEDTLS_X509_BADCRL_FUTURE, "a CRL is not valid yet"},
        {MBEDTLS_X509_BADCRL_BAD_MD, "a CRL is signed with a hash algorithm not allowed"},
        {MBEDTLS_X509_BADCRL_BAD_PK, "a CRL is signed with a key type not allowed"},
        {MBEDTLS_X509_BADCRL_BAD_KEY, "a CRL is signed with a key too weak"},
    };
    std::string out;
    std::uint32_t known = 0;
    for (const auto& row : table) {
        known |= row.flag;
        if (flags & row.flag) {
            if (!out.empty()) out += "; ";
            out += row.words;
        }
    }
    if (flags & ~known) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "flags 0x%x", static_cast<unsigned>(flags & ~known));
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out;
}

std::string describe_mbedtls_error(int code) {
    char text[160];
    mbedtls_strerror(code, text, sizeof text);
    char hex[24];
    std::snprintf(hex, sizeof hex, " (-0x%04x)", static_cast<unsigned>(code < 0 ? -code : code));
    return std::string(text) + hex;
}

}  // namespace s2s::tls
