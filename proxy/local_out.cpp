#include "proxy/metrics.h"
#include "proxy/local_out.h"

#include "common/jid.h"
#include "proxy/router.h"
#include "proxy/xmpp.h"

namespace s2s {

const char* LocalOut::state_name(State s) noexcept {
    switch (s) {
        case State::Idle: return "idle";
        case State::Backoff: return "backoff";
        case State::Connecting: return "connecting";
        case State::TlsHandshake: return "tls-handshake";
        case State::AwaitingHeader: return "awaiting-header";
        case State::AwaitingFeatures: return "awaiting-features";
        case State::AwaitingProceed: return "awaiting-proceed";
        case State::Ready: return "ready";
        case State::Closing: return "closing";
    }
    return "?";
}

size_t LocalOut::queued_stanzas() const noexcept {
    size_t n = 0;
    for (const auto& entry : remotes_) n += entry.second.queue.size();
    return n;
}

double LocalOut::queue_fill() const noexcept {
    double most = 0;
    for (const auto& entry : remotes_) most = entry.second.queue.fill() > most ? entry.second.queue.fill() : most;
    return most;
}

LocalOut::LocalOut(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router, std::string local)
    : Connection(ctx.next_conn_id()), ctx_(ctx), settings_(settings), router_(router), local_(std::move(local)) {
    uv_timer_init(ctx_.loop.uv(), &retry_timer_);
    retry_timer_.data = this;
    ctx_.connections.insert(this);
}

LocalOut::~LocalOut() { ctx_.connections.erase(this); }

void LocalOut::deliver(const std::string& remote, QueuedStanza stanza) {
    if (state_ == State::Closing) {
        router_.bounce(stanza, StanzaError::ServiceUnavailable, "s2s-proxy is shutting down");
        return;
    }
    Remote& r = use(remote);
    if (state_ == State::Ready && r.auth == Auth::Valid && r.queue.empty()) {
        S2S_LOG_DEBUG(log_ctx(remote), "to-local", "%s (s2s-proxy -> local server)", stanza.describe().c_str());
        stream_->send(stanza.bytes, stanza.source);
        router_.delivered_local(stanza);
        return;
    }
    if (!r.queue.push(std::move(stanza))) {
        router_.bounce(stanza, StanzaError::ResourceConstraint, "too many stanzas are waiting for the local server");
        return;
    }
    if (state_ == State::Ready && r.auth == Auth::None) authenticate(remote, r);
    else if (state_ == State::Idle) connect();
}

LocalOut::Remote& LocalOut::use(const std::string& remote) {
    auto [it, made] = remotes_.try_emplace(remote);
    Remote& r = it->second;
    r.used_ms = ctx_.loop.now_ms();
    if (made) {
        r.lru = lru_.insert(lru_.end(), remote);
        // Past the bound the least recently used idle domain makes room (a busy one never does).
        if (remotes_.size() > kMaxRemotes) {
            auto oldest = remotes_.find(lru_.front());
            if (oldest != it && idle(oldest->second)) forget(oldest);
        }
    } else {
        lru_.splice(lru_.end(), lru_, r.lru);
    }
    return r;
}

void LocalOut::forget(std::map<std::string, Remote>::iterator it) {
    S2S_LOG_DEBUG(log_ctx(it->first), "local-forget", "forgetting %s on the local link", it->first.c_str());
    lru_.erase(it->second.lru);
    remotes_.erase(it);
}

// Least recently used first: stops at the first domain used within remote_idle_ms. One still
// waiting for the local server (stanzas queued, dialback pending) is not idle: it goes to the back.
void LocalOut::forget_idle(uint64_t now_ms) {
    for (size_t seen = 0, n = lru_.size(); seen < n && !lru_.empty(); ++seen) {
        auto it = remotes_.find(lru_.front());
        if (now_ms - it->second.used_ms < settings_.remote_idle_ms) return;
        if (idle(it->second)) {
            forget(it);
        } else {
            it->second.used_ms = now_ms;
            lru_.splice(lru_.end(), lru_, it->second.lru);
        }
    }
}

// ---- the stream ----------------------------------------------------------------------------------

void LocalOut::connect() {
    // The header names one remote domain; the others are added by dialback on the same stream.
    header_from_.clear();
    for (auto& [remote, r] : remotes_)
        if (!r.queue.empty()) {
            header_from_ = remote;
            break;
        }
    if (header_from_.empty()) {
        state_ = State::Idle;
        return;
    }
    state_ = State::Connecting;
    stream_ = Stream::create(ctx_.loop, *this, settings_.parse, id(), Side::Local);
    stream_->connect(reinterpret_cast<const sockaddr*>(&settings_.server), settings_.connect_timeout_ms);
}

void LocalOut::on_connected(int status) {
    if (status != 0) {
        last_error_ = "cannot connect to the local server at " + settings_.server_text + ": " +
                      (status == UV_ETIMEDOUT ? "timed out" : uv_strerror(status));
        return;  // on_closed follows
    }
    stream_->set_deadline(settings_.state_timeout_ms);
    if (local_tls::start_direct(*stream_, settings_.tls, local_)) {
        state_ = State::TlsHandshake;
        return;
    }
    send_header();
}

void LocalOut::send_header() {
    stream_->send(stream_header(header_from_, local_, "", true));
    state_ = State::AwaitingHeader;
    stream_->set_deadline(settings_.state_timeout_ms);
}

void LocalOut::on_tls_established() {
    std::string refused = local_tls::established(settings_.tls, *stream_->tls(), local_, log_ctx(), settings_.server_text);
    if (!refused.empty()) {
        connection_lost(refused);
        return;
    }
    send_header();
}

void LocalOut::on_stream_open(const xml::StreamHeader& h) {
    stream_id_ = std::string(h.attr("id").value_or(""));
    bool v1 = major_version(h.attr("version").value_or("")) >= 1;
    if (v1) {
        state_ = State::AwaitingFeatures;
        return;
    }
    state_ = State::Ready;
    for (auto& [remote, r] : remotes_)
        if (!r.queue.empty()) authenticate(remote, r);
}

void LocalOut::authenticate(const std::string& remote, Remote& r) {
    r.auth = Auth::Pending;
    // We are the authority for `remote`: the local server will ask LocalIn to confirm this key.
    stream_->send("<db:result from='" + xml::escape_attr(remote) + "' to='" + xml::escape_attr(local_) + "'>" +
                  ctx_.keys.key(local_, remote, stream_id_) + "</db:result>");
    stream_->set_deadline(settings_.state_timeout_ms);
}

void LocalOut::flush(const std::string& remote, Remote& r) {
    while (!r.queue.empty()) {
        QueuedStanza q = r.queue.pop();
        S2S_LOG_DEBUG(log_ctx(remote), "to-local", "%s (s2s-proxy -> local server, was queued)", q.describe().c_str());
        stream_->send(q.bytes);
        router_.delivered_local(q);
    }
}

void LocalOut::on_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    if (e.is("features", xml::ns::streams) && state_ == State::AwaitingFeatures) {
        if (!stream_->tls()) {
            std::string why;
            switch (local_tls::on_features(*stream_, settings_.tls, e, &why)) {
                case local_tls::Step::Fail: connection_lost(why); return;
                case local_tls::Step::SendStartTls:
                    state_ = State::AwaitingProceed;
                    stream_->set_deadline(settings_.state_timeout_ms);
                    return;
                case local_tls::Step::Continue: break;
            }
        }
        state_ = State::Ready;
        retry_.ready();
        for (auto& [remote, r] : remotes_)
            if (!r.queue.empty() && r.auth == Auth::None) authenticate(remote, r);
        return;
    }
    if (e.is("proceed", xml::ns::tls) && state_ == State::AwaitingProceed) {
        local_tls::proceed(*stream_, settings_.tls, local_);
        state_ = State::TlsHandshake;
        stream_->set_deadline(settings_.state_timeout_ms);
        return;
    }
    if (e.is("failure", xml::ns::tls) && state_ == State::AwaitingProceed) {
        connection_lost("the local server refused STARTTLS");
        return;
    }
    if (e.is("result", xml::ns::dialback) && state_ == State::Ready) {
        std::string remote = normalize_domain(e.attr("to").value_or("")).value_or("");
        auto it = remotes_.find(remote);
        if (it == remotes_.end() || it->second.auth != Auth::Pending) return;
        if (e.attr("type").value_or("") == "valid") {
            it->second.auth = Auth::Valid;
            stream_->set_authenticated();  // the configured stanza limits from now on
            S2S_LOG_INFO(log_ctx(remote), "local-authenticated", "the local server accepted %s", remote.c_str());
            flush(remote, it->second);
        } else {
            it->second.auth = Auth::None;
            std::string why = "the local server refused dialback for " + remote;
            S2S_LOG_WARNING(log_ctx(remote), "local-refused", "%s", why.c_str());
            while (!it->second.queue.empty())
                router_.bounce(it->second.queue.pop(), StanzaError::ServiceUnavailable, why);
        }
        bool pending = false;
        for (auto& [name, r] : remotes_) pending |= r.auth == Auth::Pending;
        stream_->set_deadline(pending ? settings_.state_timeout_ms : 0);
        return;
    }
    if (e.is("error", xml::ns::streams)) {
        xml::Element cond = e.first_element();
        connection_lost("the local server sent stream error " + std::string(cond ? cond.name() : "?"));
        return;
    }
    // Nothing else is expected on our outgoing stream.
    connection_lost("the local server sent <" + std::string(e.name()) + "> on the stream toward it",
                    StreamError::UnsupportedStanzaType, "this stream carries no stanzas to s2s-proxy");
}

void LocalOut::on_timeout() {
    connection_lost(std::string("the local server did not answer in time (") + state_name(state_) + ")");
}

void LocalOut::on_stream_close() { connection_lost("the local server closed the stream"); }

void LocalOut::on_stream_error(StreamError error, std::string_view text) {
    connection_lost("bad XML from the local server: " + std::string(text), error, text);
}

void LocalOut::connection_lost(const std::string& why, std::optional<StreamError> error, std::string_view text) {
    if (!stream_ || stream_->state() == Stream::State::Closing) return;
    last_error_ = why;
    if (error) stream_->end_with(*error, text, why);
    else stream_->close(why);
}

// ---- reconnecting and giving up ---------------------------------------------------------------

bool LocalOut::anything_waiting() const {
    for (auto& [remote, r] : remotes_)
        if (!r.queue.empty()) return true;
    return false;
}

void LocalOut::bounce_waiting(const std::string& why) {
    for (auto& [remote, r] : remotes_)
        while (!r.queue.empty()) router_.bounce(r.queue.pop(), StanzaError::RemoteServerTimeout, why);
}

void LocalOut::on_closed(const std::string& reason) {
    stream_ = nullptr;
    for (auto& [remote, r] : remotes_) r.auth = Auth::None;
    if (last_error_.empty()) last_error_ = reason;
    if (state_ == State::Closing) {
        bounce_waiting("s2s-proxy is shutting down");
        uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer_), [](uv_handle_t* h) { delete static_cast<LocalOut*>(h->data); });
        return;
    }
    bool was_ready = state_ == State::Ready;
    if (state_ == State::TlsHandshake) local_tls::note_handshake_failure(log_ctx(), settings_.server_text, reason);
    metrics().local_link_down.add(state_name(state_));
    S2S_LOG_NOTICE(log_ctx(), "local-link-down", "%s", last_error_.c_str());
    LocalRetry::Decision d = retry_.after_close(was_ready, anything_waiting(), ctx_.loop.now_ms(), settings_.queue_timeout_ms);
    if (d.next == LocalRetry::Next::Retry) {
        state_ = State::Backoff;
        uv_timer_start(&retry_timer_, on_retry, d.delay_ms, 0);
    } else {
        if (d.next == LocalRetry::Next::GiveUp) bounce_waiting("the local server for " + local_ + " is unreachable: " + last_error_);
        state_ = State::Idle;  // the next stanza connects again
    }
    last_error_.clear();
}

void LocalOut::on_retry(uv_timer_t* t) noexcept {
    auto* self = static_cast<LocalOut*>(t->data);
    if (self->state_ == State::Backoff) self->connect();
}

void LocalOut::shutdown(StreamError error, const std::string& why) {
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
    uv_close(reinterpret_cast<uv_handle_t*>(&retry_timer_), [](uv_handle_t* h) { delete static_cast<LocalOut*>(h->data); });
}

}  // namespace s2s
