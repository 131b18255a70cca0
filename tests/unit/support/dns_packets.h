// DNS datagrams built by hand for the DNS responder's tests (test_dns_responder_wire.cpp feeds
// them to dns_respond, test_dns_responder.cpp sends them over UDP): queries, and the answers
// expected back, byte for byte.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "proxy/resolve/dns_responder_wire.h"

namespace s2s::test::dns {

using Bytes = std::vector<uint8_t>;

constexpr uint16_t kLocalPort = 15270;  // what the SRV answers name (0x3B 0x A6)

void put16(Bytes& b, uint16_t v);
void put(Bytes& b, std::initializer_list<int> bytes);
// "a.b" -> 1 'a' 1 'b' 0 (no checks: tests build odd names on purpose elsewhere).
Bytes wire_name(const std::string& name);
// The question section for name/type/class.
Bytes question(const std::string& name, uint16_t type, uint16_t cls = 1);
// A standard query with RD set; `extra` is appended as the additional section (arcount given).
Bytes query(uint16_t id, const std::string& name, uint16_t type, uint16_t cls = 1, const Bytes& extra = {},
            uint16_t arcount = 0);
// An OPT record: root name, payload size, version, DO.
Bytes opt(uint16_t payload = 4096, uint8_t version = 0, bool dnssec_ok = false);
// The expected answer's header: QR AA RD / RA RCODE and the counts.
Bytes header(uint16_t id, int rcode, uint16_t qd, uint16_t an, uint16_t ar = 0);
Bytes cat(std::initializer_list<Bytes> parts);
// The answer records, each named by a pointer to the question (C0 0C), class IN, TTL 60.
Bytes srv_record(uint16_t port);
Bytes a_record();
Bytes aaaa_record();
// With forwarding (rules.forward): the SRV record naming s2s-proxy.localhost., and that name's
// A / AAAA records for the additional section, their owner written out in full.
Bytes srv_record_own_target(uint16_t port);
Bytes own_target_a_record();
Bytes own_target_aaaa_record();
// The OPT record of an answer: payload 1232, extended rcode, version 0, DO copied.
Bytes opt_answer(uint8_t ext_rcode = 0, bool dnssec_ok = false);
// "0a 1b ...", for failure messages.
std::string hex(const Bytes& b);

// The rules the tests answer with: SRV to kLocalPort, localhost over the families given, and
// c.test and other.example as the local server's own domains.
DnsResponderRules rules(bool ipv4 = true, bool ipv6 = false);

}  // namespace s2s::test::dns
