// The router: which link carries a stanza, and where it goes when it cannot be carried.
//
// Outbound (local server -> remote domain): one S2SOut link per remote domain, made on demand,
// carrying every local domain that talks to it. Inbound (remote -> local server): the local side.
// A stanza that cannot be delivered is bounced toward its sender with the reason, or counted
// when bouncing is not allowed (errors, presence). Every stanza accepted ends in exactly one of
// delivered to the next hop, bounced, or dropped with a counted reason.
//
// Bidi (XEP-0288): an inbound stream the remote negotiated bidirectional, with a certificate
// for its domain, offers its pairs as reverse routes; a stanza for such a pair goes back on
// that stream instead of opening an outbound link (unless an outbound link already carries the
// pair: one path at a time keeps the pair's stanzas in order). When the stream goes, its pairs
// fall back to outbound links, with the usual queues, bounces and backoff.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/base/log_budget.h"
#include "proxy/routing/backoff.h"
#include "proxy/xmpp/context.h"
#include "proxy/ops/metrics.h"
#include "proxy/stream/queue.h"
#include "proxy/s2s/s2s_out.h"

namespace s2s {

// Where stanzas for the local server go: the local link.
class LocalSide {
public:
    // A stanza (serialized, jabber:server scope) from `remote` for `local`.
    virtual void deliver(const std::string& remote, const std::string& local, QueuedStanza stanza) = 0;

protected:
    ~LocalSide() = default;
};

class ProxyRouter final : public Router, public LinkOwner {
public:
    ProxyRouter(const OutboundSettings& outbound, Resolver& resolver);
    ~ProxyRouter();

    // Completes the wiring (the context refers to this router, so it comes second).
    void attach(ProxyContext& ctx, LocalSide& local) {
        ctx_ = &ctx;
        local_ = &local;
    }

    // A stanza from the local server (user at `local`) for `remote`.
    void to_remote(const std::string& local, const std::string& remote, QueuedStanza stanza);
    // Answers a stanza toward its sender with an error, or counts it when that is not allowed.
    void bounce(const QueuedStanza& stanza, StanzaError condition, const std::string& text);

    // Router
    void from_remote(std::string_view remote, std::string_view local, xml::Document& stanza, Stream* source) override;
    void refuse_from_remote(std::string_view remote, std::string_view local, xml::Document& stanza,
                            const std::string& why, Stream* source) override;
    uint64_t verify_dialback(const std::string& receiving, const std::string& originating,
                             const std::string& stream_id, const std::string& key, VerifyDone done) override;
    void cancel_verify(uint64_t token) override;
    [[nodiscard]] uint64_t verify_timeout_ms() const override;
    void offer_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) override;
    void withdraw_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) override;

    // LinkOwner
    void undeliverable(const QueuedStanza& stanza, StanzaError condition, const std::string& text) override;
    void link_ready(const std::string& remote) override;
    void delivered(const QueuedStanza& stanza) override {
        ++(stanza.reply ? counters_.replies_delivered : counters_.delivered_remote);
    }
    // The local link wrote a stanza to the local server.
    void delivered_local(const QueuedStanza& stanza) {
        ++(stanza.reply ? counters_.replies_delivered : counters_.delivered_local);
    }
    // Component mode: the local server sent a stanza to the component's own address (answered
    // with an error when it was a request, else dropped).
    void dropped_to_component() { ++counters_.dropped_to_component; }
    std::string link_failed(const std::string& remote, const std::string& why, bool was_ready) override;
    void link_closed(S2SOut* link) override;

    // The delay before the next attempt to reach `remote` (0 when not in backoff).
    [[nodiscard]] uint64_t backoff_ms(const std::string& remote) const;
    // Remote hosts waiting before their next attempt (forgets those whose time has passed).
    [[nodiscard]] size_t hosts_in_backoff();
    // Remote hosts remembered as failing (waiting, or kept for the doubling of their next wait),
    // at most s2s.outgoing.max_hosts_in_backoff.
    [[nodiscard]] size_t backoff_entries() const noexcept { return backoff_.size(); }

    [[nodiscard]] const RouterCounters& counters() const noexcept { return counters_; }
    [[nodiscard]] size_t links() const noexcept { return links_.size(); }
    // The (remote, local) pairs an inbound bidi stream can carry now.
    [[nodiscard]] size_t reverse_routes() const noexcept { return reverse_.size(); }

private:
    S2SOut& link(const std::string& remote, const std::string& local);
    // Sends over a reverse route of the pair when there is one and no outbound link carries the
    // pair; false when it did not.
    bool send_reverse(const std::string& local, const std::string& remote, const QueuedStanza& stanza);
    [[nodiscard]] std::string backoff_text(const std::string& remote) const;
    // The error reply to `stanza` (and it counted as bounced), or nullopt when it must not be
    // answered (an error, a presence, our own reply: counted as dropped).
    [[nodiscard]] std::optional<QueuedStanza> error_reply(const QueuedStanza& stanza, StanzaError condition,
                                                          std::optional<StanzaErrorType> type, const std::string& text);
    // Sends an error reply toward the sender of the stanza it answers.
    void send_back(QueuedStanza reply);

    // Remote hosts whose last attempts failed: no new attempt before their time.
    BackoffTable backoff_;

    const OutboundSettings& outbound_;
    Resolver& resolver_;
    ProxyContext* ctx_ = nullptr;
    LocalSide* local_ = nullptr;
    std::unordered_map<std::string, S2SOut*> links_;  // by remote domain
    // Reverse routes by (remote, local), the most recently offered last.
    std::map<std::pair<std::string, std::string>, std::vector<ReverseRoute*>> reverse_;
    struct PendingVerify {
        S2SOut* link;
        uint64_t link_token;
    };
    std::map<uint64_t, PendingVerify> verifies_;
    uint64_t next_token_ = 0;
    RouterCounters counters_;
    // Refusals of listed senders' stanzas logged at notice level: a flood of them is not a flood of lines.
    LogBudget refusal_log_{10, 1000};
};

}  // namespace s2s
