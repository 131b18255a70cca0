// The local link in component mode (local.mode = "component", XEP-0114): one component stream
// from s2s-proxy to `local.server` (ejabberd's ejabberd_service with check_from: false, MongooseIM's
// [[listen.service]]), on which s2s-proxy writes every stanza accepted from a remote domain for
// any local domain, addresses unchanged. The server authenticates the component by a handshake:
// the lowercase hex SHA-1 of its stream id followed by local.password. Stanzas wait in one queue
// while the stream is not ready; while the local server is unreachable (or refuses the handshake)
// they wait up to local.queue_timeout, reconnecting with a growing delay, and are then bounced to
// their remote senders (local_reconnect.h). Only the inbound direction uses this link: the local server's outgoing
// s2s still arrives at [[listen.local]]. With local.tls.mode = "tls" the component stream is
// direct TLS (XEP-0114 has no STARTTLS), the server's certificate checked as LocalOut checks it,
// against local.tls.server_name or else the first of general.hosts.
#pragma once

#include <string>
#include <string_view>

#include "proxy/local/local_reconnect.h"

namespace s2s {

// The XEP-0114 handshake value: lowercase hex SHA-1 of stream id + secret.
[[nodiscard]] std::string component_handshake(std::string_view stream_id, std::string_view secret);

class LocalComponent final : public LocalReconnect {
public:
    LocalComponent(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router);

    // A stanza from a remote domain for a local one.
    void deliver(QueuedStanza stanza);

    [[nodiscard]] const char* kind() const noexcept override { return "local_component"; }
    [[nodiscard]] size_t queued_stanzas() const noexcept override { return queue_.size(); }
    [[nodiscard]] double queue_fill() const noexcept override { return queue_.fill(); }

private:
    ~LocalComponent() override = default;
    void to_component(const xml::Element& stanza);
    void on_error(const xml::Element& e);

    // LocalReconnect. The component's name and secret stay out of logs (and out of bounce texts,
    // which leave): its log lines name no domain.
    void connect() override;
    void send_header() override;
    [[nodiscard]] bool waiting() const override { return !queue_.empty(); }
    void bounce_waiting(const std::string& why) override;
    // Against local.tls.server_name or else the first of general.hosts.
    [[nodiscard]] std::string tls_domain() const override;

    // Stream::Owner
    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;

    xml::StreamOptions parse_;      // settings_.parse with jabber:component:accept as the content namespace
    StanzaQueue queue_;
};

}  // namespace s2s
