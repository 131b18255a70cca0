// The public outbound stream: our link to one remote domain, carrying any number of our local
// domains (dialback piggybacking) and the dialback verifications our inbound streams ask for.
//
// As the initiating server (RFC 6120): resolve, connect (direct TLS when the candidate says
// so), send our header, then STARTTLS as outgoing.tls.mode asks. A remote domain that must prove
// itself with a certificate (PolicyRules::needs_valid_certificate: s2s.secure_domains,
// s2s.secure_auth) gets STARTTLS whatever the mode says, and its link fails before anything is
// sent on it (no dialback, no stanza, no db:verify) when it offers no TLS or its certificate is
// not valid for it. Then authenticate each local domain
// by SASL EXTERNAL when the peer offers it and we hold a certificate, else by dialback
// (XEP-0220, keys per XEP-0185). Stanzas wait in a per-local-domain queue until that domain is
// authenticated; when the link or a domain's authentication fails, each is bounced to its
// sender with a text that says what failed.
//
// Bidi (XEP-0288, s2s.bidi): when the remote offers it over TLS and its certificate is valid for
// its domain, we ask for it before authenticating; the remote may then send its stanzas back on
// this link, for the pairs authenticated on it (from the remote domain to a local domain it
// accepted, by SASL EXTERNAL or dialback). They pass the same checks as on an inbound stream
// (route_remote_stanza) and go to the router the same way; anything else ends the link with the
// stream error that says why. The remote may also ask us, as authoritative server, to verify
// dialback keys on it; dialback requests of its own are refused (the stream id is the remote's,
// so a key could be replayed): it must open a stream to us for that.
//
// The remote's stream limits (XEP-0478, stream_limits.h) are honoured: a stanza larger than its
// max-bytes goes back to its sender instead of being written, and a ready link is kept alive with
// whitespace before the remote's idle-seconds run out.
//
// Candidates that lead back into s2s-proxy are never dialled: an address where it listens
// (OutboundSettings::own_listeners, overrides included), and an address from DNS (or an
// IP-literal domain) in s2s.outgoing.denied_networks. Each is skipped with a log line and a count
// (outgoing_candidates_refused); when none is left, the stanzas bounce with "DNS for D points at
// a forbidden address". With s2s.outgoing.dane, a candidate with usable TLSA records must
// negotiate TLS and show a certificate that matches them, or the link fails (DaneLink). While connected, the socket's local end is in own_outgoing, so that
// [[listen.local]] can tell a stream from one of our own links.
//
// Reaching the remote (s2s_out_dial.cpp): a target with addresses in both families is dialled
// the happy eyeballs way (RFC 8305, happy_eyeballs.h): the family s2s.outgoing.ip_versions lists
// first, the other 250 ms later, the first to connect kept. A candidate that fails before the
// link is negotiated (connect, close, TLS, certificate, stream error, timeout) leaves the link to
// the next address, then the next target (DialPlan, Fallback); the stanzas stay queued
// meanwhile, and the domain fails (and enters backoff) only when no candidate is left, with the
// last one's reason.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/log.h"
#include "common/net/net_address.h"
#include "common/tls/tls.h"
#include "proxy/features/bidi.h"
#include "proxy/features/dane_link.h"
#include "proxy/features/dial_plan.h"
#include "proxy/features/dialback_flow.h"
#include "proxy/features/happy_eyeballs.h"
#include "proxy/features/link_domains.h"
#include "proxy/xmpp/context.h"
#include "proxy/stream/queue.h"
#include "proxy/resolve/resolver.h"
#include "proxy/xmpp/pair_set.h"
#include "proxy/features/sasl_external.h"
#include "proxy/features/starttls.h"
#include "proxy/features/stream_limits.h"
#include "proxy/stream/stream.h"
#include "proxy/xmpp/stream_machine.h"

namespace s2s {

struct OutboundSettings {
    starttls::Mode tls = starttls::plain();  // s2s.outgoing.tls.mode, or s2s.use_starttls (outbound_tls_mode())
    // Client context: set when tls uses TLS or some domain needs a certificate (outgoing_tls_needed).
    std::shared_ptr<const tls::Context> tls_context;
    bool have_certificate = false;                    // we can do SASL EXTERNAL
    // The name sent with SNI (s2s.outgoing.tls.server_name_indication.*): the remote domain, or
    // sni_host when set; nothing when sni is false. The certificate is judged against the remote
    // domain either way.
    bool sni = true;
    std::string sni_host;
    // Local domains with a certificate of their own (s2s.domain_certfile): their client context.
    std::map<std::string, std::shared_ptr<const tls::Context>> domain_contexts;
    uint64_t connect_timeout_ms = 10000;
    uint64_t state_timeout_ms = 5000;
    uint64_t idle_timeout_ms = 600000;
    uint64_t max_retry_delay_ms = 300000;              // backoff cap per remote host
    size_t queue_max_stanzas = StanzaQueue::kDefaultMaxCount;  // per (local, remote) pair
    size_t queue_max_bytes = StanzaQueue::kDefaultMaxBytes;
    bool bidi = true;                                  // ask for XEP-0288 when offered (s2s.bidi)
    uint64_t max_rate = 0;                             // s2s.outgoing.shaper, bytes/s read; 0: none
    xml::StreamOptions parse;
    // What we accept on a link (XEP-0478 <limits/>), put in our <bidi/> request; empty with
    // s2s.stream_limits off.
    std::string limits;
    // Where s2s-proxy itself listens (never dialled), and the local ends of its outgoing
    // connections (kept while each is open); null: not checked, not kept.
    const ListenerSet* own_listeners = nullptr;
    SocketAddressSet* own_outgoing = nullptr;
};

// What an outbound link tells the one who keeps links (the router).
class LinkOwner {
public:
    // A stanza could not be delivered; the owner bounces it (or counts it) toward its sender.
    virtual void undeliverable(const QueuedStanza& stanza, StanzaError condition, const std::string& text) = 0;
    // A stanza was written to the remote's stream (the next hop has it).
    virtual void delivered(const QueuedStanza& stanza) = 0;
    // The link negotiated its stream: the remote host is reachable.
    virtual void link_ready(const std::string& remote) = 0;
    // The link failed (`was_ready`: after having worked). Returns what to add to the bounces'
    // text about the next attempt, e.g. "; next attempt in 2 s".
    virtual std::string link_failed(const std::string& remote, const std::string& why, bool was_ready) = 0;
    // The link is closing and takes no more work; the owner forgets it. Called once; the link
    // calls nothing on the owner after it.
    virtual void link_closed(class S2SOut* link) = 0;

protected:
    ~LinkOwner() = default;
};

// The states of an outbound link (S2SOut::State).
enum class S2SOutState {
    Resolving,         // asking where the remote's servers are
    Connecting,        // TCP connect to one candidate
    AwaitingHeader,    // our header sent; waiting for the peer's
    AwaitingFeatures,  // the peer's header came (XMPP 1.0): waiting for features
    AwaitingProceed,   // <starttls/> sent: waiting for <proceed/> (or <failure/>)
    TlsHandshake,      // STARTTLS or direct TLS handshake
    Authenticating,    // SASL EXTERNAL sent; waiting for success or failure
    Ready,             // negotiated: dialback, verifications and authenticated stanzas flow
    Closing,           // closing; everything still queued has been handed back (S2SOut::Ending says how)
};

class S2SOut final : public StreamMachine<S2SOut, S2SOutState> {
public:
    using State = S2SOutState;
    // How the link ended. Set once, when it starts ending; only a link closed for idleness may
    // still fail after (its socket closing badly), as no other ending can.
    enum class Ending : uint8_t {
        None,      // not ending
        Idle,      // closed for idleness, nothing failed: the owner forgot it (link_closed), and
                   // new stanzas take a new link
        Failed,    // failed (DNS, connect, TLS, the remote...): what was queued went back with why,
                   // the owner was told link_failed() and link_closed()
        ShutDown,  // stopped by shutdown() (stop, drain, reload): as Failed, but not counted in
                   // outgoing_failures
    };
    // The state's name in logs and metric labels. AwaitingProceed is a part of the features
    // exchange and is named "awaiting-features", as the labels have always named it.
    [[nodiscard]] static const char* state_name(State s) noexcept;

    S2SOut(ProxyContext& ctx, const OutboundSettings& settings, Resolver& resolver, LinkOwner& owner,
           std::string remote, std::string first_local);
    ~S2SOut() override;

    // Queues a stanza from `local` to this remote; it leaves once `local` is authenticated.
    void send(const std::string& local, QueuedStanza stanza);
    // Asks the remote (as authoritative server) whether it issued `key`; see Router::verify_dialback.
    uint64_t verify(const std::string& local, const std::string& stream_id, const std::string& key,
                    Router::VerifyDone done);
    void cancel_verify(uint64_t token);

    void shutdown(StreamError error, const std::string& why) override;
    void reconfigure() override {
        if (stream_) stream_->set_rate_limit(settings_.max_rate);
    }

    [[nodiscard]] const char* kind() const noexcept override { return "s2s_out"; }
    [[nodiscard]] Ending ending() const noexcept { return ending_; }
    [[nodiscard]] size_t queued_stanzas() const noexcept override { return domains_.queued(); }
    [[nodiscard]] double queue_fill() const noexcept override { return domains_.fill(); }
    [[nodiscard]] const std::string& remote() const noexcept { return remote_; }
    // Whether the link is carrying stanzas from `local` (queued, being authenticated or
    // authenticated): while it does, that pair's stanzas keep to it, in order.
    [[nodiscard]] bool carries(const std::string& local) const;
    // Whether the remote accepted a bidirectional stream (XEP-0288).
    [[nodiscard]] bool bidi() const noexcept { return bidi_.asked(); }

private:
    friend StreamMachine;
    using Auth = LinkDomains::Auth;

    void start();
    // What a state arms on entry (StreamMachine::enter). A state that waits for the peer to begin
    // something new (AwaitingHeader, TlsHandshake, Authenticating) gets a fresh state_timeout; the
    // others keep the deadline they find (the features and <proceed/> answer within the header's
    // window).
    void entered(State s);
    // Connects to the next candidate that may be dialled; false when none is left.
    [[nodiscard]] bool connect_next();
    // The TCP connect ended: `fd` (>= 0) is the winner's socket, put under a new stream; else
    // `error` says why, and the next candidate is dialled (or the link fails).
    void connected(int fd, const std::string& error);
    void forget_local_end();
    // The one way a link fails (once; a later call does nothing): hands back what is queued, with
    // `condition`, and ends the stream, with a stream error when `error` is set. `how`: Failed, or
    // ShutDown when shutdown() asked.
    // Before the link is negotiated, while a candidate is left, a failure (Failed) ends only this
    // candidate's stream (cause_ says why: outgoing_fallbacks_total) and on_closed() dials the next.
    void fail(StanzaError condition, const std::string& why, std::optional<StreamError> error = std::nullopt,
              std::string_view error_text = {}, Ending how = Ending::Failed);
    // Idle: ends the stream and hands the link back to its owner; new stanzas take a new link.
    void retire(uint64_t idle_ms);
    // The socket is closed (or there never was one): logs the close and frees the link.
    void finish();
    void close_with(StreamError error, const std::string& why);
    void send_header();
    [[nodiscard]] const std::shared_ptr<const tls::Context>& tls_context() const;
    // The name sent with SNI on this link ("" for none).
    [[nodiscard]] std::string sni_name() const;
    void on_features(const xml::Element& features);
    // For a remote that must show a valid certificate: false (and the link failed) unless TLS is
    // up and the remote's certificate is valid for its domain. True for any other remote.
    [[nodiscard]] bool secure_enough();
    void after_negotiation();
    void authenticate(const std::string& local);
    void flush_queue(const std::string& local);
    // Writes one stanza from `local` (`note` ends its debug line), or bounces it when it is larger
    // than the remote accepts.
    void write(const std::string& local, const QueuedStanza& stanza, const char* note);
    void send_verifies();
    void handle_db_result(const xml::Element& e);
    void handle_db_verify(const xml::Element& e);
    void handle_reverse_stanza(xml::Document& doc);
    void update_reverse_pairs();
    void bounce_all(StanzaError condition, const std::string& why);
    void rearm();
    // When a ready link's wait ends (loop time; 0: never): the answers awaited are late, or the
    // link has been idle for idle_timeout. Its deadline comes sooner when a keepalive is due.
    [[nodiscard]] uint64_t ready_end() const {
        if (waiting_for_answers()) return answers_due_;
        return settings_.idle_timeout_ms ? last_activity_ + settings_.idle_timeout_ms : 0;
    }
    [[nodiscard]] bool waiting_for_answers() const;
    [[nodiscard]] LogContext log_ctx() const noexcept { return LogContext{id(), first_local_, remote_}; }

    // Stream::Owner
    void on_connected(int status) override;
    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;
    void on_stream_error(StreamError error, std::string_view text) override;
    void on_tls_established() override;
    void on_timeout() override;
    void on_send_timeout(const std::string& why) override;
    void on_closed(const std::string& reason) override;

    // (the small fields first: they fill the room the base leaves after its state)
    Ending ending_ = Ending::None;
    bool was_ready_ = false;       // the stream was negotiated at least once
    bool has_local_end_ = false;   // local_end_ is set (and in own_outgoing)
    bool version_1_ = false;       // the peer speaks XMPP 1.0 (features)
    Fallback cause_ = Fallback::Negotiation;  // what failed, when the candidate fails now
    const OutboundSettings& settings_;
    Resolver& resolver_;
    LinkOwner& owner_;
    std::string remote_;
    std::string first_local_;      // 'from' of our stream header
    uint64_t resolve_token_ = 0;
    DialPlan dial_;                // the candidates, in order, and why any was skipped
    DaneLink dane_;                // DANE for the candidate dialled (s2s.outgoing.dane)
    LinkDomains domains_;          // the local domains carried: authentication and queues
    std::string last_error_;       // why the previous candidate failed
    HappyEyeballs eyeballs_;       // the TCP connect to a candidate (two families raced)
    sockaddr_storage local_end_{}; // our end of the connected socket (in own_outgoing while set)
    std::string stream_id_;        // the id the peer gave our stream (dialback keys use it)
    SaslExternalClient sasl_;
    BidiClient bidi_;              // once asked (XEP-0288), the remote may send on this link
    uint64_t last_activity_ = 0;
    uint64_t answers_due_ = 0;     // loop time the answers awaited are late (state_timeout); 0: never
    RemoteLimits limits_;          // what the remote's latest features advertised (XEP-0478)
    VerifyRequests verifies_;  // db:verify requests for our inbound streams
    PairSet reverse_pairs_;  // bidi: (remote, local) pairs the remote may send for
};

}  // namespace s2s
