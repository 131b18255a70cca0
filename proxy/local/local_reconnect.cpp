#include "proxy/local/local_reconnect.h"

#include "proxy/local/local_tls_client.h"
#include "proxy/ops/metrics.h"
#include "proxy/routing/router.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {

const char* LocalReconnect::state_name(State s) noexcept {
    switch (s) {
        case State::Idle: return "idle";
        case State::Backoff: return "backoff";
        case State::Connecting: return "connecting";
        case State::TlsHandshake: return "tls-handshake";
        case State::AwaitingHeader: return "awaiting-header";
        case State::AwaitingFeatures: return "awaiting-features";
        case State::AwaitingProceed: return "awaiting-proceed";
        case State::AwaitingHandshake: return "awaiting-handshake";
        case State::Ready: return "ready";
        case State::Closing: return "closing";
    }
    return "?";
}

LocalReconnect::LocalReconnect(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router,
                               std::string local)
    : StreamMachine(ctx, State::Idle), settings_(settings), router_(router), local_(std::move(local)) {
    uv_timer_init(ctx_.loop.uv(), &retry_timer_);
    retry_timer_.data = this;
}

void LocalReconnect::entered(State s) {
    if (s == State::AwaitingHeader || s == State::AwaitingProceed || s == State::TlsHandshake ||
        s == State::AwaitingHandshake)
        stream_->set_deadline(settings_.state_timeout_ms);
}

// ---- what the links share while the stream is up ---------------------------------------------------

bool LocalReconnect::accepting(const QueuedStanza& stanza) {
    if (state_ != State::Closing) return true;
    router_.bounce(stanza, StanzaError::ServiceUnavailable, "s2s-proxy is shutting down");
    return false;
}

bool LocalReconnect::enqueue(StanzaQueue& queue, QueuedStanza&& stanza) {
    if (queue.push(std::move(stanza))) return true;
    router_.bounce(stanza, StanzaError::ResourceConstraint, "too many stanzas are waiting for the local server");
    return false;
}

void LocalReconnect::write(const QueuedStanza& stanza, const LogContext& log, const char* how) {
    S2S_LOG_DEBUG(log, "to-local", "%s (s2s-proxy -> local server%s)", stanza.describe().c_str(), how);
    stream_->send(stanza.bytes, stanza.source);
    router_.delivered_local(stanza);
}

void LocalReconnect::flush(StanzaQueue& queue, const LogContext& log, const char* how) {
    while (!queue.empty()) write(queue.pop(), log, how);
}

void LocalReconnect::connection_lost(const std::string& why) {
    if (!stream_ || stream_->state() == Stream::State::Closing) return;
    last_error_ = why;
    stream_->close(why);
}

void LocalReconnect::connection_lost(StreamError error, std::string_view text, const std::string& why) {
    if (!stream_ || stream_->state() == Stream::State::Closing) return;
    last_error_ = why;
    stream_->end_with(error, text, why);
}

// ---- connecting ----------------------------------------------------------------------------------

void LocalReconnect::open(const xml::StreamOptions& parse) {
    enter(State::Connecting);
    open_stream(parse, Side::Local)
        .connect(reinterpret_cast<const sockaddr*>(&settings_.server), settings_.connect_timeout_ms);
}

void LocalReconnect::on_connected(int status) {
    if (status != 0) {
        last_error_ = local_tls::connect_failure(settings_.server_text, status);
        return;  // on_closed follows
    }
    if (local_tls::start_direct(*stream_, settings_.tls, tls_domain())) enter(State::TlsHandshake);
    else send_header();
}

void LocalReconnect::on_tls_established() {
    std::string refused =
        local_tls::established(settings_.tls, *stream_->tls(), tls_domain(), log_ctx(), settings_.server_text);
    if (!refused.empty()) {
        connection_lost(refused);
        return;
    }
    send_header();
}

void LocalReconnect::on_timeout() {
    connection_lost(std::string("the local server did not answer in time (") + state_name(state_) + ")");
}

void LocalReconnect::on_stream_error(StreamError error, std::string_view text) {
    connection_lost(error, text, "bad XML from the local server: " + std::string(text));
}

// ---- reconnecting and giving up ---------------------------------------------------------------

void LocalReconnect::on_closed(const std::string& reason) {
    stream_ = nullptr;
    stream_closed();
    if (last_error_.empty()) last_error_ = reason;
    if (closing()) {
        bounce_waiting("s2s-proxy is shutting down");
        release();
        return;
    }
    bool was_ready = state_ == State::Ready;
    if (state_ == State::TlsHandshake) local_tls::note_handshake_failure(log_ctx(), settings_.server_text, reason);
    metrics().local_link_down.add(state_name(state_));
    S2S_LOG_NOTICE(log_ctx(), "local-link-down", "%s", last_error_.c_str());
    LocalRetry::Decision d = retry_.after_close(was_ready, waiting(), ctx_.loop.now_ms(), settings_.queue_timeout_ms);
    if (d.next == LocalRetry::Next::Retry) {
        enter(State::Backoff);
        uv_timer_start(&retry_timer_, on_retry, d.delay_ms, 0);
    } else {
        // (in component mode one stream carries every local domain)
        std::string server = local_.empty() ? "the local server" : "the local server for " + local_;
        if (d.next == LocalRetry::Next::GiveUp) bounce_waiting(server + " is unreachable: " + last_error_);
        enter(State::Idle);  // the next stanza connects again
    }
    last_error_.clear();
}

void LocalReconnect::on_retry(uv_timer_t* t) noexcept {
    auto* self = static_cast<LocalReconnect*>(t->data);
    if (self->state_ == State::Backoff) self->connect();
}

void LocalReconnect::shutdown(StreamError error, const std::string& why) {
    if (closing()) return;
    uv_timer_stop(&retry_timer_);
    if (state_ == State::Connecting) close_stream(why);
    else end_stream_with(error, why, why);
    if (stream_) return;  // on_closed() bounces what waits and frees the link
    bounce_waiting("s2s-proxy is shutting down");
    release();
}

void LocalReconnect::release() {
    uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer_),
             [](uv_handle_t* h) { delete static_cast<LocalReconnect*>(h->data); });
}

}  // namespace s2s
