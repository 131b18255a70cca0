// The public inbound stream: a remote server connected to a [[listen.s2s]] listener.
//
// RFC 6120 negotiation as the receiving server: the peer's header must name one of our hosts;
// we answer with a fresh unguessable stream id and features (STARTTLS; SASL EXTERNAL when the
// peer's certificate is valid for the domain it claims; dialback). Each (remote, local) pair is
// authenticated on its own — by SASL EXTERNAL (XEP-0178), or by dialback (XEP-0220) verified
// with the remote domain's authoritative server through the Router, or at once when the TLS
// certificate already proves the domain — and a stanza is accepted only for a pair
// authenticated on this stream. Policy (allow/deny, certificates required) applies per pair.
//
// Bidi (XEP-0288, s2s.bidi): offered once TLS is up, never on a plain stream, and only before
// anything is authenticated. When the peer asks for it, each pair it authenticates whose remote
// domain its certificate proves (SASL EXTERNAL, or dialback with a valid certificate) is
// offered to the Router as a ReverseRoute: our stanzas for that pair may then go back on this
// stream. A pair proved by dialback alone is not offered: XEP-0288 allows it, but dialback only
// shows that the peer can receive what is sent to the domain's authoritative server, so our
// stanzas for such a pair take an outbound link of their own, to the server DNS names.
//
// Behind a load balancer (listen.s2s.*.proxy_protocol), the stream first waits for the PROXY
// header (proxy_stage.h) within proxy_protocol_timeout; the client's address it names is the one
// logged and counted. A connection from outside proxy_trusted is counted against its own address
// from the start.
//
// What one client address may cost before anything is negotiated: max_connections_per_host
// streams at once, max_connection_rate_per_host new ones a second (connection_rate.h), and each
// listener runs at most max_tls_handshakes TLS handshakes at once. A connection over any of these
// is closed before any TLS work; on a direct-TLS port (or during a handshake) a refusal is never
// written as plaintext XML, the connection is just closed.
//
// While a dialback verification asked for by this stream is under way, the negotiation deadline
// waits for it, up to the verification's own bound (Router::verify_timeout_ms()); past that
// bound the verification is given up and answered with remote-server-timeout.
//
// What a peer may make us hold before it authenticates is bounded: the pairs one stream may
// authenticate (s2s.max_domain_pairs, counting those being verified), verifications under way
// per stream, per client address and in total (s2s.max_verifications*, see verify_budget.h), and
// time: until a pair is authenticated the stream keeps the negotiation deadline (state_timeout),
// and answering its db:verify requests (the authoritative role) only restarts that window.
// Each refusal is answered, logged and counted (limits_reached_total). Texts sent to a peer that
// has not authenticated name the condition only; addresses, ports and socket errors of the
// servers we tried go to the log.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/tls/tls.h"
#include "common/base/log.h"
#include "common/net/net_address.h"
#include "common/xmpp/xml_stream.h"
#include "proxy/net/connection_rate.h"
#include "proxy/features/bidi.h"
#include "proxy/xmpp/context.h"
#include "proxy/features/dialback_flow.h"
#include "proxy/features/inbound_admission.h"
#include "proxy/features/inbound_settings.h"
#include "proxy/xmpp/pair_set.h"
#include "proxy/features/sasl_external.h"
#include "proxy/features/starttls.h"
#include "proxy/stream/stream.h"
#include "proxy/xmpp/stream_machine.h"

namespace s2s {

// The states of an inbound stream (S2SIn::State).
enum class S2SInState {
    ProxyHeader,     // proxy_protocol: waiting for the PROXY header (or a direct peer's first bytes)
    AwaitingHeader,  // waiting for the peer's stream header (first, after TLS, after SASL)
    Negotiating,     // header and features sent: STARTTLS, SASL, dialback and (for
                     // authenticated pairs) stanzas may come; on a bidi stream our stanzas
                     // for its certified pairs may go
    TlsHandshake,    // <proceed/> sent, or direct TLS: the handshake runs
    Closing,         // our error or close is sent; the socket closes
};

// (StreamMachine comes last, so that the flags below fill the room it leaves after its state)
class S2SIn final : private ReverseRoute, private DialbackReceiver::Owner, public StreamMachine<S2SIn, S2SInState> {
public:
    using State = S2SInState;
    [[nodiscard]] static const char* state_name(State s) noexcept;

    // Accepts a connection waiting on `listener` and starts serving it. The object lives until
    // its socket closes, registered in ctx.connections.
    static void accept(ProxyContext& ctx, uv_stream_t* listener, const InboundSettings& settings);

    void shutdown(StreamError error, const std::string& why) override;
    // SIGHUP: the listener's shaper again, for the domains authenticated here.
    void reconfigure() override { apply_shaper(); }

    [[nodiscard]] const char* kind() const noexcept override { return "s2s_in"; }
    // Whether the peer asked for a bidirectional stream (XEP-0288).
    [[nodiscard]] bool bidi() const noexcept { return bidi_.agreed(); }

private:
    friend StreamMachine;

    S2SIn(ProxyContext& ctx, const InboundSettings& settings);
    ~S2SIn() override;

    // Stream::Owner
    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;
    void on_stream_error(StreamError error, std::string_view text) override;
    void on_tls_established() override;
    void on_proxy_header(const ProxyStage& stage) override;
    void on_timeout() override;
    void on_closed(const std::string& reason) override;

    // ReverseRoute
    bool send_reverse(const std::string& local, const std::string& remote, const QueuedStanza& stanza) override;

    // What a state arms on entry (StreamMachine::enter): the negotiation window, the deadline,
    // the reverse routes.
    void entered(State s);
    void serve();
    // Counts the stream under its client address (InboundAdmission::admit_host); false, with the
    // stream ended, when refused.
    [[nodiscard]] bool admit_host();
    // A TLS handshake may start; false, with the connection closed, when refused.
    [[nodiscard]] bool begin_handshake();
    void rearm() override;
    [[nodiscard]] bool negotiating() const noexcept;
    // Whether one more (remote, local) pair may be claimed on this stream (s2s.max_domain_pairs,
    // counting the pairs being verified); false when it was logged and counted as refused.
    [[nodiscard]] bool room_for_pair(const std::string& remote, const std::string& local) override;
    // Our header for the current stream when it has not been sent yet (it counts as sent from
    // now on), else "".
    [[nodiscard]] std::string owed_header();
    // Our features; with s2s.stream_limits, our limits among them (XEP-0478, stream_limits.h).
    void send_features();
    // Loop time the peer was last heard from (any bytes) or a stanza went either way: the idle
    // timeout counts from it.
    [[nodiscard]] uint64_t last_heard() const noexcept;
    // The two ways the stream ends (each once; a later call does nothing): with a stream error,
    // or, when the peer closed its own or it was idle, with our </stream:stream>. Either way our
    // header goes first when it is owed.
    void fail(StreamError error, const std::string& text) override;
    void end(const std::string& why);
    void handle_starttls();
    void handle_bidi();
    [[nodiscard]] bool nothing_claimed() const noexcept;
    void handle_sasl(const xml::Element& e);
    // Sends what SASL EXTERNAL answered and does what follows: the stream error, or on success
    // the stream restart with the proved domain authenticated.
    void answer_sasl(const SaslExternalServer::Answer& answer);
    void handle_db_verify(const xml::Element& e);
    void handle_stanza(xml::Document& doc);
    [[nodiscard]] bool is_authenticated(std::string_view remote, std::string_view local) const noexcept override;
    // Whether the listener's access rule admits `remote`; when not, it is logged and counted
    // (`how`: dialback, sasl_external) and the caller refuses the pair.
    [[nodiscard]] bool admitted(const std::string& remote, const std::string& local, const char* how) override;
    // The listener's shaper for this stream: evaluated without a domain until one authenticates,
    // then for each authenticated remote domain, the strictest rate applying.
    void apply_shaper();
    void authenticated(const std::string& remote, const std::string& local, const char* how) override;
    void update_routes();
    [[nodiscard]] bool routes_open() const noexcept;
    [[nodiscard]] bool tls_required_first() const noexcept override;
    // DialbackReceiver::Owner (with the checks above)
    [[nodiscard]] Stream* peer_stream() noexcept override { return stream_; }
    [[nodiscard]] bool closing() const noexcept override { return StreamMachine::closing(); }
    [[nodiscard]] LogContext log_ctx() const noexcept;

    bool tls_up_ = false;         // a TLS handshake completed on this connection
    bool header_sent_ = false;    // our header for the current stream
    bool version_1_ = false;      // the peer speaks RFC 6120 (features)
    bool served_verify_ = false;  // a db:verify was answered (the stream still negotiates)
    const InboundSettings& settings_;
    InboundAdmission admission_;  // its client address and TLS handshake, counted on the listener
    std::string stream_id_;
    std::string local_;         // the header's 'to' (one of general.hosts)
    std::string claimed_;       // the header's 'from' (may be empty)
    SaslExternalServer sasl_;
    BidiServer bidi_;             // XEP-0288: offered, asked for
    uint64_t last_activity_ = 0;
    uint64_t window_end_ = 0;     // loop time the negotiation window (state_timeout) ends; 0: none
    PairSet pairs_;                          // authenticated on this stream
    ReverseRoutes routes_;                       // of those, offered to the router as reverse routes
    DialbackReceiver dialback_;              // db:result requests and their verifications (at most
                                             // s2s.max_verifications_per_stream under way)
};

}  // namespace s2s
