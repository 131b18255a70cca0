// The local link, from the local server: its outgoing s2s, redirected to [[listen.local]].
//
// s2s-proxy answers as the remote domain the local server asked for (header from=REMOTE, an id,
// version 1.0, the dialback feature). It accepts db:result only for a domain in general.hosts
// and from a peer the listener's access rule lets in, answers db:verify for keys LocalOut issued
// (Prosody sends them on its authenticated link, ejabberd on separate verify-only connections),
// and hands each stanza of an accepted (local, remote) pair to the router for the public side.
// A stanza addressed to one of our own hosts would loop back in: it is bounced, never sent.
// A stream from one of s2s-proxy's own outgoing links (its peer is the local end of an S2SOut
// socket: DNS led a remote domain back here) is refused with policy-violation before anything
// else, so no stanza can circle through the proxy.
#pragma once

#include <string>
#include <vector>

#include "common/log.h"
#include "common/net_address.h"
#include "proxy/connection.h"
#include "proxy/context.h"
#include "proxy/stream.h"

namespace s2s {

class ProxyRouter;

struct LocalInSettings {
    std::string access = "all";   // listen.local.*.access
    uint64_t state_timeout_ms = 5000;
    xml::StreamOptions parse;
    std::string listener;         // "listen.local.0", for logs
    uint64_t max_rate = 0;        // listener's shaper, bytes/s read; 0: none
    const SocketAddressSet* own_outgoing = nullptr;  // local ends of our outgoing sockets; null: not checked
};

class LocalIn final : public Connection, private Stream::Owner {
public:
    enum class State {
        AwaitingHeader,  // waiting for the local server's header
        Open,            // header and features sent: dialback and (for accepted pairs) stanzas
        Closing,
    };

    static void accept(ProxyContext& ctx, ProxyRouter& router, uv_stream_t* listener, const LocalInSettings& settings);
    [[nodiscard]] const char* kind() const noexcept override { return "local_in"; }
    [[nodiscard]] const char* state_label() const noexcept override;
    void shutdown(StreamError error, const std::string& why) override;
    void trim_idle(uint64_t now_ms, uint64_t idle_ms) override {
        if (stream_) stream_->trim_if_idle(now_ms, idle_ms);
    }
    void reconfigure() override {
        if (stream_) stream_->set_rate_limit(settings_.max_rate);
    }

private:
    struct Pair {
        std::string local, remote;
    };
    LocalIn(ProxyContext& ctx, ProxyRouter& router, const LocalInSettings& settings);
    ~LocalIn() override;

    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;
    void on_stream_error(StreamError error, std::string_view text) override;
    void on_timeout() override;
    void on_closed(const std::string& reason) override;

    void fail(StreamError error, const std::string& text);
    void handle_db_result(const xml::Element& e);
    void handle_db_verify(const xml::Element& e);
    void handle_stanza(xml::Document& doc);
    void closed_by_peer(const xml::Element& error);
    [[nodiscard]] LogContext log_ctx() const noexcept { return LogContext{id(), local_, remote_}; }

    ProxyContext& ctx_;
    ProxyRouter& router_;
    const LocalInSettings& settings_;
    Stream* stream_ = nullptr;
    State state_ = State::AwaitingHeader;
    bool header_sent_ = false;
    std::string local_, remote_;   // from the header: from=local, to=remote
    std::vector<Pair> pairs_;
};

}  // namespace s2s
