// The local link, toward the local server: a plain s2s stream from s2s-proxy to `local.server`
// for one local domain, on which s2s-proxy speaks for every remote domain. Each remote domain is
// authenticated by dialback with s2s-proxy as its authority: the local server checks the key by
// connecting back (its outgoing s2s is redirected to [[listen.local]], where LocalIn confirms only
// keys issued here). Stanzas wait per remote domain until it is accepted; while the local server
// is unreachable they wait up to local.queue_timeout, reconnecting with a growing delay, and are
// then bounced to their remote senders. With local.tls (local_tls.h) the stream is encrypted, by
// direct TLS or STARTTLS, and the local server's certificate is checked before our header goes out;
// a failed handshake or a certificate that does not check out counts as an unreachable server.
// What the stream holds per remote domain is bounded: a domain that has sent nothing for
// local.remote_idle_timeout is forgotten (least recently used first, swept with the idle streams),
// and past kMaxRemotes the least recently used idle one makes room; it is vouched for again when
// it next sends.
#pragma once

#include <uv.h>

#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"
#include "proxy/connection.h"
#include "proxy/context.h"
#include "proxy/local_retry.h"
#include "proxy/local_tls.h"
#include "proxy/queue.h"
#include "proxy/stream.h"

namespace s2s {

class ProxyRouter;

struct LocalSettings {
    sockaddr_storage server{};         // local.server
    std::string server_text;           // as configured, for logs
    uint64_t connect_timeout_ms = 5000;
    uint64_t state_timeout_ms = 5000;
    uint64_t queue_timeout_ms = 60000; // local.queue_timeout
    uint64_t remote_idle_ms = 600000;  // local.remote_idle_timeout
    xml::StreamOptions parse;
    LocalMode mode = LocalMode::S2S;   // local.mode: LocalOut per local domain, or one LocalComponent
    std::string component_name;        // local.component_name (component mode)
    std::string password;              // local.password (component mode): never logged
    LocalTlsSettings tls;              // local.tls
};

class LocalOut final : public Connection, private Stream::Owner {
public:
    enum class State {
        Idle,              // no stream, nothing waiting
        Backoff,           // the last attempt failed: waiting before the next
        Connecting,        // TCP connect to local.server
        TlsHandshake,      // local.tls: direct TLS, or after <proceed/>; our header follows it
        AwaitingHeader,    // our header sent
        AwaitingFeatures,  // the server's header came (1.0): features next
        AwaitingProceed,   // <starttls/> sent: <proceed/> next
        Ready,             // dialback requests and accepted remote domains' stanzas flow
        Closing,           // shutting down for good
    };
    [[nodiscard]] static const char* state_name(State s) noexcept;


    LocalOut(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router, std::string local);

    // A stanza from `remote` for this local domain.
    void deliver(const std::string& remote, QueuedStanza stanza);
    // Stops for good; the object frees itself once its handles are closed.
    void shutdown(StreamError error, const std::string& why) override;
    void trim_idle(uint64_t now_ms, uint64_t idle_ms) override {
        if (stream_) stream_->trim_if_idle(now_ms, idle_ms);
        forget_idle(now_ms);
    }
    // Remote domains known on this link (authenticated, pending, or with stanzas waiting).
    [[nodiscard]] size_t remotes() const noexcept { return remotes_.size(); }
    static constexpr size_t kMaxRemotes = 10000;

    [[nodiscard]] State state() const noexcept { return state_; }
    [[nodiscard]] const char* kind() const noexcept override { return "local_out"; }
    [[nodiscard]] const char* state_label() const noexcept override { return state_name(state_); }
    [[nodiscard]] size_t queued_stanzas() const noexcept override;
    [[nodiscard]] double queue_fill() const noexcept override;

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

    ~LocalOut() override;
    void connect();
    void authenticate(const std::string& remote, Remote& r);
    void flush(const std::string& remote, Remote& r);
    // Ends the stream to the local server (with a stream error when `error` is set); on_closed()
    // then reconnects or gives up. Nothing when it is already ending.
    void connection_lost(const std::string& why, std::optional<StreamError> error = std::nullopt,
                         std::string_view text = {});
    void bounce_waiting(const std::string& why);
    [[nodiscard]] bool anything_waiting() const;
    [[nodiscard]] LogContext log_ctx(const std::string& remote = {}) const noexcept {
        return LogContext{id(), local_, remote};
    }
    static void on_retry(uv_timer_t* t) noexcept;

    // Stream::Owner
    void on_connected(int status) override;
    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;
    void on_stream_error(StreamError error, std::string_view text) override;
    void on_timeout() override;
    void on_closed(const std::string& reason) override;
    void on_tls_established() override;
    void send_header();

    ProxyContext& ctx_;
    const LocalSettings& settings_;
    ProxyRouter& router_;
    std::string local_;
    State state_ = State::Idle;
    Stream* stream_ = nullptr;
    uv_timer_t retry_timer_{};
    std::string stream_id_;
    std::string header_from_;
    LocalRetry retry_;              // when to try again, when to give up
    std::string last_error_;
    std::map<std::string, Remote> remotes_;
    std::list<std::string> lru_;    // remotes_' keys, least recently used first
};

}  // namespace s2s
