// The local link, from the local server: its outgoing s2s, redirected to [[listen.local]].
//
// s2s-proxy answers as the remote domain the local server asked for (header from=REMOTE, an id,
// version 1.0, the dialback feature). It accepts db:result only for a domain in general.hosts
// and from a peer the listener's access rule lets in, and only once the local server, the
// authoritative server for our domains, has confirmed the key (XEP-0220: a db:verify with this
// stream's id over a connection of its own, see local_verify.h); until then the pair's stanzas
// are refused. Other processes that can reach the listener are not trusted. With
// local.verify_dialback = false any key is taken at its word (the behaviour before the check).
// It answers db:verify only for keys LocalOut issued: asked by one of general.hosts about a
// domain that is not ours (Prosody sends them on its authenticated link, ejabberd on separate
// verify-only connections). Each stanza of an accepted (local, remote) pair goes to the router
// for the public side. A stanza addressed to one of our own hosts would loop back in: it is
// bounced, never sent. max_connections bounds the streams open at once on the listener.
// A stream from one of s2s-proxy's own outgoing links (its peer is the local end of an S2SOut
// socket: DNS led a remote domain back here) is refused with policy-violation before anything
// else, so no stanza can circle through the proxy.
// TLS as the listener's tls subsection says (local_tls.h, starttls.h): STARTTLS offered or
// required in the features, or direct TLS from the first byte; with STARTTLS required, a
// db:result, db:verify or stanza before it ends the stream with policy-violation.
#pragma once

#include <string>
#include <vector>

#include "common/base/log.h"
#include "common/net/net_address.h"
#include "proxy/xmpp/context.h"
#include "proxy/xmpp/pair_set.h"
#include "proxy/features/starttls.h"
#include "proxy/stream/stream.h"
#include "proxy/xmpp/stream_machine.h"

namespace s2s {

class ProxyRouter;

struct LocalInSettings {
    std::string access = "all";   // listen.local.*.access
    uint64_t state_timeout_ms = 5000;
    xml::StreamOptions parse;
    std::string listener;         // "listen.local.0", for logs
    uint64_t max_rate = 0;        // listener's shaper, bytes/s read; 0: none
    const SocketAddressSet* own_outgoing = nullptr;  // local ends of our outgoing sockets; null: not checked
    bool verify_dialback = true;  // local.verify_dialback: ask the local server to confirm its keys
    Limit max_connections{0, true};  // beyond it new streams get resource-constraint
    starttls::Mode tls = starttls::plain();  // listen.local.*.tls (local_tls_mode())
    std::shared_ptr<const tls::Context> tls_context;  // set when tls uses TLS
    Limit max_tls_handshakes{256, false};  // listen.local.*.max_tls_handshakes
    mutable size_t active = 0;    // streams open on this listener now (kept across a reload)
    mutable size_t handshakes = 0;  // TLS handshakes in progress on it now (kept across a reload)
};

class LocalVerifier;

// The states of a stream on [[listen.local]] (LocalIn::State).
enum class LocalInState {
    AwaitingHeader,  // waiting for the local server's header
    TlsHandshake,    // <proceed/> sent, or direct TLS: the handshake runs, then a new header
    Open,            // header and features sent: dialback and (for accepted pairs) stanzas
    Closing,         // our error or close is sent; the socket closes
};

class LocalIn final : public StreamMachine<LocalIn, LocalInState> {
public:
    using State = LocalInState;
    [[nodiscard]] static const char* state_name(State s) noexcept;

    // Dialback verification waiting for the local server's answer, at most this many per stream.
    static constexpr size_t kMaxPendingVerifications = 8;

    static void accept(ProxyContext& ctx, ProxyRouter& router, LocalVerifier& verifier, uv_stream_t* listener,
                       const LocalInSettings& settings);
    [[nodiscard]] const char* kind() const noexcept override { return "local_in"; }
    void shutdown(StreamError error, const std::string& why) override;
    void reconfigure() override {
        if (stream_) stream_->set_rate_limit(settings_.max_rate);
    }

private:
    struct PendingVerify {
        std::string local, remote;
        uint64_t token;
    };
    LocalIn(ProxyContext& ctx, ProxyRouter& router, LocalVerifier& verifier, const LocalInSettings& settings);
    ~LocalIn() override;

    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;
    void on_stream_error(StreamError error, std::string_view text) override;
    void on_timeout() override;
    void on_closed(const std::string& reason) override;
    void on_tls_established() override;

    void handle_starttls();
    [[nodiscard]] bool begin_handshake();
    void end_handshake();
    void fail(StreamError error, const std::string& text);
    void handle_db_result(const xml::Element& e);
    void handle_db_verify(const xml::Element& e);
    void verify_done(const std::string& local, const std::string& remote, Router::Verdict v, const std::string& why);
    void accept_pair(const std::string& local, const std::string& remote, const char* how);
    [[nodiscard]] bool has_pair(const std::string& local, const std::string& remote) const {
        return pairs_.contains(remote, local);
    }
    void handle_stanza(xml::Document& doc);
    void closed_by_peer(const xml::Element& error);
    [[nodiscard]] LogContext log_ctx() const noexcept { return LogContext{id(), local_, remote_}; }

    // (the two flags first: they fill the room the base leaves after its state)
    bool in_handshake_ = false;  // counted in settings_.handshakes
    bool header_sent_ = false;
    bool legacy_ = false;        // a pre-1.0 stream: no features, so no dialback errors (XEP-0220 2.4)
    ProxyRouter& router_;
    LocalVerifier& verifier_;
    const LocalInSettings& settings_;
    std::string local_, remote_;   // from the header: from=local, to=remote
    std::string stream_id_;        // the id we sent: the local server's keys are bound to it
    PairSet pairs_;  // accepted (remote, local) pairs: one hash lookup per stanza
    std::vector<PendingVerify> pending_;  // keys the local server is being asked about
    uint64_t window_end_ = 0;      // loop time the negotiation window (state_timeout) ends
};

}  // namespace s2s
