// proxy/resolve/dns_responder_wire: dns_respond fed datagrams directly, no socket: the outcome it
// reports for the log and the bytes it writes. (test_dns_responder.cpp asks the same questions
// over UDP and checks every answer byte by byte.)
#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "proxy/resolve/dns_responder_wire.h"
#include "tests/unit/support/dns_packets.h"

using namespace s2s;
using namespace s2s::test::dns;

namespace {

// dns_respond on `q` with the test rules, describing it; the answer's bytes in *answer.
DnsReply respond(const Bytes& q, Bytes* answer = nullptr) {
    uint8_t out[kDnsResponderMaxAnswer];
    DnsReply r = dns_respond(rules(true, true), q.data(), q.size(), out, sizeof out, true);
    if (answer) answer->assign(out, out + r.size);
    return r;
}

}  // namespace

TEST_CASE("dns_responder_wire: each kind of query gets its outcome, rcode and record count") {
    struct Case {
        Bytes query;
        const char* why;
        int rcode;
        int answers;
    };
    const Case cases[] = {
        {query(1, "_xmpp-server._tcp.b.test", 33), "srv", 0, 1},
        {query(2, "_xmpp-server._tcp.b.test", 1), "srv-no-data", 0, 0},
        {query(3, "_xmpp-server._tcp.C.Test", 33), "own-domain", 3, 0},
        {query(4, "_xmpps-server._tcp.b.test", 33), "no-direct-tls", 0, 0},
        {query(5, "localhost", 255), "localhost", 0, 2},
        {query(6, "localhost", 33), "localhost-no-data", 0, 0},
        {query(7, "b.test", 1), "unknown", 3, 0},
        {query(8, "version.bind", 16, 3), "class", 5, 0},
        {query(9, "localhost", 1, 1, opt(4096, 1), 1), "edns-version", 16, 0},
    };
    for (const Case& c : cases) {
        CAPTURE(hex(c.query));
        DnsReply r = respond(c.query);
        CHECK(std::string(r.why) == c.why);
        CHECK(r.rcode == c.rcode);
        CHECK(r.answers == c.answers);
        CHECK(r.size > 0);
    }
    Bytes answer;
    DnsReply r = respond(query(0x1234, "_xmpp-server._tcp.b.test", 33, 1, opt(), 1), &answer);
    CHECK(r.edns);
    CHECK(r.qtype == 33);
    CHECK(r.qname == "_xmpp-server._tcp.b.test");
    CHECK(answer == cat({header(0x1234, 0, 1, 1, 1), question("_xmpp-server._tcp.b.test", 33), srv_record(kLocalPort),
                         opt_answer()}));
}

TEST_CASE("dns_responder_wire: short datagrams and responses get nothing; bad ones a header alone") {
    CHECK(respond(Bytes(11, 0)).size == 0);
    CHECK(std::string(respond(Bytes(11, 0)).why) == "short");
    Bytes response = query(1, "localhost", 1);
    response[2] |= 0x80;
    DnsReply r = respond(response);
    CHECK(r.size == 0);
    CHECK(r.rcode == -1);
    CHECK(std::string(r.why) == "response");
    Bytes trailing = query(2, "localhost", 1);
    trailing.push_back(0);
    r = respond(trailing);
    CHECK(r.size == 12);
    CHECK(r.rcode == 1);
    CHECK(std::string(r.why) == "malformed");
    Bytes update = query(3, "localhost", 1);
    update[2] = static_cast<uint8_t>(5 << 3);
    r = respond(update);
    CHECK(r.size == 12);
    CHECK(r.rcode == 4);
    CHECK(std::string(r.why) == "opcode");
}

TEST_CASE("dns_responder_wire: names for the log") {
    CHECK(std::string(dns_type_name(1)) == "A");
    CHECK(std::string(dns_type_name(28)) == "AAAA");
    CHECK(std::string(dns_type_name(33)) == "SRV");
    CHECK(std::string(dns_type_name(255)) == "ANY");
    CHECK(dns_type_name(16) == nullptr);
    CHECK(std::string(dns_rcode_name(0)) == "NOERROR");
    CHECK(std::string(dns_rcode_name(3)) == "NXDOMAIN");
    CHECK(std::string(dns_rcode_name(16)) == "BADVERS");
    CHECK(std::string(dns_rcode_name(2)) == "?");
}

TEST_CASE("dns_responder_wire: dns_respond never writes past a small output buffer") {
    DnsResponderRules r = rules();
    Bytes q = query(1, "_xmpp-server._tcp.b.test", 33);
    uint8_t out[600];
    DnsReply full = dns_respond(r, q.data(), q.size(), out, sizeof out, true);
    REQUIRE(full.size > 0);
    CHECK(full.qname == "_xmpp-server._tcp.b.test");
    CHECK(std::string(full.why) == "srv");
    for (size_t cap = 0; cap < full.size; ++cap) {
        Bytes small(cap + 1, 0xEE);  // one guard byte
        DnsReply rep = dns_respond(r, q.data(), q.size(), small.data(), cap);
        CHECK(rep.size == 0);
        CHECK(small[cap] == 0xEE);
    }
    // names with bytes outside letters, digits, '-' and '_' are logged escaped
    Bytes odd = query(2, "a", 1);
    odd[13] = '\n';
    DnsReply rep = dns_respond(r, odd.data(), odd.size(), out, sizeof out, true);
    CHECK(rep.qname == "\\010");
    CHECK(rep.rcode == 3);
}
