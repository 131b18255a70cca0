#include "proxy/local/local_out.h"

#include "common/xmpp/jid.h"
#include "proxy/local/local_tls_client.h"
#include "proxy/ops/metrics.h"
#include "proxy/routing/router.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {

LocalOut::LocalOut(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router, std::string local)
    : LocalReconnect(ctx, settings, router, std::move(local)) {}

void LocalOut::deliver(const std::string& remote, QueuedStanza stanza) {
    if (!accepting(stanza)) return;
    Remote& r = use(remote);
    // A stream that is ending (the server closed it; the flush window runs) takes nothing more:
    // the stanza waits for the next stream.
    if (state_ == State::Ready && r.auth == Auth::Valid && r.queue.empty() && stream_ &&
        stream_->state() == Stream::State::Open) {
        write(stanza, log_ctx(remote), "");
        return;
    }
    if (!enqueue(r.queue, std::move(stanza))) return;
    if (state_ == State::Ready && r.auth == Auth::None) authenticate(remote, r);
    else if (state_ == State::Idle) connect();
}

LocalOut::Remote& LocalOut::use(const std::string& remote) {
    auto [it, made] = remotes_.try_emplace(remote);
    Remote& r = it->second;
    r.used_ms = ctx_.loop.now_ms();
    if (made) {
        r.lru = lru_.insert(lru_.end(), remote);
        // Past the bound the least recently used idle domain makes room; a busy one (stanzas
        // waiting, dialback pending) goes to the back instead, a bounded number of times.
        for (size_t tries = 0; remotes_.size() > kMaxRemotes && tries < kEvictTries; ++tries) {
            auto oldest = remotes_.find(lru_.front());
            if (oldest == it) break;
            if (idle(oldest->second)) forget(oldest);
            else lru_.splice(lru_.end(), lru_, oldest->second.lru);
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
        enter(State::Idle);
        return;
    }
    open(settings_.parse);
}

void LocalOut::send_header() {
    stream_->send(stream_header(header_from_, local_, "", true));
    enter(State::AwaitingHeader);
}

void LocalOut::on_stream_open(const xml::StreamHeader& h) {
    stream_id_ = std::string(h.attr("id").value_or(""));
    bool v1 = major_version(h.attr("version").value_or("")) >= 1;
    if (v1) {
        enter(State::AwaitingFeatures);
        return;
    }
    enter(State::Ready);
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

void LocalOut::on_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    std::string why;
    local_tls::Step tls =
        local_tls::negotiate(*stream_, settings_.tls, local_, e, state_, [this](State s) { enter(s); }, &why);
    if (tls == local_tls::Step::Continue) ready();
    else if (tls == local_tls::Step::Fail || tls == local_tls::Step::Refused) connection_lost(why);
    if (tls != local_tls::Step::Other) return;  // (or on to <proceed/> or the handshake)
    if (e.is("result", xml::ns::dialback) && state_ == State::Ready) {
        on_result(e);
        return;
    }
    if (e.is("error", xml::ns::streams)) {
        xml::Element cond = e.first_element();
        connection_lost("the local server sent stream error " + std::string(cond ? cond.name() : "?"));
        return;
    }
    // Nothing else is expected on our outgoing stream.
    connection_lost(StreamError::UnsupportedStanzaType, "this stream carries no stanzas to s2s-proxy",
                    "the local server sent <" + std::string(e.name()) + "> on the stream toward it");
}

// The features came and TLS is settled: every remote domain with stanzas waiting asks for dialback.
void LocalOut::ready() {
    enter(State::Ready);
    up();
    for (auto& [remote, r] : remotes_)
        if (!r.queue.empty() && r.auth == Auth::None) authenticate(remote, r);
}

// The local server's answer to our db:result for a remote domain.
void LocalOut::on_result(const xml::Element& e) {
    std::string remote = normalize_domain(e.attr("to").value_or("")).value_or("");
    auto it = remotes_.find(remote);
    if (it == remotes_.end() || it->second.auth != Auth::Pending) return;
    if (e.attr("type").value_or("") == "valid") {
        it->second.auth = Auth::Valid;
        stream_->set_authenticated();  // the configured stanza limits from now on
        S2S_LOG_INFO(log_ctx(remote), "local-authenticated", "the local server accepted %s", remote.c_str());
        flush(it->second.queue, log_ctx(remote), ", was queued");
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
}

void LocalOut::on_stream_close() { connection_lost("the local server closed the stream"); }

// ---- what waits ----------------------------------------------------------------------------------

bool LocalOut::waiting() const {
    for (auto& [remote, r] : remotes_)
        if (!r.queue.empty()) return true;
    return false;
}

void LocalOut::bounce_waiting(const std::string& why) {
    for (auto& [remote, r] : remotes_)
        while (!r.queue.empty()) router_.bounce(r.queue.pop(), StanzaError::RemoteServerTimeout, why);
}

// A new stream vouches for every remote domain again.
void LocalOut::stream_closed() {
    for (auto& [remote, r] : remotes_) r.auth = Auth::None;
}

}  // namespace s2s
