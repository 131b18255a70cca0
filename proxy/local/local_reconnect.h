// The life of a stream s2s-proxy keeps open to the local server, shared by the two local links
// (LocalOut in local.mode "s2s", LocalComponent in "component"; LocalLink makes them). It
// connects to `local.server` (with local.tls, TLS first: local_tls_client.h), and decides what
// follows when the stream closes: while stanzas wait it reconnects with a growing delay
// (LocalRetry); once the server has been unreachable for local.queue_timeout the waiting stanzas
// are bounced to their remote senders (remote-server-timeout) and the next stanza connects again.
// Every close is counted in local_link_down (by the state it closed in) and logged
// ("local-link-down", with why). shutdown() ends the stream with a stream error, bounces what
// waits, and frees the object once its handles are closed.
// A link built on it says only what it writes on the stream (its header, how it authenticates,
// which stanzas it takes) and what it holds while it waits.
#pragma once

#include <uv.h>

#include <string>
#include <string_view>

#include "common/base/log.h"
#include "proxy/xmpp/context.h"
#include "proxy/local/local_retry.h"
#include "proxy/local/local_tls.h"
#include "proxy/stream/queue.h"
#include "proxy/stream/stream.h"
#include "proxy/xmpp/stream_machine.h"

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

// One state machine for both local links (LocalReconnect::State): each goes through the states
// its protocol has.
enum class LocalLinkState {
    Idle,               // no stream, nothing waiting
    Backoff,            // the last attempt failed: waiting before the next
    Connecting,         // TCP connect to local.server
    TlsHandshake,       // local.tls: direct TLS, or after <proceed/>; our header follows it
    AwaitingHeader,     // our header sent; the server's next
    AwaitingFeatures,   // s2s: the server's header came (1.0): features next
    AwaitingProceed,    // s2s: <starttls/> sent: <proceed/> next
    AwaitingHandshake,  // component: <handshake> sent; the server's empty <handshake/> next
    Ready,              // stanzas flow
    Closing,            // shutting down for good
};

class LocalReconnect : public StreamMachine<LocalReconnect, LocalLinkState> {
public:
    using State = LocalLinkState;
    [[nodiscard]] static const char* state_name(State s) noexcept;

    // Stops for good; the object frees itself once its handles are closed.
    void shutdown(StreamError error, const std::string& why) final;

protected:
    // `local`: the local domain the link is for, "" for one that carries every domain.
    LocalReconnect(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router, std::string local);
    ~LocalReconnect() override = default;

    // What the link says and holds.
    // Opens a stream with open() when there is something to send (else stays Idle).
    virtual void connect() = 0;
    // Our stream header, once connected (and TLS is up).
    virtual void send_header() = 0;
    // Whether stanzas wait for the stream, and bouncing them (remote-server-timeout).
    [[nodiscard]] virtual bool waiting() const = 0;
    virtual void bounce_waiting(const std::string& why) = 0;
    // The stream is gone (before anything else is decided).
    virtual void stream_closed() {}
    // The domain whose name the server's certificate should carry, unless local.tls says one.
    [[nodiscard]] virtual std::string tls_domain() const { return local_; }

    // A new stream to the local server, parsed with `parse`.
    void open(const xml::StreamOptions& parse);
    // False, with the stanza bounced, while the link shuts down.
    [[nodiscard]] bool accepting(const QueuedStanza& stanza);
    // Queues `stanza`; false, with it bounced, when the queue is full.
    [[nodiscard]] bool enqueue(StanzaQueue& queue, QueuedStanza&& stanza);
    // Writes a stanza on the stream, logged as "to-local" with `how` after "s2s-proxy -> local server".
    void write(const QueuedStanza& stanza, const LogContext& log, const char* how);
    // Writes everything `queue` holds, as write() does.
    void flush(StanzaQueue& queue, const LogContext& log, const char* how);
    // The stream works: the next failure starts a new count.
    void up() noexcept { retry_.ready(); }
    // Closes the stream for `why`, logged once it has closed; on_closed() decides what follows.
    void connection_lost(const std::string& why);
    // The same, ending the stream with `error` (`text` to the server) first.
    void connection_lost(StreamError error, std::string_view text, const std::string& why);
    [[nodiscard]] LogContext log_ctx(const std::string& remote = {}) const noexcept {
        return LogContext{id(), local_, remote};
    }

    const LocalSettings& settings_;
    ProxyRouter& router_;
    const std::string local_;

private:
    friend StreamMachine;
    // What a state arms on entry (StreamMachine::enter): each wait for the server that starts
    // something new (our header, STARTTLS, the TLS handshake, the component handshake) gets
    // state_timeout; the features answer within the header's.
    void entered(State s);
    static void on_retry(uv_timer_t* t) noexcept;
    // Frees the object once the retry timer is closed (the stream is gone already).
    void release();

    // Stream::Owner: connecting, TLS, and the end of the stream
    void on_connected(int status) override;
    void on_tls_established() override;
    void on_stream_error(StreamError error, std::string_view text) override;
    void on_timeout() override;
    void on_closed(const std::string& reason) override;

    uv_timer_t retry_timer_{};
    LocalRetry retry_;              // when to try again, when to give up
    std::string last_error_;
};

}  // namespace s2s
