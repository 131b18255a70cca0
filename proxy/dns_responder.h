// A minimal DNS responder on loopback (`local.dns_responder = "127.0.0.1:PORT"`) that sends a local
// server's outgoing s2s to s2s-proxy, for servers with no setting for that (ejabberd 23.01: its
// inetrc names this responder as its only nameserver; see config-examples/ejabberd/README.md).
//
// Answers (RFC 1035 over UDP, one query per datagram, answered at once from the receive callback;
// TTL 60; AA and RA set; the question echoed byte for byte):
//   _xmpp-server._tcp.NAME   SRV   one record: 0 0 <first [[listen.local]] port> localhost.
//                            other types: NOERROR, no records (the name exists)
//   _xmpps-server._tcp.NAME  any   NOERROR, no records (no direct TLS from the local server)
//   localhost                A     127.0.0.1 when the local listener is reachable over IPv4
//                            AAAA  ::1 when it listens on ::1 (or ::); otherwise NOERROR, no records
//   _xmpp-server._tcp.D and _xmpps-server._tcp.D for D in general.hosts: NXDOMAIN (the local
//                            server must never reach its own domains through the proxy)
//   anything else            NXDOMAIN; a class other than IN (or ANY): REFUSED
// Malformed queries get FORMERR (header only); opcodes other than QUERY get NOTIMP; a datagram
// shorter than a header, or one that is itself a response, gets nothing. EDNS (RFC 6891): an OPT
// record in the query is answered with one (DO copied); a version above 0 gets BADVERS.
// Every answer fits in 512 bytes, so TC is never set.
//
// The packet logic (dns_respond) is a pure function, fuzzed by tests/fuzz/fuzz_dns_responder.cpp.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/event_loop.h"

namespace s2s {

// What the answers say.
struct DnsResponderRules {
    uint16_t port = 0;                                // the SRV port: the first [[listen.local]]
    bool ipv4 = true;                                 // localhost A -> 127.0.0.1
    bool ipv6 = false;                                // localhost AAAA -> ::1
    std::vector<std::vector<std::string>> own;        // general.hosts, lowercase labels: NXDOMAIN
    uint32_t ttl = 60;

    // own <- domains (lowercased, split at dots).
    void set_own_domains(const std::vector<std::string>& domains);
};

// What one datagram was, for the log.
struct DnsReply {
    size_t size = 0;            // bytes of the answer in `out`; 0: no answer is sent
    int rcode = -1;             // the answer's RCODE (16: BADVERS), -1 when dropped
    uint16_t qtype = 0;
    int answers = 0;            // records in the answer section
    bool edns = false;          // the query had an OPT record
    std::string qname;          // presentation form (non-LDH bytes as \DDD), when `describe`
    const char* why = "";       // a word on the outcome: "srv", "own-domain", "malformed"...
};

// The largest answer dns_respond writes (it needs `cap` >= this).
constexpr size_t kDnsResponderMaxAnswer = 512;

// The answer to one query datagram, written to out[0..cap). Never reads outside query[0..len)
// nor writes outside out[0..cap); `describe` fills DnsReply::qname.
DnsReply dns_respond(const DnsResponderRules& rules, const uint8_t* query, size_t len, uint8_t* out, size_t cap,
                     bool describe = false);

// The responder's address and rules from the config: local.dns_responder must be "ip:port" (or
// "localhost:port") on loopback, and the first [[listen.local]] must be reachable as "localhost"
// (127.0.0.1, ::1, 0.0.0.0 or ::). False and *error, naming the key, otherwise.
[[nodiscard]] bool dns_responder_settings(const Config& config, sockaddr_storage* bind, DnsResponderRules* rules,
                                          std::string* error);

class DnsResponder {
public:
    // Binds `bind` (UDP; port 0: any free port) and answers there until destroyed. nullptr and
    // *error when the address is not loopback or cannot be bound.
    [[nodiscard]] static std::unique_ptr<DnsResponder> start(EventLoop& loop, const sockaddr_storage& bind,
                                                             DnsResponderRules rules, std::string* error);
    // From the config (dns_responder_settings, then start); the error names local.dns_responder.
    [[nodiscard]] static std::unique_ptr<DnsResponder> start(EventLoop& loop, const Config& config,
                                                             std::string* error);
    // Closes the socket (the handle is freed by the loop afterwards).
    ~DnsResponder();
    DnsResponder(const DnsResponder&) = delete;
    DnsResponder& operator=(const DnsResponder&) = delete;

    // The bound address, with the port actually bound.
    [[nodiscard]] const sockaddr_storage& address() const noexcept;
    // "127.0.0.1 port 5353", for logs.
    [[nodiscard]] std::string address_text() const;
    [[nodiscard]] uint64_t answered() const noexcept;  // datagrams answered
    [[nodiscard]] uint64_t dropped() const noexcept;   // datagrams not answered

private:
    struct Socket;
    explicit DnsResponder(Socket* socket) : socket_(socket) {}
    Socket* socket_;  // freed in its close callback
};

// Whether an address is loopback: 127.0.0.0/8, ::1 (or ::ffff:127.x.x.x).
[[nodiscard]] bool is_loopback_address(const sockaddr_storage& address) noexcept;

}  // namespace s2s
