#include "common/tls/tls.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include <mbedtls/oid.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

namespace s2s::tls {

struct SavedSession::Impl {
    mbedtls_ssl_session session;
    Impl() { mbedtls_ssl_session_init(&session); }
    ~Impl() { mbedtls_ssl_session_free(&session); }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;
};

SavedSession::SavedSession() : impl_(std::make_unique<Impl>()) {}
SavedSession::~SavedSession() = default;

namespace {

constexpr std::size_t kOutputHighWater = 256 * 1024;
constexpr std::size_t kFirstBytesKept = 8;

// The mbedTLS context first, so a callback given only the context finds its session.
// Standard-layout (a C struct and a pointer): a pointer to it is a pointer to `ssl`.
struct SslBox {
    mbedtls_ssl_context ssl;
    Session::Impl* owner;
};

const char* alert_name(unsigned char code) noexcept {
    switch (code) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 86: return "inappropriate_fallback";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    default: return "unknown alert";
    }
}

// The alert we send when require_valid_peer rejects the peer's certificate.
unsigned char rejection_alert(const PeerVerification& v) noexcept {
    if (v.status == PeerCertificate::Missing) return MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE;
    if (v.flags & MBEDTLS_X509_BADCERT_REVOKED) return MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED;
    if (v.flags & (MBEDTLS_X509_BADCERT_EXPIRED | MBEDTLS_X509_BADCERT_FUTURE)) return MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED;
    if (v.flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) return MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA;
    return MBEDTLS_SSL_ALERT_MSG_BAD_CERT;
}

bool self_signed(const mbedtls_x509_crt& crt) noexcept {
    return crt.subject_raw.len == crt.issuer_raw.len && crt.subject_raw.p != nullptr && crt.issuer_raw.p != nullptr &&
           std::memcmp(crt.subject_raw.p, crt.issuer_raw.p, crt.subject_raw.len) == 0;
}

// Whether a self-signed leaf's signature is its own (checked with itself as the only trust
// anchor, which mbedTLS accepts for an end-entity certificate).
bool self_signature_ok(const mbedtls_x509_crt& crt) noexcept {
    auto* c = const_cast<mbedtls_x509_crt*>(&crt);  // mbedTLS 2.x takes non-const pointers; it reads only
    mbedtls_x509_crt* next = c->next;
    c->next = nullptr;  // the leaf alone, not the rest of the chain the peer sent
    std::uint32_t flags = 0;
    int ret = mbedtls_x509_crt_verify(c, c, nullptr, nullptr, &flags, nullptr, nullptr);
    c->next = next;
    return ret == 0 || (flags & (MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_OTHER)) == 0;
}

bool want_io(int ret) noexcept { return ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE; }

bool is_ticket_notice(int ret) noexcept {
#if defined(MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
    return ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET;  // TLS 1.3 client, mbedTLS 3.x
#else
    (void)ret;
    return false;
#endif
}

bool valid_sni_name(std::string_view n) noexcept {
    if (n.empty() || n.size() > 253) return false;
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_'))
            return false;
    return true;
}

}  // namespace

struct Session::Impl {
    SslBox box;  // first member; see SslBox
    std::shared_ptr<const Context> ctx;
    State state = State::Handshaking;
    bool established = false;   // the handshake completed at some point (info getters work)
    bool output_full = false;   // the send callback hit kMaxPendingOutput
    Buffer in{kMaxPendingInput, kMaxPendingInput};
    Buffer out{kMaxPendingOutput, kOutputHighWater};
    std::string reason;
    const char* kind = "";  // short label for metrics: see failure_kind()
    std::string server_name;
    PeerVerification verification;
    Identities identities;
    unsigned char first_bytes[kFirstBytesKept] = {};
    std::size_t first_len = 0;
    bool chain_verified = false;  // mbedTLS verified a certificate chain in this handshake
    bool resumed = false;         // the peer's certificate came from a resumed session (see resumed())

    Impl(std::shared_ptr<const Context> c, const SessionOptions& options) : ctx(std::move(c)) {
        mbedtls_ssl_init(&box.ssl);
        box.owner = this;
        if (!ctx) {
            fail("setup", "setup: no TLS context");
            return;
        }
        int ret = mbedtls_ssl_setup(&box.ssl, ctx->ssl_config());
        if (ret != 0) {
            fail("setup", "setup: " + describe_mbedtls_error(ret));
            return;
        }
        mbedtls_ssl_set_bio(&box.ssl, this, bio_send, bio_recv, nullptr);
        mbedtls_ssl_set_verify(&box.ssl, on_verify, this);
        if (ctx->role() == Role::Client) {
            server_name = options.server_name;
            // Always called: with a name it is sent as SNI; without, mbedTLS 3.6.3+ needs to be
            // told explicitly that no name is expected. mbedTLS's own name check is ignored
            // (BADCERT_CN_MISMATCH is masked): RFC 6125 matching is done by authenticate_peer.
            ret = mbedtls_ssl_set_hostname(&box.ssl, server_name.empty() ? nullptr : server_name.c_str());
            if (ret != 0) {
                fail("setup", "setup: server name '" + server_name + "': " + describe_mbedtls_error(ret));
                return;
            }
            // A session that cannot be resumed just gets a full handshake.
            if (options.resume) (void)mbedtls_ssl_set_session(&box.ssl, &options.resume->impl().session);
        }
    }
    ~Impl() { mbedtls_ssl_free(&box.ssl); }
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    static Impl* of(mbedtls_ssl_context* ssl) noexcept { return reinterpret_cast<SslBox*>(ssl)->owner; }

    static int bio_send(void* p, const unsigned char* buf, std::size_t len) noexcept {
        auto* s = static_cast<Impl*>(p);
        if (!s->out.append(buf, len)) {
            s->output_full = true;
            return MBEDTLS_ERR_SSL_ALLOC_FAILED;
        }
        return static_cast<int>(len);
    }

    // Called for each certificate of a chain mbedTLS verifies (a full handshake); leaves the
    // verdict to mbedTLS and evaluate_peer().
    static int on_verify(void* p, mbedtls_x509_crt*, int, std::uint32_t*) noexcept {
        static_cast<Impl*>(p)->chain_verified = true;
        return 0;
    }

    // A resumed session's leaf against what may have changed since its ticket was made: its
    // validity dates, and this context's CRLs (those of the leaf's issuer). The rest of the chain
    // is not in the ticket; it was verified by this same context, whose CAs do not change.
    std::uint32_t recheck_resumed(const mbedtls_x509_crt& leaf) const noexcept {
        std::uint32_t flags = 0;
        if (mbedtls_x509_time_is_past(&leaf.valid_to)) flags |= MBEDTLS_X509_BADCERT_EXPIRED;
        if (mbedtls_x509_time_is_future(&leaf.valid_from)) flags |= MBEDTLS_X509_BADCERT_FUTURE;
        for (const mbedtls_x509_crl* crl = ctx->revocation_lists(); crl != nullptr && crl->version != 0; crl = crl->next)
            if (crl->issuer_raw.len == leaf.issuer_raw.len &&
                std::memcmp(crl->issuer_raw.p, leaf.issuer_raw.p, leaf.issuer_raw.len) == 0 &&
                mbedtls_x509_crt_is_revoked(&leaf, crl) != 0)
                flags |= MBEDTLS_X509_BADCERT_REVOKED;
        return flags;
    }

    static int bio_recv(void* p, unsigned char* buf, std::size_t len) noexcept {
        auto* s = static_cast<Impl*>(p);
        if (s->in.empty()) return MBEDTLS_ERR_SSL_WANT_READ;
        std::size_t n = len < s->in.size() ? len : s->in.size();
        std::memcpy(buf, s->in.data(), n);
        s->in.consume(n);
        return static_cast<int>(n);
    }

    void fail(const char* what, std::string why) {
        state = State::Failed;
        kind = what;
        reason = std::move(why);
    }

    // The alert the peer sent (mbedTLS leaves it at in_msg after FATAL_ALERT_MESSAGE).
    int received_alert() const noexcept {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
        const unsigned char* msg = box.ssl.MBEDTLS_PRIVATE(in_msg);
#else
        const unsigned char* msg = box.ssl.in_msg;
#endif
        return msg != nullptr ? msg[1] : -1;
    }

    std::string first_bytes_text() const {
        std::string t;
        for (std::size_t i = 0; i < first_len; ++i) {
            unsigned char c = first_bytes[i];
            if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
                t += static_cast<char>(c);
            } else {
                static const char hex[] = "0123456789abcdef";
                t += "\\x";
                t += hex[c >> 4];
                t += hex[c & 15];
            }
        }
        return t;
    }

    void fail_mbedtls(int ret, const char* phase) {
        std::string why;
        const char* what = "other";
        if (output_full) {
            what = "output_full";
            why = "more than " + std::to_string(kMaxPendingOutput / (1024 * 1024)) +
                  " MB of output waiting (the peer is not reading)";
        } else if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
            what = "peer_alert";
            int a = received_alert();
            why = a < 0 ? "peer sent a fatal alert"
                        : std::string("peer sent alert ") + alert_name(static_cast<unsigned char>(a)) + " (" +
                              std::to_string(a) + ")";
        } else if (!established && first_len > 0 && (first_bytes[0] < 20 || first_bytes[0] > 23)) {
            // Not a TLS record type (change_cipher_spec, alert, handshake, application_data).
            what = "not_tls";
            why = "peer does not speak TLS: it sent \"" + first_bytes_text() + "\"";
            if (first_bytes[0] == '<') why += " (plain XMPP on a TLS port?)";
#if defined(MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN)
        } else if (ret == MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN) {
            what = "no_common_cipher";
            why = "no cipher suite in common with the peer";
#endif
#if defined(MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE)
        } else if (ret == MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE) {
            what = "no_common_cipher";
            why = "no cipher suite in common with the peer";
#endif
#if defined(MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION)
        } else if (ret == MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION) {
            what = "no_common_version";
            why = "no TLS version in common with the peer";
#endif
#if defined(MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION)
        } else if (ret == MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION) {
            what = "no_common_version";
            why = "no TLS version in common with the peer";
#endif
        } else {
            why = describe_mbedtls_error(ret);
        }
        fail(what, std::string(phase) + ": " + why);
    }

    void evaluate_peer() {
        const ContextOptions& o = ctx->options();
        const mbedtls_x509_crt* peer = mbedtls_ssl_get_peer_cert(&box.ssl);
        if (peer != nullptr) identities = certificate_identities(*peer);
        if (o.verify_mode == VerifyMode::None) {
            verification = {PeerCertificate::NotChecked, 0, "not checked (verify_mode none)"};
            return;
        }
        if (peer == nullptr) {
            verification = {PeerCertificate::Missing, MBEDTLS_X509_BADCERT_MISSING, "no certificate"};
            return;
        }
        std::uint32_t flags = mbedtls_ssl_get_verify_result(&box.ssl);
        if (flags == 0xFFFFFFFFu) flags = MBEDTLS_X509_BADCERT_OTHER;
        resumed = !chain_verified;  // a certificate without a verification: it came from a ticket
        if (resumed) flags |= recheck_resumed(*peer);
        flags &= ~static_cast<std::uint32_t>(MBEDTLS_X509_BADCERT_CN_MISMATCH);  // names: RFC 6125, not here
        if ((flags & MBEDTLS_X509_BADCERT_EXT_KEY_USAGE) && ctx->role() == Role::Server &&
            o.accept_server_auth_for_clients &&
            mbedtls_x509_crt_check_extended_key_usage(peer, MBEDTLS_OID_SERVER_AUTH,
                                                      MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)) == 0)
            flags &= ~static_cast<std::uint32_t>(MBEDTLS_X509_BADCERT_EXT_KEY_USAGE);
        bool self_signed_only = false;
        if ((flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED) && o.verify_mode == VerifyMode::SelfSignedPeer &&
            self_signed(*peer) && self_signature_ok(*peer)) {
            flags &= ~static_cast<std::uint32_t>(MBEDTLS_X509_BADCERT_NOT_TRUSTED);
            self_signed_only = true;
        }
        if (flags == 0)
            verification = {PeerCertificate::Valid, 0, self_signed_only ? "self-signed: encrypts, proves no name" : "",
                            self_signed_only};
        else
            verification = {PeerCertificate::Invalid, flags, describe_verify_flags(flags)};
    }

    bool on_established() {
        established = true;
        evaluate_peer();
        if (ctx->options().require_valid_peer && verification.status != PeerCertificate::Valid) {
            (void)mbedtls_ssl_send_alert_message(&box.ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL, rejection_alert(verification));
            fail("certificate", "handshake: peer certificate rejected: " + verification.reason);
            return false;
        }
        state = State::Open;
        return true;
    }
};

int detail::sni_callback(void* ctx, mbedtls_ssl_context* ssl, const unsigned char* name, std::size_t len) {
    try {
        Session::Impl* s = Session::Impl::of(ssl);
        std::string_view n(reinterpret_cast<const char*>(name), len);
        if (!valid_sni_name(n)) return 0;  // not a host name: keep the default certificate
        s->server_name.assign(n);
        for (char& c : s->server_name)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
        if (const Context::KeyPair* pair = static_cast<const Context*>(ctx)->certificate_for(s->server_name))
            return mbedtls_ssl_set_hs_own_cert(ssl, pair->chain, pair->key);
        return 0;
    } catch (...) {
        return -1;  // out of memory: mbedTLS aborts the handshake
    }
}

// ---- Session ------------------------------------------------------------------------------

Session::Session(std::shared_ptr<const Context> context, const SessionOptions& options)
    : impl_(std::make_unique<Impl>(std::move(context), options)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

bool Session::feed_ciphertext(const void* data, std::size_t len) {
    Impl& s = *impl_;
    if (s.state == State::Failed) return false;
    if (s.state == State::Closed || len == 0) return true;
    if (s.first_len < kFirstBytesKept) {
        std::size_t n = std::min(kFirstBytesKept - s.first_len, len);
        std::memcpy(s.first_bytes + s.first_len, data, n);
        s.first_len += n;
    }
    if (!s.in.append(data, len)) {
        s.fail("input_full", "more than " + std::to_string(kMaxPendingInput / 1024) + " KB of input waiting to be processed");
        return false;
    }
    return true;
}

Progress Session::handshake() {
    Impl& s = *impl_;
    if (s.state == State::Failed) return Progress::Failed;
    if (s.state != State::Handshaking) return s.established ? Progress::Done : Progress::Failed;
    for (;;) {
        int ret = mbedtls_ssl_handshake(&s.box.ssl);
        if (ret == 0) return s.on_established() ? Progress::Done : Progress::Failed;
        if (want_io(ret)) return Progress::WantMore;
        if (is_ticket_notice(ret)) continue;
        s.fail_mbedtls(ret, "handshake");
        return Progress::Failed;
    }
}

IoResult Session::read_plaintext(std::string& out) {
    Impl& s = *impl_;
    switch (s.state) {
    case State::Handshaking: return IoResult::NotOpen;
    case State::Failed: return IoResult::Failed;
    case State::Closed: return IoResult::Closed;
    case State::Open:
    case State::Closing: break;
    }
    unsigned char buf[16384];  // one record's worth; the bytes are copied out at once
    for (;;) {
        int ret = mbedtls_ssl_read(&s.box.ssl, buf, sizeof buf);
        if (ret > 0) {
            out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(ret));
            continue;
        }
        if (want_io(ret) || ret == 0) return IoResult::Ok;  // 0: nothing more now
        if (is_ticket_notice(ret)) continue;
        if (ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
            if (s.state == State::Open) (void)mbedtls_ssl_close_notify(&s.box.ssl);  // answer in kind
            s.state = State::Closed;
            return IoResult::Closed;
        }
        s.fail_mbedtls(ret, "read");
        return IoResult::Failed;
    }
}

IoResult Session::write_plaintext(const void* data, std::size_t len) {
    Impl& s = *impl_;
    switch (s.state) {
    case State::Handshaking: return IoResult::NotOpen;
    case State::Failed: return IoResult::Failed;
    case State::Closing:
    case State::Closed: return IoResult::Closed;
    case State::Open: break;
    }
    const auto* p = static_cast<const unsigned char*>(data);
    while (len > 0) {
        int ret = mbedtls_ssl_write(&s.box.ssl, p, len);
        if (ret > 0) {
            p += ret;
            len -= static_cast<std::size_t>(ret);
            continue;
        }
        // Our send callback never blocks, so "want" or 0 here means something is wrong.
        if (want_io(ret) || ret == 0) {
            s.fail("other", "write: mbedTLS made no progress (" + describe_mbedtls_error(ret) + ")");
        } else {
            s.fail_mbedtls(ret, "write");
        }
        return IoResult::Failed;
    }
    return IoResult::Ok;
}

void Session::close_notify() {
    Impl& s = *impl_;
    if (s.state == State::Handshaking) {
        s.state = State::Closed;
    } else if (s.state == State::Open) {
        int ret = mbedtls_ssl_close_notify(&s.box.ssl);
        if (ret != 0 && !want_io(ret))
            s.fail_mbedtls(ret, "close");
        else
            s.state = State::Closing;
    }
}

bool Session::has_output() const noexcept { return !impl_->out.empty(); }
std::size_t Session::pending_output_size() const noexcept { return impl_->out.size(); }
std::string_view Session::pending_output() const noexcept { return impl_->out.view(); }
void Session::consume_output(std::size_t n) noexcept { impl_->out.consume(n); }
Buffer Session::take_ciphertext() noexcept { return std::move(impl_->out); }  // leaves it empty

State Session::state() const noexcept { return impl_->state; }
Role Session::role() const noexcept { return impl_->ctx ? impl_->ctx->role() : Role::Client; }

const std::string& Session::failure_reason() const noexcept {
    static const std::string none;
    return impl_->state == State::Failed ? impl_->reason : none;
}

std::string_view Session::failure_kind() const noexcept {
    return impl_->state == State::Failed ? impl_->kind : "";
}

void Session::release_idle_memory() noexcept {
    impl_->in.shrink();
    impl_->out.shrink();
}

std::string_view Session::protocol_version() const noexcept {
    return impl_->established ? mbedtls_ssl_get_version(&impl_->box.ssl) : "";
}

std::string_view Session::ciphersuite() const noexcept {
    return impl_->established ? mbedtls_ssl_get_ciphersuite(&impl_->box.ssl) : "";
}

std::string_view Session::alpn_protocol() const noexcept {
    const char* p = impl_->established ? mbedtls_ssl_get_alpn_protocol(&impl_->box.ssl) : nullptr;
    return p != nullptr ? p : "";
}

const std::string& Session::server_name() const noexcept { return impl_->server_name; }
bool Session::resumed() const noexcept { return impl_->resumed; }
const PeerVerification& Session::peer_verification() const noexcept { return impl_->verification; }
const Identities& Session::peer_identities() const noexcept { return impl_->identities; }

const mbedtls_x509_crt* Session::peer_certificate() const noexcept {
    return impl_->established ? mbedtls_ssl_get_peer_cert(&impl_->box.ssl) : nullptr;
}

PeerAuth Session::authenticate_peer(std::string_view domain) const noexcept {
    switch (impl_->verification.status) {
    case PeerCertificate::Missing: return PeerAuth::NoCertificate;
    case PeerCertificate::Valid:
        if (impl_->verification.self_signed_only) return PeerAuth::Untrusted;
        break;
    case PeerCertificate::NotChecked:
    case PeerCertificate::Invalid: return PeerAuth::Untrusted;
    }
    return certificate_matches_domain(impl_->identities, domain) ? PeerAuth::Authenticated : PeerAuth::NameMismatch;
}

std::shared_ptr<const SavedSession> Session::save_session() const {
    const Impl& s = *impl_;
    if (!s.established || role() != Role::Client || s.state == State::Failed) return nullptr;
    auto saved = std::make_shared<SavedSession>();
    if (mbedtls_ssl_get_session(&s.box.ssl, &saved->impl().session) != 0) return nullptr;
    return saved;
}

const char* state_name(State s) noexcept {
    switch (s) {
    case State::Handshaking: return "handshaking";
    case State::Open: return "open";
    case State::Closing: return "closing";
    case State::Closed: return "closed";
    case State::Failed: return "failed";
    }
    return "?";
}

std::string Session::describe_peer_auth(PeerAuth a) const {
    std::string out = peer_auth_name(a);
    if (a == PeerAuth::Untrusted) {
        const std::string& why = peer_verification().reason;
        if (!why.empty()) out += ": " + why;
    } else if (a == PeerAuth::NameMismatch) {
        const Identities& ids = peer_identities();
        std::vector<std::string> names = ids.dns_ids;
        names.insert(names.end(), ids.srv_ids.begin(), ids.srv_ids.end());
        names.insert(names.end(), ids.xmpp_addrs.begin(), ids.xmpp_addrs.end());
        if (!ids.has_san_ids) names.insert(names.end(), ids.common_names.begin(), ids.common_names.end());
        constexpr std::size_t kShown = 4;
        std::string list;
        for (std::size_t i = 0; i < names.size() && i < kShown; ++i) list += (i ? ", " : "") + names[i];
        if (names.size() > kShown) list += ", ...";
        out += list.empty() ? ": it names no server" : ": it is for " + list;
    }
    return out;
}

const char* peer_auth_name(PeerAuth a) noexcept {
    switch (a) {
    case PeerAuth::Authenticated: return "authenticated";
    case PeerAuth::NoCertificate: return "no certificate";
    case PeerAuth::Untrusted: return "untrusted certificate";
    case PeerAuth::NameMismatch: return "certificate for another name";
    }
    return "?";
}

}  // namespace s2s::tls
