// What every stream state machine of the proxy shares: the config, the loop, the dialback keys,
// the policy, the [antispam] rate limits, and the router it hands stanzas to. One per process;
// streams hold a reference.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/config/config.h"
#include "common/base/event_loop.h"
#include "common/xml/xml.h"
#include "proxy/stream/connection.h"
#include "proxy/xmpp/dialback.h"
#include "proxy/xmpp/policy.h"
#include "proxy/xmpp/rate_limits.h"
#include "proxy/stream/queue.h"
#include "proxy/xmpp/verify_budget.h"

namespace s2s {

// An inbound stream that the remote negotiated bidirectional (XEP-0288) and on which it proved
// its domain with a certificate: our stanzas for the pairs it offers may go back over it instead
// of over an outbound link of our own.
class ReverseRoute {
public:
    // Writes a stanza from `local` to `remote` (a pair this route offered) to the stream. False
    // when the stream cannot take it now (it is restarting or closing): nothing was written.
    [[nodiscard]] virtual bool send_reverse(const std::string& local, const std::string& remote,
                                            const QueuedStanza& stanza) = 0;

protected:
    ~ReverseRoute() = default;
};

// Where stanzas accepted from a remote server go (the local link), and who checks dialback keys
// with a remote domain's authoritative server (the outbound side).
class Router {
public:
    // A stanza from `remote` for `local`, accepted on an authenticated stream (inbound, or the
    // reverse direction of a bidirectional outbound link): `source`, whose read callback runs now.
    virtual void from_remote(std::string_view remote, std::string_view local, xml::Document& stanza,
                             Stream* source) = 0;
    // The same stanza refused on its own (its sender is on a spam list), the stream staying up:
    // answered toward its sender with policy-violation (type cancel) and `why`, or, an error or a
    // presence, dropped and counted (RFC 6120 §8.3.1); logged, at most so many lines a second.
    virtual void refuse_from_remote(std::string_view remote, std::string_view local, xml::Document& stanza,
                                    const std::string& why, Stream* source) = 0;

    // Failed: no answer in time; Unreachable: the authoritative server could not be found,
    // reached or trusted (DNS, connection or TLS failed).
    enum class Verdict { Valid, Invalid, Failed, Unreachable };
    using VerifyDone = std::function<void(Verdict verdict, const std::string& why)>;
    // Asks the authoritative server of `originating` whether `key` is one it issued for a stream
    // from it to `receiving` with this id. `done` runs exactly once, later (never inside this
    // call), unless cancel() was called first. Returns a token for cancel().
    virtual uint64_t verify_dialback(const std::string& receiving, const std::string& originating,
                                     const std::string& stream_id, const std::string& key, VerifyDone done) = 0;
    virtual void cancel_verify(uint64_t token) = 0;
    // How long a verification may take in the worst case (DNS, connect, TLS and negotiation of
    // the link to the authoritative server, then its answer); 0: no bound. The asking stream
    // waits that long, and no longer.
    [[nodiscard]] virtual uint64_t verify_timeout_ms() const = 0;

    // Bidi (XEP-0288): `route` may carry our stanzas from `local` to `remote` from now on, until
    // withdrawn. The route withdraws every pair it offered before it goes away.
    virtual void offer_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) = 0;
    virtual void withdraw_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) = 0;

protected:
    ~Router() = default;
};

struct ProxyContext {
    const Config& config;
    EventLoop& loop;
    const DialbackKeys& keys;
    const PolicyRules& policy;
    Router& router;
    ConnectionSet connections;
    uint64_t last_conn_id = 0;
    // Dialback verifications under way for inbound streams, per client address and in total.
    VerifyBudget verifications{};
    // The [antispam] rate limits per remote domain (null: none, as in most unit tests).
    RateLimits* rate_limits = nullptr;

    [[nodiscard]] uint64_t next_conn_id() { return ++last_conn_id; }
    // Whether `domain` (normalised) is one of general.hosts.
    [[nodiscard]] bool is_local(std::string_view domain) const;
};

}  // namespace s2s
