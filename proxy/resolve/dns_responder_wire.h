// The local DNS responder's packet logic (dns_responder.h serves it on UDP): from one query
// datagram to its answer, a pure function of the bytes and the rules, fuzzed by
// tests/fuzz/fuzz_dns_responder.cpp. It reads the question and the additional section (EDNS) and
// writes the answer; nothing else.
//
// Answers (RFC 1035; TTL 60; AA and RA set; the question echoed byte for byte):
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

// Names for the log: a query type (A, AAAA, SRV, ANY; null for others) and an RCODE ("?" for
// one dns_respond never gives).
[[nodiscard]] const char* dns_type_name(uint16_t type) noexcept;
[[nodiscard]] const char* dns_rcode_name(int rcode) noexcept;

}  // namespace s2s
