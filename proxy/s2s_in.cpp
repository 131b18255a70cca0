#include "proxy/s2s_in.h"

#include <mbedtls/base64.h>

#include "common/jid.h"
#include "common/log.h"
#include "common/random.h"
#include "common/stanza_error.h"
#include "proxy/xmpp.h"

namespace s2s {
namespace {

constexpr std::string_view kFeatureDialback = "urn:xmpp:features:dialback";
constexpr int kMaxSaslFailures = 2;

}  // namespace

const char* S2SIn::state_name(State s) noexcept {
    switch (s) {
        case State::AwaitingHeader: return "awaiting-header";
        case State::Negotiating: return "negotiating";
        case State::TlsHandshake: return "tls-handshake";
        case State::Closing: return "closing";
    }
    return "?";
}

void S2SIn::accept(ProxyContext& ctx, uv_stream_t* listener, const InboundSettings& settings) {
    auto* self = new S2SIn(ctx, settings);
    self->stream_ = Stream::create(ctx.loop, *self, settings.parse, self->id());
    if (uv_accept(listener, self->stream_->handle()) != 0) {
        self->stream_->abort("accept failed");
        return;
    }
    S2S_LOG_INFO(self->log_ctx(), "accepted", "%s from %s", settings.listener.c_str(),
                 self->stream_->peer_address().c_str());
    if (!self->stream_->start()) return;
    if (!settings.max_connections.allows(static_cast<int64_t>(settings.active))) {
        self->fail(StreamError::ResourceConstraint, settings.listener + " has reached max_connections (" +
                                                        std::to_string(settings.max_connections.value) + ")");
        return;
    }
    if (settings.tls == InboundTls::Direct) {
        self->stream_->start_tls(settings.tls_context);
        self->enter(State::TlsHandshake);
    } else {
        self->enter(State::AwaitingHeader);
    }
}

S2SIn::S2SIn(ProxyContext& ctx, const InboundSettings& settings)
    : Connection(ctx.next_conn_id()), ctx_(ctx), settings_(settings) {
    ctx_.connections.insert(this);
    ++settings_.active;
}

S2SIn::~S2SIn() {
    --settings_.active;
    ctx_.connections.erase(this);
}

LogContext S2SIn::log_ctx() const noexcept { return LogContext{id(), local_, claimed_}; }

void S2SIn::enter(State s) {
    state_ = s;
    switch (s) {
        case State::AwaitingHeader:
        case State::TlsHandshake:
            stream_->set_deadline(settings_.state_timeout_ms);
            break;
        case State::Negotiating:
            // Until a pair is authenticated the negotiation deadline runs; then the idle one.
            if (pairs_.empty()) stream_->set_deadline(settings_.state_timeout_ms);
            else stream_->set_deadline(settings_.idle_timeout_ms);
            break;
        case State::Closing:
            break;
    }
}

// ---- stream header and features ------------------------------------------------------------------

void S2SIn::on_stream_open(const xml::StreamHeader& h) {
    std::string to = domain_of(h.attr("to").value_or(""));
    std::string from_raw(h.attr("from").value_or(""));
    std::string from = from_raw.empty() ? "" : domain_of(from_raw);
    version_1_ = major_version(h.attr("version").value_or("")) >= 1;
    if (major_version(h.attr("version").value_or("")) > 1) {
        fail(StreamError::UnsupportedVersion, "this server speaks XMPP 1.0");
        return;
    }
    if (!h.attr("to")) {
        fail(StreamError::ImproperAddressing, "the stream header has no 'to'");
        return;
    }
    if (to.empty() || !ctx_.is_local(to)) {
        fail(StreamError::HostUnknown, std::string(h.attr("to").value_or("")) + " is not served here");
        return;
    }
    if (!from_raw.empty() && from.empty()) {
        fail(StreamError::InvalidFrom, "'" + from_raw + "' is not a domain");
        return;
    }
    if (!local_.empty() && (to != local_ || (!claimed_.empty() && from != claimed_))) {
        fail(StreamError::InvalidFrom, "the restarted stream names other domains");
        return;
    }
    local_ = to;
    if (!from.empty()) claimed_ = from;
    stream_id_ = random_hex(16);
    send_header();
    if (version_1_) send_features();
    enter(State::Negotiating);
}

void S2SIn::send_header() {
    stream_->send(stream_header(local_, claimed_, stream_id_, version_1_ || local_.empty()));
    header_sent_ = true;
}

bool S2SIn::tls_required_first() const noexcept {
    return settings_.tls == InboundTls::Require && !stream_->tls_open();
}

void S2SIn::send_features() {
    std::string f = "<stream:features>";
    bool tls_open = stream_->tls_open();
    if (!tls_open && (settings_.tls == InboundTls::Offer || settings_.tls == InboundTls::Require)) {
        f += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>";
        if (settings_.tls == InboundTls::Require) f += "<required/>";
        f += "</starttls>";
    }
    if (!tls_required_first()) {
        if (tls_open && !sasl_done_ && !claimed_.empty() &&
            stream_->tls()->authenticate_peer(claimed_) == tls::PeerAuth::Authenticated)
            f += "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>";
        f += "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>";
    }
    f += "</stream:features>";
    stream_->send(f);
}

// ---- elements ----------------------------------------------------------------------------------

void S2SIn::on_stanza(xml::Document& doc) {
    if (state_ != State::Negotiating) return;
    xml::Element e = doc.root();
    std::string_view ns = e.ns();
    if (ns == xml::ns::server && (e.name() == "message" || e.name() == "presence" || e.name() == "iq")) {
        handle_stanza(doc);
    } else if (ns == xml::ns::dialback && e.name() == "result") {
        handle_db_result(e);
    } else if (ns == xml::ns::dialback && e.name() == "verify") {
        handle_db_verify(e);
    } else if (ns == xml::ns::tls && e.name() == "starttls") {
        handle_starttls();
    } else if (ns == xml::ns::sasl && e.name() == "auth") {
        handle_sasl(e);
    } else if (ns == xml::ns::streams && e.name() == "error") {
        // RFC 6120 §4.9: a stream error ends the stream; we only close our side.
        xml::Element cond = e.first_element();
        S2S_LOG_NOTICE(log_ctx(), "peer-stream-error", "the peer ended the stream with %.*s",
                       static_cast<int>(cond ? cond.name().size() : 1), cond ? cond.name().data() : "?");
        on_stream_close();
    } else if (ns == xml::ns::sasl && e.name() == "abort") {
        sasl_failure("aborted", "");
    } else {
        fail(StreamError::UnsupportedStanzaType,
             "<" + std::string(e.name()) + "> in namespace '" + std::string(ns) + "' is not handled here");
    }
}

void S2SIn::handle_starttls() {
    if (stream_->tls() || settings_.tls == InboundTls::None || settings_.tls == InboundTls::Direct) {
        stream_->send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
        enter(State::Closing);
        stream_->close(stream_->tls() ? "STARTTLS asked twice" : "STARTTLS asked but not offered");
        return;
    }
    stream_->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    stream_->start_tls(settings_.tls_context);
    stream_->reset_parser();
    header_sent_ = false;
    enter(State::TlsHandshake);
}

void S2SIn::on_tls_established() {
    const tls::Session* t = stream_->tls();
    S2S_LOG_INFO(log_ctx(), "tls", "%.*s %.*s, peer certificate: %s", static_cast<int>(t->protocol_version().size()),
                 t->protocol_version().data(), static_cast<int>(t->ciphersuite().size()), t->ciphersuite().data(),
                 t->peer_verification().status == tls::PeerCertificate::Valid
                     ? "valid"
                     : t->peer_verification().status == tls::PeerCertificate::Missing
                           ? "none"
                           : t->peer_verification().reason.c_str());
    enter(State::AwaitingHeader);
}

void S2SIn::sasl_failure(const char* condition, const std::string& text) {
    std::string f = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><" + std::string(condition) + "/>";
    if (!text.empty()) f += "<text>" + xml::escape_text(text) + "</text>";
    f += "</failure>";
    stream_->send(f);
    S2S_LOG_NOTICE(log_ctx(), "sasl-failure", "%s: %s", condition, text.c_str());
    if (++sasl_failures_ > kMaxSaslFailures) fail(StreamError::NotAuthorized, "too many SASL failures");
}

void S2SIn::handle_sasl(const xml::Element& e) {
    if (sasl_done_) {
        fail(StreamError::PolicyViolation, "SASL already succeeded on this stream");
        return;
    }
    if (attr_or_empty(e, "mechanism") != "EXTERNAL") {
        sasl_failure("invalid-mechanism", "only EXTERNAL is offered");
        return;
    }
    if (!stream_->tls_open()) {
        sasl_failure("encryption-required", "EXTERNAL needs TLS with a certificate");
        return;
    }
    // The initial response is the authorization identity, base64; "=" or nothing means none.
    std::string b64 = e.text();
    std::string authzid;
    if (!b64.empty() && b64 != "=") {
        unsigned char buf[1024];
        size_t n = 0;
        if (mbedtls_base64_decode(buf, sizeof buf, &n, reinterpret_cast<const unsigned char*>(b64.data()), b64.size()) != 0) {
            sasl_failure("incorrect-encoding", "the authorization identity is not base64");
            return;
        }
        authzid.assign(reinterpret_cast<char*>(buf), n);
    }
    std::string domain = authzid.empty() ? claimed_ : domain_of(authzid);
    if (domain.empty()) {
        sasl_failure("invalid-authzid", authzid.empty() ? "no domain: the stream header has no 'from' and no "
                                                          "authorization identity was given"
                                                        : "'" + authzid + "' is not a domain");
        return;
    }
    if (!claimed_.empty() && domain != claimed_) {
        sasl_failure("invalid-authzid", "'" + domain + "' is not the stream's 'from' " + claimed_);
        return;
    }
    if (!ctx_.policy.allowed(domain)) {
        sasl_failure("not-authorized", ctx_.policy.refusal(domain));
        return;
    }
    tls::PeerAuth auth = stream_->tls()->authenticate_peer(domain);
    if (auth != tls::PeerAuth::Authenticated) {
        std::string why = auth == tls::PeerAuth::NameMismatch
                              ? "the certificate is not for " + domain
                              : auth == tls::PeerAuth::NoCertificate ? "no certificate was presented"
                                                                     : "the certificate is not trusted: " +
                                                                           stream_->tls()->peer_verification().reason;
        sasl_failure("not-authorized", why);
        return;
    }
    stream_->send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    sasl_done_ = true;
    claimed_ = domain;
    authenticated(domain, local_, "SASL EXTERNAL");
    stream_->reset_parser();
    header_sent_ = false;
    enter(State::AwaitingHeader);
}

// Receiving server role (XEP-0220 §2.1): the peer claims a domain with a dialback key.
void S2SIn::handle_db_result(const xml::Element& e) {
    if (tls_required_first()) {
        fail(StreamError::PolicyViolation, "TLS is required before dialback");
        return;
    }
    std::string from_raw = attr_or_empty(e, "from"), to_raw = attr_or_empty(e, "to");
    std::string remote = domain_of(from_raw), local = domain_of(to_raw);
    if (remote.empty()) {
        fail(StreamError::InvalidFrom, "db:result from '" + from_raw + "' is not a domain");
        return;
    }
    if (!e.attr("type").value_or("").empty()) {
        fail(StreamError::UnsupportedStanzaType, "a db:result with a type is an answer, not a request");
        return;
    }
    if (local.empty() || !ctx_.is_local(local)) {
        answer_db_result(remote, to_raw, "error", "item-not-found", to_raw + " is not served here");
        return;
    }
    if (!ctx_.policy.allowed(remote)) {
        S2S_LOG_NOTICE(LogContext{id(), local, remote}, "refused", "dialback: %s", ctx_.policy.refusal(remote).c_str());
        answer_db_result(remote, local, "error", "policy-violation", ctx_.policy.refusal(remote));
        return;
    }
    bool cert_ok = stream_->tls_open() && stream_->tls()->authenticate_peer(remote) == tls::PeerAuth::Authenticated;
    if (ctx_.policy.needs_valid_certificate(remote) && !cert_ok) {
        S2S_LOG_NOTICE(LogContext{id(), local, remote}, "refused", "dialback: a valid certificate is required");
        answer_db_result(remote, local, "error", "not-authorized",
                         remote + " must present a certificate valid for its domain");
        return;
    }
    if (is_authenticated(remote, local) || cert_ok) {
        // The certificate already proves the domain (XEP-0344): no need to ask its authority.
        answer_db_result(remote, local, "valid");
        authenticated(remote, local, cert_ok ? "dialback with a valid certificate" : "dialback");
        return;
    }
    for (auto& p : pending_)
        if (p.remote == remote && p.local == local) return;  // already being verified
    std::string key = e.text();
    uint64_t token = ctx_.router.verify_dialback(
        local, remote, stream_id_, key, [this, remote, local](Router::Verdict v, const std::string& why) {
            for (auto it = pending_.begin(); it != pending_.end(); ++it)
                if (it->remote == remote && it->local == local) {
                    pending_.erase(it);
                    break;
                }
            if (state_ == State::Closing) return;
            switch (v) {
                case Router::Verdict::Valid:
                    answer_db_result(remote, local, "valid");
                    authenticated(remote, local, "dialback");
                    break;
                case Router::Verdict::Invalid:
                    S2S_LOG_NOTICE(LogContext{id(), local, remote}, "dialback-invalid", "%s", why.c_str());
                    answer_db_result(remote, local, "invalid");
                    break;
                case Router::Verdict::Failed:
                    S2S_LOG_NOTICE(LogContext{id(), local, remote}, "dialback-failed", "%s", why.c_str());
                    answer_db_result(remote, local, "error", "remote-server-timeout", why);
                    break;
            }
        });
    pending_.push_back({remote, local, token});
}

void S2SIn::answer_db_result(const std::string& remote, const std::string& local, const char* type,
                             const char* error_condition, const std::string& text) {
    stream_->send(dialback_answer("result", local, remote, "", type, error_condition ? error_condition : "", text));
}

// Authoritative server role (XEP-0220 §2.3): was this key issued by us (or a replica)?
void S2SIn::handle_db_verify(const xml::Element& e) {
    std::string asker = attr_or_empty(e, "from"), ours = attr_or_empty(e, "to"), sid = attr_or_empty(e, "id");
    std::string ours_norm = domain_of(ours);
    bool valid = !ours_norm.empty() && ctx_.is_local(ours_norm) && !sid.empty() &&
                 ctx_.keys.verify(domain_of(asker), ours_norm, sid, e.text());
    S2S_LOG_INFO(LogContext{id(), ours_norm, domain_of(asker)}, "db-verify", "answered %s",
                 valid ? "valid" : "invalid");
    stream_->send(dialback_answer("verify", ours, asker, sid, valid ? "valid" : "invalid"));
    // A stream used only to verify keys (XEP-0220 §2.3) is legitimate: it is idle now, not stuck.
    served_verify_ = true;
    last_activity_ = ctx_.loop.now_ms();
    if (pairs_.empty()) stream_->set_deadline(settings_.idle_timeout_ms);
}

bool S2SIn::is_authenticated(std::string_view remote, std::string_view local) const noexcept {
    for (auto& p : pairs_)
        if (domains_equal(p.remote, remote) && domains_equal(p.local, local)) return true;
    return false;
}

void S2SIn::authenticated(const std::string& remote, const std::string& local, const char* how) {
    if (!is_authenticated(remote, local)) pairs_.push_back({remote, local});
    S2S_LOG_INFO(LogContext{id(), local, remote}, "authenticated", "%s", how);
    last_activity_ = ctx_.loop.now_ms();
    if (state_ == State::Negotiating) stream_->set_deadline(settings_.idle_timeout_ms);
}

// A stanza is forwarded only when its 'from' domain is authenticated on this stream for its
// 'to' domain (RFC 6120 §8.1.1.2, XEP-0220 §2.4); anything else ends the stream.
void S2SIn::handle_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    if (pairs_.empty()) {
        fail(StreamError::NotAuthorized, "a stanza arrived before authentication");
        return;
    }
    auto from_attr = e.attr("from"), to_attr = e.attr("to");
    if (!from_attr || !to_attr) {
        fail(StreamError::ImproperAddressing, std::string("a stanza without '") + (from_attr ? "to" : "from") + "'");
        return;
    }
    auto from = JidView::parse(*from_attr);
    if (!from) {
        fail(StreamError::InvalidFrom, "'" + std::string(*from_attr) + "' is not a JID");
        return;
    }
    auto to = JidView::parse(*to_attr);
    if (!to) {
        fail(StreamError::ImproperAddressing, "'" + std::string(*to_attr) + "' is not a JID");
        return;
    }
    const Pair* pair = nullptr;
    bool local_known = false;
    for (auto& p : pairs_) {
        if (!domains_equal(p.local, to->domain())) continue;
        local_known = true;
        if (domains_equal(p.remote, from->domain())) {
            pair = &p;
            break;
        }
    }
    if (!pair) {
        std::string to_domain(to->domain()), from_domain(from->domain());
        if (!local_known && !ctx_.is_local(domain_of(to_domain)))
            fail(StreamError::HostUnknown, to_domain + " is not served here");
        else
            fail(StreamError::InvalidFrom, from_domain + " is not authenticated for " + to_domain + " on this stream");
        return;
    }
    last_activity_ = ctx_.loop.now_ms();
    S2S_LOG_DEBUG(LogContext{id(), pair->local, pair->remote}, "from-remote", "%.*s %.*s %.*s -> %.*s (%s -> s2s-proxy)",
                  static_cast<int>(e.name().size()), e.name().data(), static_cast<int>(e.attr("id").value_or("-").size()),
                  e.attr("id").value_or("-").data(), static_cast<int>(from_attr->size()), from_attr->data(),
                  static_cast<int>(to_attr->size()), to_attr->data(), pair->remote.c_str());
    ctx_.router.from_remote(pair->remote, pair->local, doc);
}

// ---- endings -----------------------------------------------------------------------------------

void S2SIn::fail(StreamError error, const std::string& text) {
    if (state_ == State::Closing) return;
    S2S_LOG_NOTICE(log_ctx(), "stream-error", "%.*s: %s", static_cast<int>(name(error).size()), name(error).data(),
                   text.c_str());
    if (!header_sent_) send_header();
    stream_->send(stream_error_bytes(error, text) + "</stream:stream>");
    enter(State::Closing);
    stream_->close(std::string(name(error)) + ": " + text);
}

void S2SIn::shutdown(StreamError error, const std::string& why) { fail(error, why); }

void S2SIn::on_stream_close() {
    if (state_ == State::Closing) return;
    if (!header_sent_) send_header();
    stream_->send("</stream:stream>");
    enter(State::Closing);
    stream_->close("the peer closed the stream");
}

void S2SIn::on_stream_error(StreamError error, std::string_view text) { fail(error, std::string(text)); }

void S2SIn::on_timeout() {
    uint64_t now = ctx_.loop.now_ms();
    if (state_ == State::Negotiating && (!pairs_.empty() || served_verify_)) {
        uint64_t idle = now - last_activity_;
        if (idle < settings_.idle_timeout_ms) {
            stream_->set_deadline(settings_.idle_timeout_ms - idle);
            return;
        }
        if (!header_sent_) send_header();
        stream_->send("</stream:stream>");
        enter(State::Closing);
        stream_->close("idle for " + std::to_string(idle / 1000) + " s");
        return;
    }
    fail(StreamError::ConnectionTimeout, std::string("negotiation took too long (") + state_name(state_) + ")");
}

void S2SIn::on_closed(const std::string& reason) {
    for (auto& p : pending_) ctx_.router.cancel_verify(p.token);
    pending_.clear();
    S2S_LOG_INFO(log_ctx(), "closed", "%s", reason.c_str());
    stream_ = nullptr;
    delete this;
}

}  // namespace s2s
