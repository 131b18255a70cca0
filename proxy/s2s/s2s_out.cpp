#include "proxy/s2s/s2s_out.h"

#include "common/xmpp/jid.h"
#include "common/xmpp/stream_error.h"
#include "proxy/features/admission.h"
#include "proxy/features/bidi.h"
#include "proxy/features/db_verify.h"
#include "proxy/features/dial_plan.h"
#include "proxy/features/dialback_flow.h"
#include "proxy/ops/metrics.h"
#include "proxy/features/sasl_external.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {

const char* S2SOut::state_name(State s) noexcept {
    switch (s) {
        case State::Resolving: return "resolving";
        case State::Connecting: return "connecting";
        case State::AwaitingHeader: return "awaiting-header";
        case State::AwaitingFeatures: return "awaiting-features";
        case State::AwaitingProceed: return "awaiting-features";
        case State::TlsHandshake: return "tls-handshake";
        case State::Authenticating: return "authenticating";
        case State::Ready: return "ready";
        case State::Closing: return "closing";
    }
    return "?";
}

S2SOut::S2SOut(ProxyContext& ctx, const OutboundSettings& settings, Resolver& resolver, LinkOwner& owner,
               std::string remote, std::string first_local)
    : StreamMachine(ctx, State::Resolving),
      settings_(settings),
      resolver_(resolver),
      owner_(owner),
      remote_(std::move(remote)),
      first_local_(std::move(first_local)),
      dial_(ctx, settings.own_listeners, remote_),
      domains_(settings.queue_max_stanzas, settings.queue_max_bytes),
      eyeballs_(ctx.loop.uv()) {
    start();
}

S2SOut::~S2SOut() { forget_local_end(); }

// ---- reaching the remote -----------------------------------------------------------------------

void S2SOut::entered(State s) {
    if (s == State::AwaitingHeader || s == State::TlsHandshake || s == State::Authenticating)
        stream_->set_deadline(settings_.state_timeout_ms);
}

// start(), connect_next(), connected(), on_connected(): s2s_out_dial.cpp

// The certificate we show is that of the domain our stream is from.
const std::shared_ptr<const tls::Context>& S2SOut::tls_context() const {
    auto it = settings_.domain_contexts.find(first_local_);
    return it != settings_.domain_contexts.end() ? it->second : settings_.tls_context;
}

std::string S2SOut::sni_name() const {
    if (!settings_.sni) return "";
    return settings_.sni_host.empty() ? remote_ : settings_.sni_host;
}

void S2SOut::send_header() {
    stream_->send(stream_header(first_local_, remote_, "", true));
    enter(State::AwaitingHeader);
}

// ---- negotiation -------------------------------------------------------------------------------

void S2SOut::on_stream_open(const xml::StreamHeader& h) {
    auto from = h.attr("from");
    if (from && !domains_equal(*from, remote_)) {
        close_with(StreamError::InvalidFrom, "the stream is from " + std::string(*from) + ", not " + remote_);
        return;
    }
    stream_id_ = std::string(h.attr("id").value_or(""));
    version_1_ = major_version(h.attr("version").value_or("")) >= 1;
    if (!version_1_) {
        // A pre-1.0 server sends no features: plain dialback straight away.
        std::string why;
        if (!starttls::pre_1_0_acceptable(settings_.tls, stream_->tls_open(), remote_, &why)) {
            fail(StanzaError::RemoteServerNotFound, why);
            return;
        }
        if (!secure_enough()) return;
        after_negotiation();
        return;
    }
    enter(State::AwaitingFeatures);
}

bool S2SOut::secure_enough() {
    std::string why;
    if (dane_.secure_enough(ctx_, stream_->tls_open() ? stream_->tls() : nullptr, remote_, log_ctx(), &why))
        return true;
    cause_ = stream_->tls_open() ? Fallback::Certificate : Fallback::Negotiation;
    fail(StanzaError::RemoteServerNotFound, why);
    return false;
}

void S2SOut::on_features(const xml::Element& f) {
    limits_.read(f);
    bool tls_open = stream_->tls_open();
    // A remote that must show a valid certificate (or with usable DANE records) gets STARTTLS whatever the mode says.
    bool must_secure = (ctx_.policy.needs_valid_certificate(remote_) || dane_.required()) && tls_context();
    std::string why;
    switch (starttls::on_features(settings_.tls, tls_open, must_secure, f, remote_, &why)) {
        case starttls::ClientStep::Ask:
            stream_->send(starttls::kRequest);
            enter(State::AwaitingProceed);
            return;  // <proceed/> follows
        case starttls::ClientStep::Fail:
            fail(StanzaError::RemoteServerNotFound, why);
            return;
        case starttls::ClientStep::Continue: break;
    }
    if (!secure_enough()) return;
    // XEP-0288: asked for before authenticating.
    if (bidi_.wanted(ctx_, settings_.bidi, f, tls_open ? stream_->tls() : nullptr, remote_, log_ctx()))
        stream_->send(bidi_.ask(remote_, log_ctx(), settings_.limits));
    bool have_certificate = settings_.have_certificate || settings_.domain_contexts.count(first_local_);
    if (sasl_.wanted(f, tls_open, have_certificate)) {
        stream_->send(sasl_.start());
        enter(State::Authenticating);
        return;
    }
    after_negotiation();
}

void S2SOut::on_tls_established() {
    const tls::Session* t = stream_->tls();
    S2S_LOG_INFO(log_ctx(), "tls", "%.*s, certificate of %s: %s", static_cast<int>(t->protocol_version().size()),
                 t->protocol_version().data(), remote_.c_str(), tls::peer_auth_name(t->authenticate_peer(remote_)));
    std::string why;
    if (!dane_.verify(*t, remote_, log_ctx(), &why)) return fail(StanzaError::RemoteServerNotFound, why);
    send_header();
}

void S2SOut::after_negotiation() {
    enter(State::Ready);
    stream_->set_authenticated();  // the remote DNS named passed our checks: configured stanza limits
    if (!was_ready_) owner_.link_ready(remote_);
    was_ready_ = true;
    last_activity_ = ctx_.loop.now_ms();
    S2S_LOG_INFO(log_ctx(), "ready", "stream %s negotiated%s", stream_id_.c_str(),
                 stream_->tls_open() ? " over TLS" : "");
    send_verifies();
    if (sasl_.succeeded()) {
        // SASL EXTERNAL authenticated the domain our stream is from, whether or not it has
        // stanzas waiting (the remote may send back to it on a bidi link).
        LinkDomains::Domain& d = domains_.get(first_local_);
        if (d.auth != Auth::Valid) {
            d.auth = Auth::Valid;
            flush_queue(first_local_);
        }
    }
    for (auto& [local, d] : domains_.all())
        if (d.auth == Auth::None && !d.queue.empty()) authenticate(local);
    update_reverse_pairs();
    rearm();
}

void S2SOut::authenticate(const std::string& local) {
    LinkDomains::Domain& d = domains_.get(local);
    if (sasl_.succeeded() && local == first_local_) {
        d.auth = Auth::Valid;
        flush_queue(local);
        return;
    }
    if (stream_id_.empty()) {
        fail(StanzaError::RemoteServerNotFound, remote_ + " gave our stream no id, so dialback cannot work");
        return;
    }
    d.auth = Auth::Pending;
    stream_->send(dialback_request(local, remote_, ctx_.keys.key(remote_, local, stream_id_)));
    rearm();
}

void S2SOut::flush_queue(const std::string& local) {
    LinkDomains::Domain& d = domains_.get(local);
    while (!d.queue.empty()) write(local, d.queue.pop(), ", was queued");
    last_activity_ = ctx_.loop.now_ms();
}

void S2SOut::write(const std::string& local, const QueuedStanza& q, const char* note) {
    LogContext log{id(), local, remote_};
    if (auto too_large = limits_.refuse(q.bytes.size(), remote_, log)) {
        owner_.undeliverable(q, StanzaError::PolicyViolation, *too_large);
        return;
    }
    S2S_LOG_DEBUG(log, "to-remote", "%s (s2s-proxy -> %s%s)", q.describe().c_str(), remote_.c_str(), note);
    stream_->send(q.bytes, q.source);
    owner_.delivered(q);
}

void S2SOut::send_verifies() {
    for (const std::string& request : verifies_.take_unsent(remote_)) stream_->send(request);
    rearm();
}

// ---- what the remote sends -----------------------------------------------------------------------

void S2SOut::on_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    std::string_view ns = e.ns(), name = e.name();
    if (ns == xml::ns::streams && name == "features" &&
        (state_ == State::AwaitingFeatures || state_ == State::AwaitingProceed)) {
        on_features(e);
    } else if (ns == xml::ns::streams && name == "error") {
        xml::Element cond = e.first_element();
        xml::Element text = e.child("text", kStreamErrorsNs);
        std::string why = remote_ + " closed the stream with " + std::string(cond ? cond.name() : "an error") +
                          (text ? ": " + text.text() : "");
        cause_ = Fallback::StreamError;
        fail(StanzaError::RemoteServerNotFound, why);
    } else if (ns == xml::ns::tls && name == "proceed" && state_ == State::AwaitingProceed) {
        // (an unsolicited <proceed/> falls through to the stream error below)
        stream_->start_tls(tls_context(), tls::SessionOptions{sni_name(), nullptr});
        stream_->reset_parser();
        enter(State::TlsHandshake);
    } else if (ns == xml::ns::tls && name == "failure") {
        fail(StanzaError::RemoteServerNotFound, remote_ + " refused STARTTLS");
    } else if (ns == xml::ns::sasl && (name == "success" || name == "failure") && state_ == State::Authenticating) {
        if (sasl_.on_answer(e, log_ctx(), remote_)) {
            // first_local_ becomes Valid (and its queue flows) once the new stream is up
            stream_->reset_parser();
            send_header();
        } else {
            after_negotiation();
        }
    } else if (ns == xml::ns::dialback && name == "result" && state_ == State::Ready) {
        handle_db_result(e);
    } else if (ns == xml::ns::dialback && name == "verify" && state_ == State::Ready) {
        handle_db_verify(e);
    } else if (ns == xml::ns::server && (name == "message" || name == "presence" || name == "iq")) {
        handle_reverse_stanza(doc);
    } else {
        close_with(StreamError::UnsupportedStanzaType,
                   "<" + std::string(name) + "> is not expected on this stream (" + state_name(state_) + ")");
    }
}

void S2SOut::handle_db_result(const xml::Element& e) {
    if (bidi_.asked() && !e.attr("type")) {
        stream_->send(refuse_reverse_dialback(e, log_ctx()));
        return;
    }
    if (auto refused = refuse_on_link(e, remote_)) {
        close_with(refused->error, refused->text);
        return;
    }
    std::string local = normalize_domain(attr_or_empty(e, "to")).value_or("");
    LinkDomains::Domain* d = domains_.find(local);
    if (!d || d->auth != Auth::Pending) return;  // not asked: ignore
    if (auto refused = read_dialback_answer(e, local, remote_)) {
        d->auth = Auth::None;
        S2S_LOG_NOTICE(LogContext{id(), local, remote_}, "dialback-refused", "%s", refused->why.c_str());
        while (!d->queue.empty())
            owner_.undeliverable(d->queue.pop(), refused->condition, "s2s to " + remote_ + " failed: " + refused->why);
    } else {
        d->auth = Auth::Valid;
        S2S_LOG_INFO(LogContext{id(), local, remote_}, "authenticated", "dialback");
        flush_queue(local);
        update_reverse_pairs();
    }
    rearm();
}

void S2SOut::handle_db_verify(const xml::Element& e) {
    if (bidi_.asked() && !e.attr("type")) {
        // On a bidi link the remote may ask us, as authoritative server, about keys (XEP-0288).
        stream_->send(answer_db_verify(ctx_, id(), e));
        last_activity_ = ctx_.loop.now_ms();
        return;
    }
    if (auto refused = refuse_on_link(e, remote_)) {
        close_with(refused->error, refused->text);
        return;
    }
    verifies_.answer(e, remote_);
    rearm();
}

// Bidi (XEP-0288): the remote's stanzas back on this link.
void S2SOut::handle_reverse_stanza(xml::Document& doc) {
    if (auto refused = bidi_.on_stanza(ctx_, id(), stream_, doc, reverse_pairs_, remote_)) {
        close_with(refused->error, refused->text);
        return;
    }
    last_activity_ = ctx_.loop.now_ms();
}

// The pairs the remote may send for: from its domain to each local domain it accepted on this
// link (SASL EXTERNAL for the domain our stream is from, dialback for each other one).
void S2SOut::update_reverse_pairs() {
    if (!bidi_.asked()) return;
    domains_.accepted_pairs(remote_, reverse_pairs_);
}

bool S2SOut::carries(const std::string& local) const {
    if (ending_ != Ending::None) return false;
    return domains_.carries(local);
}

// ---- what the router asks --------------------------------------------------------------------------

void S2SOut::send(const std::string& local, QueuedStanza stanza) {
    LinkDomains::Domain& d = domains_.get(local);
    if (state_ == State::Ready && d.auth == Auth::Valid && d.queue.empty()) {
        write(local, stanza, "");
        last_activity_ = ctx_.loop.now_ms();
        return;
    }
    if (ending_ != Ending::None) {
        owner_.undeliverable(stanza, StanzaError::RemoteServerNotFound, "s2s to " + remote_ + " failed: " + last_error_);
        return;
    }
    if (!d.queue.push(std::move(stanza))) {
        owner_.undeliverable(stanza, StanzaError::ResourceConstraint,
                             "too many stanzas are waiting for the link to " + remote_);
        return;
    }
    if (state_ == State::Ready && d.auth == Auth::None) authenticate(local);
}

uint64_t S2SOut::verify(const std::string& local, const std::string& stream_id, const std::string& key,
                        Router::VerifyDone done) {
    uint64_t token = verifies_.add(local, stream_id, key, std::move(done));
    if (state_ == State::Ready) send_verifies();
    return token;
}

void S2SOut::cancel_verify(uint64_t token) { verifies_.cancel(token); }

// ---- deadlines and endings ---------------------------------------------------------------------------

bool S2SOut::waiting_for_answers() const { return domains_.pending() || verifies_.waiting(); }

void S2SOut::rearm() {
    if (state_ != State::Ready || !stream_) return;
    answers_due_ = settings_.state_timeout_ms ? ctx_.loop.now_ms() + settings_.state_timeout_ms : 0;
    stream_->set_deadline(limits_.deadline(ready_end(), ctx_.loop.now_ms(), *stream_));
}

void S2SOut::on_timeout() {
    if (state_ == State::Ready) {
        uint64_t now = ctx_.loop.now_ms();
        if (limits_.still_waiting(*stream_, now, ready_end())) return;
        if (!waiting_for_answers()) {
            retire(now - last_activity_);
            return;
        }
    }
    // MongooseIM's s2s.outgoing.state_timeout: the stream ends with connection-timeout (RFC 6120
    // 4.9.3.4). During a TLS handshake no XML can be sent: the connection is just closed.
    std::string why = "no answer from " + remote_ + " within " + std::to_string(settings_.state_timeout_ms) + " ms (" +
                      state_name(state_) + ")";
    cause_ = Fallback::Timeout;
    if (state_ == State::TlsHandshake) fail(StanzaError::RemoteServerTimeout, why);
    else
        fail(StanzaError::RemoteServerTimeout, why, StreamError::ConnectionTimeout,
             "no answer within " + std::to_string(settings_.state_timeout_ms) + " ms");
}

// The remote stopped taking our output (general.send_timeout): what is still queued comes back
// with remote-server-timeout, and the link ends as any failure does (the stanzas that follow take a
// new link).
void S2SOut::on_send_timeout(const std::string& why) {
    std::string text = remote_ + " stopped reading: " + why;
    if (state_ == State::TlsHandshake) fail(StanzaError::RemoteServerTimeout, text);
    else fail(StanzaError::RemoteServerTimeout, text, StreamError::ConnectionTimeout, "the peer stopped reading");
}

void S2SOut::bounce_all(StanzaError condition, const std::string& why) {
    domains_.drain([&](QueuedStanza q) { owner_.undeliverable(q, condition, why); });
    verifies_.fail_all(
        condition == StanzaError::RemoteServerTimeout ? Router::Verdict::Failed : Router::Verdict::Unreachable, why);
}

void S2SOut::fail(StanzaError condition, const std::string& why, std::optional<StreamError> error,
                  std::string_view error_text, Ending how) {
    if (ending_ == Ending::Failed || ending_ == Ending::ShutDown) return;
    if (how == Ending::Failed && !was_ready_ && stream_ && state_ != State::Connecting && !closing() && dial_.more()) {
        dial_.fell_back(std::exchange(cause_, Fallback::Negotiation), last_error_ = why, log_ctx());
        if (error) end_stream_with(*error, error_text, why, {}, state_ != State::TlsHandshake);
        else end_stream(why);
        return;
    }
    bool forgotten = ending_ == Ending::Idle;  // the owner was told link_closed() already
    ending_ = how;
    last_error_ = why;
    if (!was_ready_ && how == Ending::Failed) metrics().outgoing_failures.add(state_name(state_));
    S2S_LOG_NOTICE(log_ctx(), "link-failed", "%s", why.c_str());
    std::string next = forgotten ? "" : owner_.link_failed(remote_, why, was_ready_);
    bounce_all(condition, "s2s to " + remote_ + " failed: " + why + next);
    if (!forgotten) owner_.link_closed(this);
    if (resolve_token_) resolver_.cancel(resolve_token_);
    eyeballs_.cancel();
    resolve_token_ = 0;
    if (state_ == State::Connecting) close_stream(why);
    else if (error) end_stream_with(*error, error_text, why);
    else end_stream(why);
}

void S2SOut::retire(uint64_t idle_ms) {
    ending_ = Ending::Idle;
    end_stream("idle for " + std::to_string(idle_ms / 1000) + " s");
    owner_.link_closed(this);  // new stanzas get a new link
}

// Every ending has told the owner link_closed() by now.
void S2SOut::finish() {
    S2S_LOG_INFO(log_ctx(), "closed", "%s", last_error_.empty() ? "done" : last_error_.c_str());
    delete this;
}

void S2SOut::close_with(StreamError error, const std::string& why) {
    if (!closing()) fail(StanzaError::RemoteServerNotFound, why, error, why);
}

void S2SOut::shutdown(StreamError error, const std::string& why) {
    if (ending_ != Ending::None) return;  // already ending: its socket's close or a deferred finish() frees it
    if (stream_ && state_ != State::Connecting) {
        fail(StanzaError::RemoteServerNotFound, why, error, why, Ending::ShutDown);
        return;
    }
    bool no_socket = !stream_;
    fail(StanzaError::RemoteServerTimeout, why, std::nullopt, {}, Ending::ShutDown);
    if (no_socket) ctx_.loop.defer([this] { finish(); });
}

void S2SOut::on_stream_close() {
    cause_ = Fallback::Closed;
    fail(StanzaError::RemoteServerNotFound, remote_ + " closed the stream");
}

void S2SOut::on_stream_error(StreamError error, std::string_view text) {
    close_with(error, remote_ + " sent bad XML: " + std::string(text));
}

// The socket is closed: try the next candidate, or end the link (the one place it is freed
// once it has had a socket).
void S2SOut::on_closed(const std::string& reason) {
    stream_ = nullptr;
    forget_local_end();
    if (ending_ == Ending::None && state_ == State::Connecting) {
        if (last_error_.empty()) last_error_ = reason;
        if (connect_next()) return;
        fail(StanzaError::RemoteServerNotFound,
             "could not connect: " + last_error_ + (dial_.refused().empty() ? "" : "; " + dial_.refused()));
    } else if (ending_ == Ending::None && !was_ready_ && (closing() || dial_.more())) {
        // A candidate that failed its negotiation (fail() ended it), or closed during it: the next one.
        if (!closing())
            dial_.fell_back(state_ == State::TlsHandshake ? Fallback::Tls : Fallback::Closed,
                            last_error_ = "the connection closed: " + reason, log_ctx());
        if (connect_next()) return;
        fail(StanzaError::RemoteServerNotFound, last_error_);
    }
    // A close we started for idleness is no failure; anything else is.
    if (ending_ == Ending::None) fail(StanzaError::RemoteServerNotFound, "the connection closed: " + reason);
    finish();
}

}  // namespace s2s
