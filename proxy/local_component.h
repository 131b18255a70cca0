// The local link in component mode (local.mode = "component", XEP-0114): one component stream
// from s2s-proxy to `local.server` (ejabberd's ejabberd_service with check_from: false, MongooseIM's
// [[listen.service]]), on which s2s-proxy writes every stanza accepted from a remote domain for
// any local domain, addresses unchanged. The server authenticates the component by a handshake:
// the lowercase hex SHA-1 of its stream id followed by local.password. Stanzas wait in one queue
// while the stream is not ready; while the local server is unreachable (or refuses the handshake)
// they wait up to local.queue_timeout, reconnecting with a growing delay, and are then bounced to
// their remote senders. Only the inbound direction uses this link: the local server's outgoing
// s2s still arrives at [[listen.local]]. With local.tls.mode = "tls" the component stream is
// direct TLS (XEP-0114 has no STARTTLS), the server's certificate checked as LocalOut checks it,
// against local.tls.server_name or else the first of general.hosts.
#pragma once

#include <uv.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/log.h"
#include "proxy/connection.h"
#include "proxy/context.h"
#include "proxy/local_out.h"
#include "proxy/local_retry.h"
#include "proxy/queue.h"
#include "proxy/stream.h"

namespace s2s {

class ProxyRouter;

// The XEP-0114 handshake value: lowercase hex SHA-1 of stream id + secret.
[[nodiscard]] std::string component_handshake(std::string_view stream_id, std::string_view secret);

class LocalComponent final : public Connection, private Stream::Owner {
public:
    enum class State {
        Idle,               // no stream, nothing waiting
        Backoff,            // the last attempt failed: waiting before the next
        Connecting,         // TCP connect to local.server
        TlsHandshake,       // local.tls: direct TLS; our header follows it
        AwaitingHeader,     // our header sent; the server's, with the stream id, next
        AwaitingHandshake,  // <handshake> sent; the server's empty <handshake/> next
        Ready,              // stanzas flow
        Closing,            // shutting down for good
    };
    [[nodiscard]] static const char* state_name(State s) noexcept;


    LocalComponent(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router);

    // A stanza from a remote domain for a local one.
    void deliver(QueuedStanza stanza);
    // Stops for good; the object frees itself once its handles are closed.
    void shutdown(StreamError error, const std::string& why) override;
    void trim_idle(uint64_t now_ms, uint64_t idle_ms) override {
        if (stream_) stream_->trim_if_idle(now_ms, idle_ms);
    }

    [[nodiscard]] State state() const noexcept { return state_; }
    [[nodiscard]] const char* kind() const noexcept override { return "local_component"; }
    [[nodiscard]] const char* state_label() const noexcept override { return state_name(state_); }
    [[nodiscard]] size_t queued_stanzas() const noexcept override { return queue_.size(); }
    [[nodiscard]] double queue_fill() const noexcept override { return queue_.fill(); }

private:
    ~LocalComponent() override;
    void connect();
    void flush();
    void to_component(const xml::Element& stanza);
    // Ends the stream to the local server (with a stream error when `error` is set); on_closed()
    // then reconnects or gives up. Nothing when it is already ending.
    void connection_lost(const std::string& why, std::optional<StreamError> error = std::nullopt,
                         std::string_view text = {});
    void bounce_waiting(const std::string& why);
    // The component's name and secret stay out of logs (and out of bounce texts, which leave).
    [[nodiscard]] LogContext log_ctx() const noexcept { return LogContext{id(), {}, {}}; }
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
    [[nodiscard]] std::string tls_domain() const;

    ProxyContext& ctx_;
    const LocalSettings& settings_;
    ProxyRouter& router_;
    xml::StreamOptions parse_;      // settings_.parse with jabber:component:accept as the content namespace
    State state_ = State::Idle;
    Stream* stream_ = nullptr;
    uv_timer_t retry_timer_{};
    LocalRetry retry_;              // when to try again, when to give up
    std::string last_error_;
    StanzaQueue queue_;
};

}  // namespace s2s
