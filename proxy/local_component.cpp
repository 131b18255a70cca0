#include "proxy/local_component.h"

#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

#include <algorithm>

#include "common/stanza_error.h"
#include "proxy/metrics.h"
#include "proxy/router.h"
#include "proxy/xmpp.h"

namespace s2s {

std::string component_handshake(std::string_view stream_id, std::string_view secret) {
    std::string input;
    input.reserve(stream_id.size() + secret.size());
    input.append(stream_id).append(secret);
    unsigned char digest[20];
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
#else
    mbedtls_sha1_ret(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
#endif
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * sizeof digest);
    for (unsigned char b : digest) {
        out += kHex[b >> 4];
        out += kHex[b & 0x0f];
    }
    return out;
}

const char* LocalComponent::state_name(State s) noexcept {
    switch (s) {
        case State::Idle: return "idle";
        case State::Backoff: return "backoff";
        case State::Connecting: return "connecting";
        case State::TlsHandshake: return "tls-handshake";
        case State::AwaitingHeader: return "awaiting-header";
        case State::AwaitingHandshake: return "awaiting-handshake";
        case State::Ready: return "ready";
        case State::Closing: return "closing";
    }
    return "?";
}

LocalComponent::LocalComponent(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router)
    : Connection(ctx.next_conn_id()), ctx_(ctx), settings_(settings), router_(router), parse_(settings.parse) {
    parse_.content_namespaces = {std::string(xml::ns::component_accept)};
    uv_timer_init(ctx_.loop.uv(), &retry_timer_);
    retry_timer_.data = this;
    ctx_.connections.insert(this);
}

LocalComponent::~LocalComponent() { ctx_.connections.erase(this); }

void LocalComponent::deliver(QueuedStanza stanza) {
    if (state_ == State::Closing) {
        router_.bounce(stanza, StanzaError::ServiceUnavailable, "s2s-proxy is shutting down");
        return;
    }
    if (state_ == State::Ready && queue_.empty() && stream_->state() == Stream::State::Open) {
        S2S_LOG_DEBUG(log_ctx(), "to-local", "%s (s2s-proxy -> local server, as component)", stanza.describe().c_str());
        stream_->send(stanza.bytes, stanza.source);
        router_.delivered_local(stanza);
        return;
    }
    if (!queue_.push(std::move(stanza))) {
        router_.bounce(stanza, StanzaError::ResourceConstraint, "too many stanzas are waiting for the local server");
        return;
    }
    if (state_ == State::Idle) connect();
}

// ---- the stream ----------------------------------------------------------------------------------

void LocalComponent::connect() {
    state_ = State::Connecting;
    stream_ = Stream::create(ctx_.loop, *this, parse_, id(), Side::Local);
    stream_->connect(reinterpret_cast<const sockaddr*>(&settings_.server), settings_.connect_timeout_ms);
}

void LocalComponent::on_connected(int status) {
    if (status != 0) {
        last_error_ = "cannot connect to the local server at " + settings_.server_text + ": " +
                      (status == UV_ETIMEDOUT ? "timed out" : uv_strerror(status));
        return;  // on_closed follows
    }
    stream_->set_deadline(settings_.state_timeout_ms);
    if (local_tls::start_direct(*stream_, settings_.tls, tls_domain())) {
        state_ = State::TlsHandshake;
        return;
    }
    send_header();
}

std::string LocalComponent::tls_domain() const {
    return ctx_.config.hosts.empty() ? std::string() : ctx_.config.hosts.front();
}

void LocalComponent::on_tls_established() {
    std::string refused =
        local_tls::established(settings_.tls, *stream_->tls(), tls_domain(), log_ctx(), settings_.server_text);
    if (!refused.empty()) {
        connection_lost(refused);
        return;
    }
    send_header();
}

void LocalComponent::send_header() {
    // Stanzas from the public side were serialized with jabber:server as the default namespace, so
    // they carry no xmlns of their own and take this stream's (jabber:component:accept). Elements
    // inside them in the dialback or streams namespace are written with the db: or stream:
    // prefix: both are declared here so that no remote content can make this stream ill-formed.
    std::string header =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
        "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' to='";
    xml::append_escaped_attr(header, settings_.component_name);
    stream_->send(header + "'>");
    state_ = State::AwaitingHeader;
    stream_->set_deadline(settings_.state_timeout_ms);
}

void LocalComponent::on_stream_open(const xml::StreamHeader& h) {
    std::string id(h.attr("id").value_or(""));
    if (id.empty()) {
        connection_lost("the local server's component stream header has no id (the handshake needs one)");
        return;
    }
    stream_->send("<handshake>" + component_handshake(id, settings_.password) + "</handshake>");
    state_ = State::AwaitingHandshake;
    stream_->set_deadline(settings_.state_timeout_ms);
}

void LocalComponent::flush() {
    while (!queue_.empty()) {
        QueuedStanza q = queue_.pop();
        S2S_LOG_DEBUG(log_ctx(), "to-local", "%s (s2s-proxy -> local server, as component, was queued)",
                      q.describe().c_str());
        stream_->send(q.bytes);
        router_.delivered_local(q);
    }
}

void LocalComponent::on_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    if (e.is("handshake", xml::ns::component_accept) && state_ == State::AwaitingHandshake) {
        state_ = State::Ready;
        retry_.ready();
        stream_->set_authenticated();  // the configured stanza limits from now on
        stream_->set_deadline(0);
        S2S_LOG_INFO(log_ctx(), "component-ready", "the local server at %s accepted the component handshake",
                     settings_.server_text.c_str());
        flush();
        return;
    }
    if (e.is("error", xml::ns::streams)) {
        xml::Element cond = e.first_element();
        std::string condition = cond ? std::string(cond.name()) : "?";
        std::string text;
        if (xml::Element t = e.child("text", kStreamErrorsNs)) text = ": \"" + t.text() + "\"";
        if (state_ == State::AwaitingHandshake && condition == "not-authorized")
            connection_lost("the local server refused the component handshake (not-authorized" + text +
                            "): local.password is not the secret it has for local.component_name");
        else
            connection_lost("the local server sent stream error " + condition + text + " (" + state_name(state_) + ")");
        return;
    }
    if (state_ == State::Ready && e.ns() == xml::ns::component_accept &&
        (e.name() == "message" || e.name() == "presence" || e.name() == "iq")) {
        to_component(e);
        return;
    }
    connection_lost("the local server sent <" + std::string(e.name()) + "> on the component stream (" +
                    state_name(state_) + ")",
                    StreamError::UnsupportedStanzaType, "unexpected element on the component stream");
}

// The local server routes to the component only what is addressed to the component's own
// domain (a ping, a disco query): s2s-proxy offers no service there. A request is answered with
// service-unavailable; anything else is dropped. Errors for stanzas s2s-proxy wrote do not come
// here: the server sends them to the remote sender over its s2s.
void LocalComponent::to_component(const xml::Element& e) {
    router_.dropped_to_component();
    std::string type(e.attr("type").value_or(""));
    std::string from(e.attr("from").value_or("")), to(e.attr("to").value_or(""));
    if (e.name() != "iq" || (type != "get" && type != "set") || from.empty()) {
        S2S_LOG_DEBUG(log_ctx(), "to-component", "%s from %s dropped: the component offers no service",
                      std::string(e.name()).c_str(), from.c_str());
        return;
    }
    std::string reply = "<iq type='error' from='" + xml::escape_attr(to) + "' to='" + xml::escape_attr(from) + "'";
    if (auto id = e.attr("id")) reply += " id='" + xml::escape_attr(*id) + "'";
    reply += ">";
    append_stanza_error(reply, StanzaError::ServiceUnavailable, "s2s-proxy's component address offers no service");
    stream_->send(reply + "</iq>");
    S2S_LOG_DEBUG(log_ctx(), "to-component", "iq %s from %s answered with service-unavailable", type.c_str(),
                  from.c_str());
}

void LocalComponent::on_timeout() {
    connection_lost(std::string("the local server did not answer in time (") + state_name(state_) + ")");
}

void LocalComponent::on_stream_close() { connection_lost("the local server closed the component stream"); }

void LocalComponent::on_stream_error(StreamError error, std::string_view text) {
    connection_lost("bad XML from the local server: " + std::string(text), error, text);
}

void LocalComponent::connection_lost(const std::string& why, std::optional<StreamError> error, std::string_view text) {
    if (!stream_ || stream_->state() == Stream::State::Closing) return;
    last_error_ = why;
    if (error) stream_->end_with(*error, text, why);
    else stream_->close(why);
}

// ---- reconnecting and giving up ---------------------------------------------------------------

void LocalComponent::bounce_waiting(const std::string& why) {
    while (!queue_.empty()) router_.bounce(queue_.pop(), StanzaError::RemoteServerTimeout, why);
}

void LocalComponent::on_closed(const std::string& reason) {
    stream_ = nullptr;
    if (last_error_.empty()) last_error_ = reason;
    if (state_ == State::Closing) {
        bounce_waiting("s2s-proxy is shutting down");
        uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer_),
                 [](uv_handle_t* h) { delete static_cast<LocalComponent*>(h->data); });
        return;
    }
    bool was_ready = state_ == State::Ready;
    if (state_ == State::TlsHandshake) local_tls::note_handshake_failure(log_ctx(), settings_.server_text, reason);
    metrics().local_link_down.add(state_name(state_));
    S2S_LOG_NOTICE(log_ctx(), "local-link-down", "%s", last_error_.c_str());
    LocalRetry::Decision d = retry_.after_close(was_ready, !queue_.empty(), ctx_.loop.now_ms(), settings_.queue_timeout_ms);
    if (d.next == LocalRetry::Next::Retry) {
        state_ = State::Backoff;
        uv_timer_start(&retry_timer_, on_retry, d.delay_ms, 0);
    } else {
        if (d.next == LocalRetry::Next::GiveUp) bounce_waiting("the local server is unreachable: " + last_error_);
        state_ = State::Idle;  // the next stanza connects again
    }
    last_error_.clear();
}

void LocalComponent::on_retry(uv_timer_t* t) noexcept {
    auto* self = static_cast<LocalComponent*>(t->data);
    if (self->state_ == State::Backoff) self->connect();
}

void LocalComponent::shutdown(StreamError error, const std::string& why) {
    if (state_ == State::Closing) return;
    const bool connecting = state_ == State::Connecting;
    state_ = State::Closing;
    uv_timer_stop(&retry_timer_);
    if (stream_) {
        if (connecting) stream_->close(why);
        else stream_->end_with(error, why, why);
        return;
    }
    bounce_waiting("s2s-proxy is shutting down");
    uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer_), [](uv_handle_t* h) { delete static_cast<LocalComponent*>(h->data); });
}

}  // namespace s2s
