// The local DNS responder's packet logic (dns_responder.h serves it on UDP): from one query
// datagram to its answer, or to the decision that the upstream resolvers answer it, a pure
// function of the bytes and the rules, fuzzed by tests/fuzz/fuzz_dns_responder.cpp. It reads the
// question and the additional section (EDNS) and writes the answer; nothing else.
//
// Answers (RFC 1035; TTL 60; AA and RA set; the question echoed byte for byte):
//   _xmpp-server._tcp.NAME   SRV   one record: 0 0 <first [[listen.local]] port> TARGET
//                            other types: NOERROR, no records (the name exists)
//   _xmpps-server._tcp.NAME  any   NOERROR, no records (no direct TLS from the local server)
//   TARGET                   A     127.0.0.1 when the local listener is reachable over IPv4
//                            AAAA  ::1 when it listens on ::1 (or ::); otherwise NOERROR, no records
//   _xmpp-server._tcp.D and _xmpps-server._tcp.D for D in general.hosts: NXDOMAIN (the local
//                            server must never reach its own domains through the proxy)
//   anything else            NXDOMAIN; a class other than IN (or ANY): REFUSED
// TARGET is `localhost.`, the name ejabberd's recipe was verified with.
//
// With rules.forward (local.dns_upstream: the responder is the local server's system resolver),
// only these are answered here:
//   _xmpp-server._tcp.NAME   SRV (and ANY)  one record: 0 0 <port> s2s-proxy.localhost., with the
//                            target's A/AAAA in the additional section, so the answer stands alone
//   _xmpps-server._tcp.NAME  any   NOERROR, no records
//   s2s-proxy.localhost      any   A 127.0.0.1 / AAAA ::1 as above; other types NOERROR, no records
// for NAME outside general.hosts and class IN (or ANY); every other well-formed query (our own
// domains' SRV, other types at _xmpp-server names, every other name and class) comes back with
// DnsReply::forward set and nothing written: the upstream's answer is the truth. The target is
// a name under .localhost that no hosts file lists (so glibc's getaddrinfo asks this responder,
// where `localhost` would come from /etc/hosts with ::1 as well) and that nothing else may give
// another address: RFC 6761 §6.3 keeps .localhost names on the loopback address (caching servers
// answer them with it, though some say NXDOMAIN), and a query for it is never forwarded. The
// additional records spare a second query to resolvers that read them; udns and glibc ask again.
//
// Malformed queries get FORMERR (header only); opcodes other than QUERY get NOTIMP; a datagram
// shorter than a header, or one that is itself a response, gets nothing. EDNS (RFC 6891): an OPT
// record in the query is answered with one (DO copied); a version above 0 gets BADVERS (or, with
// forwarding, goes upstream unless the question is one answered here). Every answer fits in 512
// bytes, so TC is never set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace s2s {

// What the answers say.
struct DnsResponderRules {
    uint16_t port = 0;                                // the SRV port: the first [[listen.local]]
    bool ipv4 = true;                                 // localhost A -> 127.0.0.1
    bool ipv6 = false;                                // localhost AAAA -> ::1
    std::vector<std::vector<std::string>> own;        // general.hosts, lowercase labels: NXDOMAIN
    uint32_t ttl = 60;
    bool forward = false;                             // upstreams answer the rest; SRV target s2s-proxy.localhost.

    // own <- domains (lowercased, split at dots).
    void set_own_domains(const std::vector<std::string>& domains);
};

// What one datagram was, for the log.
struct DnsReply {
    size_t size = 0;            // bytes of the answer in `out`; 0: no answer is sent
    int rcode = -1;             // the answer's RCODE (16: BADVERS), -1 when dropped
    uint16_t qtype = 0;
    int answers = 0;            // records in the answer section
    int additional = 0;         // A/AAAA records in the additional section (OPT not counted)
    bool forward = false;       // for the upstreams: nothing written (size 0), rcode -1
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

// Whether two messages ask the same question: each has exactly one, with the same name (without
// regard to ASCII case), type and class. Reads only a[0..alen) and b[0..blen); false for anything
// malformed. The forwarder holds an upstream's answer to the question it sent.
[[nodiscard]] bool dns_same_question(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen) noexcept;

// Names for the log: a query type (A, AAAA, SRV, ANY; null for others) and an RCODE ("?" for
// one dns_respond never gives).
[[nodiscard]] const char* dns_type_name(uint16_t type) noexcept;
[[nodiscard]] const char* dns_rcode_name(int rcode) noexcept;

}  // namespace s2s
