// The counters behind the admin endpoint's /metrics: the process-wide ones, and the router's
// count of where each stanza went (RouterCounters, one set per router).
//
// One loop, one thread: the counters are plain integers, bumped where the event happens (a TLS
// handshake in the stream, a dialback verdict in the state machine, a DNS answer in the
// resolver, a delivery in the router). Gauges (connections by kind and state, queue depths,
// hosts in backoff) are not kept here: the server reads them from the live objects when /metrics
// is scraped, and metrics_text.h writes counters and gauges out.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace s2s {

// Counters by one label value ("timeout", "nxdomain"...), created on first use.
class CounterMap {
public:
    void add(std::string_view label, uint64_t n = 1);
    [[nodiscard]] uint64_t get(std::string_view label) const;
    [[nodiscard]] const std::map<std::string, uint64_t, std::less<>>& values() const noexcept { return values_; }

private:
    std::map<std::string, uint64_t, std::less<>> values_;
};

// A latency histogram in seconds with fixed buckets (Prometheus "le" semantics: cumulative).
class Histogram {
public:
    static constexpr std::array<double, 12> kBounds{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                    0.25,  0.5,   1,    2.5,   5,    10};
    void observe(double seconds);
    [[nodiscard]] uint64_t count() const noexcept { return count_; }
    [[nodiscard]] double sum() const noexcept { return sum_; }
    // Observations <= kBounds[i] (cumulative).
    [[nodiscard]] uint64_t at_most(size_t i) const noexcept { return buckets_[i]; }

private:
    std::array<uint64_t, kBounds.size()> buckets_{};
    uint64_t count_ = 0;
    double sum_ = 0;
};

enum class Side { Public, Local };  // the federated network, or the local server

struct Metrics {
    uint64_t bytes_in[2] = {0, 0};            // by Side, as read from sockets (ciphertext under TLS)
    uint64_t bytes_out[2] = {0, 0};           // by Side, as handed to sockets
    uint64_t streams_opened[2] = {0, 0};      // by Side: accepted or connected sockets
    uint64_t send_timeouts[2] = {0, 0};       // by Side: streams ended because the peer stopped reading
    CounterMap tls_handshakes;                // "server"/"client": completed handshakes
    CounterMap tls_failures;                  // by reason kind (see tls::Session::failure_kind)
    CounterMap dialback;                      // "<role>:<result>", e.g. "receiving:valid"
    CounterMap sasl_external;                 // "<direction>:<result>", e.g. "inbound:success"
    // TLS established on the local link: "listener:direct", "listener:starttls" ([[listen.local]]),
    // "client:direct", "client:starttls" (local.tls); "client:refused" when the local server's
    // certificate did not check out.
    CounterMap local_tls;
    // Links refused because a domain that must prove itself with a certificate did not:
    // "outbound:no_tls", "outbound:certificate", "inbound:dialback_without_certificate".
    CounterMap secure_domain_refusals;
    CounterMap stream_errors;                 // stream errors we sent, by condition
    CounterMap stanza_bounces;                // bounces sent, by stanza error condition
    CounterMap proxy_headers;                 // PROXY protocol: "accepted:<kind>", "refused:<reason>"
    CounterMap connections_refused;           // inbound streams refused by a limit, by its key
    CounterMap outgoing_refused;              // outgoing candidates not dialled: own_listener, denied_network
    // Outgoing candidates left for the next after accepting the connection (dial_plan.h Fallback).
    CounterMap outgoing_fallbacks;
    // Outgoing links that ended before they were ever ready, by the state they were in then
    // (S2SOut::state_name: resolving, connecting, awaiting-header, tls-handshake...).
    CounterMap outgoing_failures;
    // Links to the local server (local.mode s2s or component) that closed other than at shutdown,
    // by the state they were in: ready (it had been up), connecting, tls-handshake, awaiting-header...
    CounterMap local_link_down;
    uint64_t local_loops_refused = 0;         // [[listen.local]] streams from our own outgoing links
    // Claims refused or entries evicted by a bound on what peers make us hold, by the bound's key:
    // max_domain_pairs, max_verifications_per_stream, max_verifications_per_host,
    // max_verifications, max_hosts_in_backoff.
    CounterMap limits_reached;
    CounterMap addresses_refused;             // domains/JIDs from peers refused as invalid: "<where>:<JidError name>"
    CounterMap stanza_limits;                 // streams ended by a stanza limit, by xml::limit_name()
    // A remote's XEP-0478 limits honoured on links we opened: "too_large" (stanzas bounced over its
    // max-bytes), "keepalive" (whitespace written before its idle-seconds ran out).
    CounterMap stream_limits;
    CounterMap access_refusals;               // remote domains a [[listen.s2s]] access rule refused: dialback,
                                              // sasl_external, stanza
    CounterMap antispam_refusals;             // "<list key>:<what>": domain checks a spam list refused, JIDs
    CounterMap antispam_reloads;              // list files read again: "applied" or "refused"
    CounterMap antispam_rate_limited;         // streams held by an [antispam] rate limit: "stanzas" or
                                              // "subscriptions"
    uint64_t dns_queries = 0;                 // resolutions started (one per remote domain asked)
    CounterMap dns_failures;                  // by reason: timeout, nxdomain, servfail, no_service...
    // DANE (s2s.outgoing.dane), by outcome: match / mismatch (a link's certificate against usable
    // TLSA records), insecure / none / bogus (the TLSA lookup of one SRV target).
    CounterMap dane;
    Histogram dns_latency;                    // seconds from start to answer (success or failure)
    // The DNS responder (local.dns_responder): queries by what became of them (answered here,
    // forwarded to local.dns_upstream, dropped), and forwards by how they ended (relayed, timeout,
    // unreachable) plus datagrams from upstreams that were not the answer awaited (ignored).
    CounterMap dns_responder;
    CounterMap dns_upstream;
    uint64_t admin_requests = 0;
    CounterMap admin_dropped;                 // admin connections closed unserved: evicted, refused, request_timeout
    CounterMap reloads;                       // SIGHUP: "applied" or "refused"
};

// Where the stanzas a ProxyRouter accepted went; the router bumps them (ProxyRouter::counters()).
struct RouterCounters {
    uint64_t to_remote = 0;       // accepted from the local server for a remote domain
    uint64_t from_remote = 0;     // accepted from a remote domain for the local server
    uint64_t delivered_remote = 0;  // written to a remote server's stream
    uint64_t delivered_local = 0;   // written to the local server's stream
    uint64_t bounced = 0;         // answered with an error toward the sender
    uint64_t dropped_presence = 0;
    uint64_t dropped_error = 0;
    uint64_t backoff_bounces = 0; // bounced at once because the remote host was in backoff
    uint64_t bounces_undeliverable = 0; // errors for a remote sender whose host is in backoff
    uint64_t delivered_bidi = 0;  // of delivered_remote: on an inbound stream, back to its peer (XEP-0288)
    uint64_t dropped_to_component = 0;  // component mode: sent by the local server to the component's address
    // The error replies made for bounced stanzas (one per `bounced`), counted apart so that at
    // rest to_remote + from_remote = delivered_* + bounced + dropped_*: written to the next hop,
    // or themselves undeliverable and dropped (bounces_undeliverable: never sent).
    uint64_t replies_delivered = 0;
    uint64_t replies_dropped = 0;
};

// The process's counters.
Metrics& metrics();

}  // namespace s2s
