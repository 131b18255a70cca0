// The local link, toward the local server: a plain s2s stream from s2s-proxy to `local.server`
// for one local domain, on which s2s-proxy speaks for every remote domain. Each remote domain is
// authenticated by dialback with s2s-proxy as its authority: the local server checks the key by
// connecting back (its outgoing s2s is redirected to [[listen.local]], where LocalIn confirms only
// keys issued here). Stanzas wait per remote domain until it is accepted; while the local server
// is unreachable they wait up to local.queue_timeout, reconnecting with a growing delay, and are
// then bounced to their remote senders (local_reconnect.h). With local.tls (local_tls_client.h) the
// stream is encrypted, by direct TLS or STARTTLS, and the local server's certificate is checked
// before our header goes out; a failed handshake or a certificate that does not check out counts as
// an unreachable server.
// What the stream holds per remote domain is bounded: a domain that has sent nothing for
// local.remote_idle_timeout is forgotten (least recently used first, swept with the idle streams),
// and past kMaxRemotes the least recently used idle one makes room; it is vouched for again when
// it next sends.
#pragma once

#include <list>
#include <map>
#include <string>

#include "proxy/local/local_reconnect.h"
#include "proxy/stream/queue.h"

namespace s2s {

class LocalOut final : public LocalReconnect {
public:
    LocalOut(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router, std::string local);

    // A stanza from `remote` for this local domain.
    void deliver(const std::string& remote, QueuedStanza stanza);
    void trim_idle(uint64_t now_ms, uint64_t idle_ms) override {
        LocalReconnect::trim_idle(now_ms, idle_ms);
        forget_idle(now_ms);
    }
    // Remote domains known on this link (authenticated, pending, or with stanzas waiting).
    [[nodiscard]] size_t remotes() const noexcept { return remotes_.size(); }
    static constexpr size_t kMaxRemotes = 10000;
    static constexpr size_t kEvictTries = 16;  // busy domains passed over to find an idle one

    [[nodiscard]] const char* kind() const noexcept override { return "local_out"; }
    [[nodiscard]] size_t queued_stanzas() const noexcept override { return queued_in(remotes_); }
    [[nodiscard]] double queue_fill() const noexcept override { return fullest_fill(remotes_); }

private:
    enum class Auth { None, Pending, Valid };
    struct Remote {
        Auth auth = Auth::None;
        StanzaQueue queue;
        uint64_t used_ms = 0;                   // when a stanza from it last came
        std::list<std::string>::iterator lru;   // its place in lru_
    };
    // The entry for `remote`, made if new, marked as used now.
    Remote& use(const std::string& remote);
    [[nodiscard]] static bool idle(const Remote& r) noexcept { return r.queue.empty() && r.auth != Auth::Pending; }
    void forget(std::map<std::string, Remote>::iterator it);
    void forget_idle(uint64_t now_ms);

    ~LocalOut() override = default;
    void authenticate(const std::string& remote, Remote& r);
    void ready();
    void on_result(const xml::Element& e);

    // LocalReconnect
    void connect() override;
    void send_header() override;
    [[nodiscard]] bool waiting() const override;
    void bounce_waiting(const std::string& why) override;
    void stream_closed() override;

    // Stream::Owner
    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;

    std::string stream_id_;
    std::string header_from_;
    std::map<std::string, Remote> remotes_;
    std::list<std::string> lru_;    // remotes_' keys, least recently used first
};

}  // namespace s2s
