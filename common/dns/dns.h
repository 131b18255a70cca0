// Asynchronous DNS (SRV, A, AAAA, TLSA) on the libuv loop, with udns 0.4 underneath.
//
// One DnsClient owns one udns context (never udns's global default one), one UDP socket watched by
// a uv_poll_t, and the single timer udns asks for through dns_set_tmcbck (the sniproxy pattern).
//
//     std::string error;
//     auto dns = s2s::DnsClient::create(loop, s2s::dns_options(config.outgoing), &error);
//     if (!dns) fail(error);                        // e.g. a bad nameserver address
//     auto token = dns->query(s2s::DnsType::SRV, "_xmpp-server._tcp.example.org",
//                             [](const s2s::DnsAnswer& a) { ... a.status, a.srv, a.error ... });
//     dns->cancel(token);                           // the callback will not run
//
// Contract:
// - A callback runs exactly once, later, on the loop: never inside query(). cancel() and the
//   destructor guarantee it never runs afterwards. A callback may query, cancel, or destroy the
//   client itself.
// - Each query has a deadline of timeout x retries seconds (s2s.outgoing.dns.timeout and
//   .retries), kept with millisecond precision by the client. udns sends the attempts inside it
//   (to each nameserver in turn, then again with a longer wait, as its resolver does).
// - Nameservers: "ip", "ip:port", "[ipv6]" or "[ipv6]:port" (up to 6, udns's limit), each with its
//   own port; an empty list means the system's (/etc/resolv.conf, read by udns).
// - Every non-Ok answer carries a sentence fit for a log line or a bounce's <text>.
// - DNSSEC (DnsOptions::dnssec, for DANE): every query sets the EDNS0 DO bit, and each answer
//   says whether the nameserver set AD on it (DnsAnswer::authenticated). Nothing is validated
//   here: AD means something only from a validating resolver the operator trusts, reached over a
//   path nobody else can write to (loopback), as with Postfix's smtp_dns_support_level = dnssec.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/config/config.h"
#include "common/tls/dane.h"
#include "common/base/event_loop.h"

struct dns_ctx;
struct dns_query;

namespace s2s {

enum class DnsType : uint8_t { SRV, A, AAAA, TLSA };

enum class DnsStatus : uint8_t {
    Ok,             // records of the asked type (at least one)
    NoData,         // the name exists but has no record of this type
    NoSuchDomain,   // NXDOMAIN: the name does not exist
    Timeout,        // no answer within timeout x retries
    ServerFailure,  // every nameserver answered SERVFAIL, REFUSED or garbage
    BadName,        // the name cannot be asked (empty, too long, bad label)
    Error,          // a local failure (out of memory, socket)
};

[[nodiscard]] const char* dns_type_name(DnsType t) noexcept;
[[nodiscard]] const char* dns_status_name(DnsStatus s) noexcept;

struct SrvRecord {
    int priority = 0;
    int weight = 0;
    int port = 0;
    std::string target;  // "." when the service is decidedly not available (RFC 2782)
};

struct DnsAnswer {
    DnsType type = DnsType::A;
    std::string name;
    DnsStatus status = DnsStatus::Error;
    int tries = 0;                              // attempts sent (rounds over the nameservers)
    std::vector<SrvRecord> srv;                 // SRV, in the order of the answer
    std::vector<sockaddr_storage> addresses;    // A / AAAA, port 0, in the order of the answer
    std::vector<tls::TlsaRecord> tlsa;          // TLSA, every record as published (usable or not)
    bool authenticated = false;                 // the answer (records, NXDOMAIN or no data) carried AD
    std::string error;                          // a sentence when status is not Ok
};

struct DnsOptions {
    std::vector<std::string> nameservers;  // empty: the system's
    int64_t timeout_s = 10;                // per attempt, 1..300
    int retries = 2;                       // attempts, 1..50
    bool dnssec = false;                   // set DO on queries and report AD (s2s.outgoing.dane)
};

// The DNS options of the outgoing side of the config.
[[nodiscard]] DnsOptions dns_options(const Outgoing& outgoing);

// Parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port" (port 0 = the default, 53). On failure returns
// false and sets *error to a sentence naming the text.
[[nodiscard]] bool parse_nameserver(const std::string& text, sockaddr_storage* out, std::string* error);

class DnsClient {
public:
    using Token = uint64_t;
    using Done = std::function<void(const DnsAnswer& answer)>;

    // A client on `loop`, or nullptr and *error (a sentence naming the bad option).
    [[nodiscard]] static std::unique_ptr<DnsClient> create(EventLoop& loop, const DnsOptions& options,
                                                           std::string* error);
    ~DnsClient();
    DnsClient(const DnsClient&) = delete;
    DnsClient& operator=(const DnsClient&) = delete;

    // Starts a query; `done` runs later on the loop unless cancelled. Never 0.
    Token query(DnsType type, const std::string& name, Done done);
    // Forgets a query (unknown or finished tokens are ignored): its callback will not run.
    void cancel(Token token) noexcept;

    // Queries started and not yet delivered or cancelled.
    [[nodiscard]] size_t pending() const noexcept { return queries_.size(); }
    // "127.0.0.53:5353, [::1]:53" or "the system's nameservers", for messages.
    [[nodiscard]] const std::string& servers() const noexcept { return servers_; }
    [[nodiscard]] uint64_t deadline_ms() const noexcept { return deadline_ms_; }

private:
    struct Query;
    struct Handles;

    DnsClient(EventLoop& loop, dns_ctx* ctx, std::string servers, uint64_t deadline_ms, bool dnssec);
    [[nodiscard]] bool start(std::string* error);

    // udns and libuv trampolines (noexcept: nothing crosses the C boundary).
    static void on_udns_result(dns_ctx* ctx, void* result, void* data) noexcept;
    static void on_udns_timer_request(dns_ctx* ctx, int timeout, void* data) noexcept;
    static void on_udns_debug(int code, const sockaddr* sa, unsigned salen, const unsigned char* pkt, int plen,
                              const dns_query* q, void* data) noexcept;

    void io_event() noexcept;
    void udns_timer() noexcept;
    void deadline_timer() noexcept;
    void finish(Query& q, DnsStatus status) noexcept;
    void describe(Query& q) const;  // sets q.answer.error
    void ready(Query& q) noexcept;
    void arm_deadline_timer() noexcept;
    void dispatch() noexcept;

    EventLoop& loop_;
    dns_ctx* ctx_;
    std::string servers_;
    uint64_t deadline_ms_;
    bool dnssec_ = false;
    Handles* handles_ = nullptr;  // freed in the handles' close callbacks
    Token next_ = 0;
    std::unordered_map<Token, std::unique_ptr<Query>> queries_;
    std::set<std::pair<uint64_t, Token>> deadlines_;  // (deadline ms, token) of queries in udns
    std::deque<Token> ready_;                         // answered, waiting for dispatch()
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // lets deferred calls see a freed client
};

}  // namespace s2s
