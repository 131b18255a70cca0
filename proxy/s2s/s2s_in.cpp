#include "proxy/ops/metrics.h"
#include "proxy/s2s/s2s_in.h"

#include <algorithm>

#include "common/xmpp/jid.h"
#include "common/base/log.h"
#include "common/base/random.h"
#include "common/xmpp/stanza_error.h"
#include "proxy/net/access.h"
#include "proxy/features/admission.h"
#include "proxy/features/bidi.h"
#include "proxy/features/db_verify.h"
#include "proxy/features/dialback_flow.h"
#include "proxy/features/sasl_external.h"
#include "proxy/features/stream_limits.h"
#include "proxy/net/shaper.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {

const char* S2SIn::state_name(State s) noexcept {
    switch (s) {
        case State::ProxyHeader: return "proxy-header";
        case State::AwaitingHeader: return "awaiting-header";
        case State::Negotiating: return "negotiating";
        case State::TlsHandshake: return "tls-handshake";
        case State::Closing: return "closing";
    }
    return "?";
}

void S2SIn::accept(ProxyContext& ctx, uv_stream_t* listener, const InboundSettings& settings) {
    auto* self = new S2SIn(ctx, settings);
    if (!self->accept_stream(listener, settings.parse, Side::Public, settings.max_rate)) return;
    bool trusted = settings.proxy_protocol && self->stream_->expect_proxy_header(settings.proxy_trusted);
    S2S_LOG_INFO(self->log_ctx(), "accepted", "%s from %s%s", settings.listener.c_str(),
                 self->stream_->peer_address().c_str(),
                 !settings.proxy_protocol ? ""
                 : trusted                ? " (in proxy_trusted: a PROXY header must come first)"
                                          : " (outside proxy_trusted: no PROXY header allowed)");
    if (!self->stream_->start()) return;
    if (!settings.max_connections.allows(static_cast<int64_t>(settings.active))) {
        metrics().connections_refused.add("max_connections");
        self->fail(StreamError::ResourceConstraint, settings.listener + " has reached max_connections (" +
                                                        std::to_string(settings.max_connections.value) + ")");
        return;
    }
    if (settings.proxy_protocol) {
        // A trusted balancer's connections are counted under the client address its header
        // names; anyone else's under their own address, from now on.
        if (!trusted && !self->admit_host()) return;
        self->enter(State::ProxyHeader);
        return;
    }
    self->serve();
}

// The client's address is known (at accept, or from the PROXY header): it counts against
// max_connections_per_host, then the stream starts as the listener's TLS mode says.
void S2SIn::serve() {
    if (admission_.host().empty() && !admit_host()) return;
    if (settings_.tls.direct) {
        if (!begin_handshake()) return;
        stream_->start_tls(settings_.tls_context);
        enter(State::TlsHandshake);
    } else {
        enter(State::AwaitingHeader);
    }
}

bool S2SIn::admit_host() {
    sockaddr_storage ss{};
    std::string host = stream_->peer_sockaddr(&ss) ? format_ip(reinterpret_cast<const sockaddr*>(&ss)) : "?";
    if (auto refused = admission_.admit_host(std::move(host), ctx_.loop.now_ms(), log_ctx())) {
        fail(StreamError::ResourceConstraint, *refused);
        return false;
    }
    return true;
}

bool S2SIn::begin_handshake() {
    if (auto refused = admission_.begin_handshake(log_ctx())) {
        fail(StreamError::ResourceConstraint, *refused);
        return false;
    }
    return true;
}

void S2SIn::on_proxy_header(const ProxyStage& stage) {
    if (state_ != State::ProxyHeader) return;
    if (!stage.report(stream_->socket_peer_address(), log_ctx())) {
        enter(State::Closing);  // the stream aborts by itself
        return;
    }
    serve();
}

S2SIn::S2SIn(ProxyContext& ctx, const InboundSettings& settings)
    : StreamMachine(ctx, State::AwaitingHeader),
      settings_(settings),
      admission_(settings),
      routes_(ctx.router, *this, id()),
      dialback_(ctx, *this, id(), admission_.host()) {
    ++settings_.active;
}

S2SIn::~S2SIn() { --settings_.active; }

LogContext S2SIn::log_ctx() const noexcept { return LogContext{id(), local_, claimed_}; }

void S2SIn::entered(State s) {
    if (s == State::Closing) {
        routes_.withdraw_all();
        return;
    }
    // Each new stream (and the TLS handshake) gets a negotiation window of state_timeout (the
    // PROXY header stage, proxy_protocol_timeout); once a pair is authenticated the idle deadline
    // takes over (see negotiating()).
    if (s != State::Negotiating || pairs_.empty()) {
        uint64_t now = ctx_.loop.now_ms();
        uint64_t window = s == State::ProxyHeader ? settings_.proxy_timeout_ms : settings_.state_timeout_ms;
        window_end_ = window ? now + window : 0;
    }
    update_routes();
    rearm();
}

// ---- deadlines -----------------------------------------------------------------------------------

// Negotiating: no pair authenticated yet, or a new stream or TLS handshake under way. Otherwise
// the stream is in use and only idleness ends it. Answering db:verify requests does not end
// negotiation (it authenticates nothing): it only restarts the window (handle_db_verify()).
bool S2SIn::negotiating() const noexcept {
    return state_ != State::Negotiating || pairs_.empty();
}

// The one stream deadline: the end of the negotiation window (or of idleness), but never before
// a dialback verification this stream asked for has had its own bound; and each verification's
// bound, to give it up then.
void S2SIn::rearm() {
    if (state_ == State::Closing || !stream_) return;
    uint64_t end = negotiating() ? window_end_
                                 : settings_.idle_timeout_ms ? last_heard() + settings_.idle_timeout_ms : 0;
    if (end != 0) end = std::max(end, dialback_.latest_bound());
    uint64_t next = dialback_.earliest_bound();
    if (end != 0 && (next == 0 || end < next)) next = end;
    uint64_t now = ctx_.loop.now_ms();
    stream_->set_deadline(next == 0 ? 0 : next > now ? next - now : 1);
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
        if (to.empty()) count_refused_domain("stream-header", h.attr("to").value_or(""));
        fail(StreamError::HostUnknown, std::string(h.attr("to").value_or("")) + " is not served here");
        return;
    }
    if (!from_raw.empty() && from.empty()) {
        count_refused_domain("stream-header", from_raw);
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
    bidi_.new_stream();
    stream_->send(owed_header());
    if (version_1_) send_features();
    enter(State::Negotiating);
}

std::string S2SIn::owed_header() {
    if (header_sent_) return {};
    header_sent_ = true;
    return stream_header(local_, claimed_, stream_id_, version_1_ || local_.empty());
}

bool S2SIn::tls_required_first() const noexcept {
    return starttls::required_first(settings_.tls, *stream_);
}

void S2SIn::send_features() {
    std::string f = "<stream:features>";
    bool tls_open = stream_->tls_open();
    f += starttls::feature(settings_.tls, *stream_);
    if (!tls_required_first()) {
        f += sasl_.feature(ctx_, tls_open ? stream_->tls() : nullptr, claimed_);
        f += "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>";
        f += bidi_.feature(settings_.bidi, tls_open, nothing_claimed());
    }
    if (settings_.stream_limits) f += limits_feature(settings_.parse.limits.max_stanza_size, settings_.idle_timeout_ms);
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
        dialback_.on_request(e, stream_id_);
    } else if (ns == xml::ns::dialback && e.name() == "verify") {
        handle_db_verify(e);
    } else if (ns == xml::ns::tls && e.name() == "starttls") {
        handle_starttls();
    } else if (ns == xml::ns::sasl && e.name() == "auth") {
        handle_sasl(e);
    } else if (ns == kBidiNs && e.name() == "bidi") {
        handle_bidi();
    } else if (ns == xml::ns::streams && e.name() == "error") {
        // RFC 6120 §4.9: a stream error ends the stream; we only close our side.
        xml::Element cond = e.first_element();
        S2S_LOG_NOTICE(log_ctx(), "peer-stream-error", "the peer ended the stream with %.*s",
                       static_cast<int>(cond ? cond.name().size() : 1), cond ? cond.name().data() : "?");
        on_stream_close();
    } else if (ns == xml::ns::sasl && e.name() == "abort") {
        answer_sasl(sasl_.on_abort(log_ctx()));
    } else {
        fail(StreamError::UnsupportedStanzaType,
             "<" + std::string(e.name()) + "> in namespace '" + std::string(ns) + "' is not handled here");
    }
}

void S2SIn::handle_starttls() {
    std::string refused;
    if (!starttls::may_proceed(settings_.tls, *stream_, &refused) ||
        !starttls::early_enough(!pairs_.empty(), dialback_.pending() != 0, log_ctx(), &refused)) {
        enter(State::Closing);
        starttls::refuse(*stream_, refused);
        return;
    }
    if (!begin_handshake()) return;
    starttls::proceed(*stream_, settings_.tls_context);
    header_sent_ = false;
    enter(State::TlsHandshake);
}

// XEP-0288 §2.2: the peer asks that this stream carry stanzas both ways. It changes nothing
// until a pair is authenticated (see update_routes()).
void S2SIn::handle_bidi() {
    if (auto refused = bidi_.on_request(settings_.bidi, stream_->tls_open(), nothing_claimed(), log_ctx()))
        fail(StreamError::UnsupportedStanzaType, *refused);
}

// Nothing authenticated or being verified on this stream, by SASL or dialback.
bool S2SIn::nothing_claimed() const noexcept {
    return !sasl_.succeeded() && pairs_.empty() && dialback_.pending() == 0;
}

void S2SIn::on_tls_established() {
    admission_.end_handshake();
    tls_up_ = true;
    S2S_LOG_INFO(log_ctx(), "tls", "%s", starttls::describe(*stream_->tls()).c_str());
    enter(State::AwaitingHeader);
}

void S2SIn::handle_sasl(const xml::Element& e) {
    SaslExternalServer::Answer a = sasl_.on_auth(
        ctx_, stream_->tls_open() ? stream_->tls() : nullptr, e, claimed_, log_ctx(),
        [this](const std::string& domain) -> std::optional<std::string> {
            if (!admitted(domain, local_, "sasl_external"))
                return domain + " is not admitted by this listener's access rule";
            if (!is_authenticated(domain, local_) && !room_for_pair(domain, local_))
                return "this stream may authenticate at most " + std::to_string(ctx_.config.max_domain_pairs) +
                       " domain pairs";
            return std::nullopt;
        });
    answer_sasl(a);
}

void S2SIn::answer_sasl(const SaslExternalServer::Answer& a) {
    if (!a.bytes.empty()) stream_->send(a.bytes);
    if (a.error) {
        fail(*a.error, a.error_text);
        return;
    }
    if (a.authenticated.empty()) return;
    claimed_ = a.authenticated;
    stream_->reset_parser();
    header_sent_ = false;
    enter(State::AwaitingHeader);
    // (after the restart: nothing of ours may go back before our new stream header)
    authenticated(a.authenticated, local_, "SASL EXTERNAL");
}

bool S2SIn::room_for_pair(const std::string& remote, const std::string& local) {
    size_t max = static_cast<size_t>(std::max<int64_t>(ctx_.config.max_domain_pairs, 1));
    if (pairs_.size() + dialback_.pending() < max) return true;
    metrics().limits_reached.add("max_domain_pairs");
    S2S_LOG_REFUSAL(dialback_.refused_claims(), LogContext{id(), local, remote}, "refused",
                   "claim refused: s2s.max_domain_pairs (%zu) reached (%zu authenticated, %zu being verified)", max,
                   pairs_.size(), dialback_.pending());
    return false;
}

void S2SIn::handle_db_verify(const xml::Element& e) {
    if (tls_required_first()) {
        fail(StreamError::PolicyViolation, "TLS is required before dialback");
        return;
    }
    if (!e.attr("type").value_or("").empty()) {
        fail(StreamError::UnsupportedStanzaType, "a db:verify with a type is an answer, not a request");
        return;
    }
    stream_->send(answer_db_verify(ctx_, id(), e));
    // A stream used only to verify keys (XEP-0220 §2.3) is legitimate, but it authenticates
    // nothing: it may stay while it asks, up to state_timeout between requests, and no longer.
    served_verify_ = true;
    last_activity_ = ctx_.loop.now_ms();
    if (negotiating() && state_ == State::Negotiating && settings_.state_timeout_ms)
        window_end_ = last_activity_ + settings_.state_timeout_ms;
    rearm();
}

// XEP-0478's idle-seconds count any traffic from the peer: a whitespace keepalive too.
uint64_t S2SIn::last_heard() const noexcept {
    return std::max(last_activity_, stream_ ? stream_->last_read_ms() : 0);
}

bool S2SIn::is_authenticated(std::string_view remote, std::string_view local) const noexcept {
    return pairs_.contains(remote, local);
}

bool S2SIn::admitted(const std::string& remote, const std::string& local, const char* how) {
    if (access_allows(ctx_.config, settings_.access, remote)) return true;
    S2S_LOG_REFUSAL(dialback_.refused_claims(), LogContext{id(), local, remote}, "refused", "%s: %s is not admitted by access rule %s of %s", how,
                   remote.c_str(), settings_.access.c_str(), settings_.listener.c_str());
    metrics().access_refusals.add(how);
    return false;
}

void S2SIn::apply_shaper() {
    if (!stream_) return;
    if (pairs_.empty()) {
        stream_->set_rate_limit(shaper_rate(ctx_.config, settings_.shaper, ""));
        return;
    }
    uint64_t rate = 0;
    for (auto& p : pairs_.pairs()) {
        uint64_t r = shaper_rate(ctx_.config, settings_.shaper, p.remote);
        if (r > 0 && (rate == 0 || r < rate)) rate = r;
    }
    stream_->set_rate_limit(rate);
}

void S2SIn::authenticated(const std::string& remote, const std::string& local, const char* how) {
    pairs_.insert(remote, local);
    stream_->set_authenticated();  // the configured stanza limits from now on
    apply_shaper();
    S2S_LOG_INFO(LogContext{id(), local, remote}, "authenticated", "%s", how);
    if (bidi_.agreed() && !(stream_->tls_open() && stream_->tls()->authenticate_peer(remote) == tls::PeerAuth::Authenticated))
        S2S_LOG_INFO(LogContext{id(), local, remote}, "bidi-not-used",
                     "%s proved its domain by dialback only: our stanzas for it take an outbound link",
                     remote.c_str());
    last_activity_ = ctx_.loop.now_ms();
    // Only the new pair's reverse route changes (the others were offered when they came).
    if (routes_open()) routes_.offer(remote, local, *stream_->tls());
    else routes_.withdraw_all();
    rearm();
}

// ---- bidi: our stanzas back on this stream (XEP-0288) ------------------------------------------

// Offers the router each authenticated pair whose remote domain the peer's certificate proves,
// while our stream is open for stanzas; withdraws them all otherwise. A full pass, run when the
// stream's state changes (a bounded number of times per stream); a new pair is offered alone.
void S2SIn::update_routes() {
    if (!routes_open()) {
        routes_.withdraw_all();
        return;
    }
    for (auto& p : pairs_.pairs()) routes_.offer(p.remote, p.local, *stream_->tls());
}

bool S2SIn::routes_open() const noexcept {
    return bidi_.agreed() && state_ == State::Negotiating && header_sent_ && stream_ && stream_->tls_open();
}

bool S2SIn::send_reverse(const std::string& local, const std::string& remote, const QueuedStanza& stanza) {
    if (state_ != State::Negotiating || !header_sent_ || !stream_ || stream_->state() != Stream::State::Open ||
        !routes_.contains(remote, local) || !access_allows(ctx_.config, settings_.access, remote))
        return false;
    S2S_LOG_DEBUG(LogContext{id(), local, remote}, "to-remote", "%s (s2s-proxy -> %s, on its bidi stream)",
                  stanza.describe().c_str(), remote.c_str());
    stream_->send(stanza.bytes, stanza.source);
    // Past the output's hard limit the stream aborts inside send(): the stanza is lost, and the
    // router must bounce or reroute it.
    if (stream_->state() != Stream::State::Open) return false;
    last_activity_ = ctx_.loop.now_ms();
    return true;
}

// ---- stanzas from the remote ---------------------------------------------------------------------

void S2SIn::handle_stanza(xml::Document& doc) {
    if (auto refused = route_remote_stanza(ctx_, id(), stream_, doc, pairs_, settings_.access)) {
        fail(refused->error, refused->text);
        return;
    }
    last_activity_ = ctx_.loop.now_ms();
}

// ---- endings -----------------------------------------------------------------------------------

void S2SIn::fail(StreamError error, const std::string& text) {
    if (closing()) return;
    S2S_LOG_NOTICE(log_ctx(), "stream-error", "%.*s: %s", static_cast<int>(name(error).size()), name(error).data(),
                   text.c_str());
    // Plaintext XML would land in a TLS handshake: the connection is just closed.
    bool writable = state_ != State::TlsHandshake && (!settings_.tls.direct || tls_up_);
    end_stream_with(error, text, std::string(name(error)) + ": " + text, writable ? owed_header() : "", writable);
}

void S2SIn::end(const std::string& why) {
    if (!closing()) end_stream(why, owed_header());
}

void S2SIn::shutdown(StreamError error, const std::string& why) { fail(error, why); }

void S2SIn::on_stream_close() { end("the peer closed the stream"); }

void S2SIn::on_stream_error(StreamError error, std::string_view text) { fail(error, std::string(text)); }

void S2SIn::on_timeout() {
    uint64_t now = ctx_.loop.now_ms();
    dialback_.expire(now);
    if (state_ == State::Closing) return;
    // A load balancer that sends no PROXY header in time gets no XMPP answer, only the close.
    const ProxyStage* stage = stream_->proxy_stage();
    if (state_ == State::ProxyHeader && stage && stage->trusted() && window_end_ != 0 && window_end_ <= now) {
        abort_stream(stage->report_timeout(settings_.proxy_timeout_ms, stream_->socket_peer_address(), log_ctx()));
        return;
    }
    bool verifying = dialback_.verifying();  // a verification still within its bound holds the deadline off
    if (negotiating()) {
        if (window_end_ != 0 && window_end_ <= now && !verifying) {
            fail(StreamError::ConnectionTimeout,
                 served_verify_ && state_ == State::Negotiating
                     ? "no request within " + std::to_string(settings_.state_timeout_ms) +
                           " ms on a stream that has authenticated nothing"
                     : std::string("negotiation took too long (") + state_name(state_) + ")");
            return;
        }
    } else if (settings_.idle_timeout_ms && now - last_heard() >= settings_.idle_timeout_ms && !verifying) {
        end("idle for " + std::to_string((now - last_heard()) / 1000) + " s");
        return;
    }
    rearm();
}

void S2SIn::on_closed(const std::string& reason) {
    routes_.withdraw_all();
    dialback_.cancel_all();
    S2S_LOG_INFO(log_ctx(), "closed", "%s", reason.c_str());
    stream_ = nullptr;
    delete this;
}

}  // namespace s2s
