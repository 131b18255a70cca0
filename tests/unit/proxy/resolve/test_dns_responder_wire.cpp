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

// dns_respond on `q` with the test rules (forwarding or not), describing it; the answer's bytes
// in *answer.
DnsReply respond(const Bytes& q, Bytes* answer = nullptr, bool forward = false, bool ipv4 = true, bool ipv6 = true) {
    DnsResponderRules r = rules(ipv4, ipv6);
    r.forward = forward;
    uint8_t out[kDnsResponderMaxAnswer];
    DnsReply rep = dns_respond(r, q.data(), q.size(), out, sizeof out, true);
    if (answer) answer->assign(out, out + rep.size);
    return rep;
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

// ---- with forwarding (local.dns_upstream) --------------------------------------------------------

namespace {

DnsReply respond_forwarding(const Bytes& q, Bytes* answer = nullptr, bool ipv4 = true, bool ipv6 = true) {
    return respond(q, answer, true, ipv4, ipv6);
}

}  // namespace

TEST_CASE("dns_responder_wire: forwarding keeps remote domains' SRV and the target, and hands on the rest") {
    struct Case {
        Bytes query;
        bool forward;
        const char* why;
    };
    const Case cases[] = {
        {query(1, "_xmpp-server._tcp.b.test", 33), false, "srv"},
        {query(2, "_xmpp-server._tcp.b.test", 255), false, "srv"},
        {query(3, "_XMPPS-server._tcp.b.test", 33), false, "no-direct-tls"},
        {query(4, "_xmpps-server._tcp.b.test", 16), false, "no-direct-tls"},
        {query(5, "s2s-proxy.localhost", 1), false, "localhost"},
        {query(6, "S2S-Proxy.LocalHost", 28), false, "localhost"},
        {query(7, "s2s-proxy.localhost", 16), false, "localhost-no-data"},
        // the truth about our own domains, other types at _xmpp-server names, other names, other classes
        {query(8, "_xmpp-server._tcp.c.test", 33), true, "own-domain"},
        {query(9, "_xmpps-server._tcp.other.example", 33), true, "own-domain"},
        {query(10, "_xmpp-server._tcp.b.test", 1), true, "forward"},
        {query(11, "localhost", 1), true, "forward"},
        {query(12, "db.internal.example", 1), true, "forward"},
        {query(13, "_ldap._tcp.example.com", 33), true, "forward"},
        {query(14, "version.bind", 16, 3), true, "forward"},
        {query(15, "_xmpp-server._tcp.b.test", 33, 3), true, "forward"},
        {query(16, "db.internal.example", 1, 1, opt(4096, 1), 1), true, "forward"},
        {query(17, "x.s2s-proxy.localhost", 1), true, "forward"},
    };
    for (const Case& c : cases) {
        CAPTURE(hex(c.query));
        DnsReply r = respond_forwarding(c.query);
        CHECK(r.forward == c.forward);
        CHECK(std::string(r.why) == c.why);
        if (c.forward) {
            CHECK(r.size == 0);
            CHECK(r.rcode == -1);
        } else {
            CHECK(r.size > 0);
            CHECK(r.rcode == 0);
        }
    }
    // what is never forwarded: malformed queries, other opcodes, responses, short datagrams
    Bytes trailing = query(20, "db.internal.example", 1);
    trailing.push_back(0);
    CHECK_FALSE(respond_forwarding(trailing).forward);
    CHECK(respond_forwarding(trailing).rcode == 1);
    Bytes notify = query(21, "db.internal.example", 1);
    notify[2] = static_cast<uint8_t>(4 << 3);
    CHECK_FALSE(respond_forwarding(notify).forward);
    CHECK(respond_forwarding(notify).rcode == 4);
    Bytes response = query(22, "db.internal.example", 1);
    response[2] |= 0x80;
    CHECK_FALSE(respond_forwarding(response).forward);
    CHECK(respond_forwarding(response).size == 0);
    // an unknown EDNS version on a question answered here is still BADVERS
    CHECK(respond_forwarding(query(23, "_xmpp-server._tcp.b.test", 33, 1, opt(4096, 1), 1)).rcode == 16);
}

TEST_CASE("dns_responder_wire: with forwarding the SRV target is s2s-proxy.localhost, its addresses alongside") {
    Bytes answer;
    DnsReply r = respond_forwarding(query(0x0A0B, "_xmpp-server._tcp.b.test", 33), &answer);
    CHECK(r.answers == 1);
    CHECK(r.additional == 2);
    CHECK(answer == cat({header(0x0A0B, 0, 1, 1, 2), question("_xmpp-server._tcp.b.test", 33),
                         srv_record_own_target(kLocalPort), own_target_a_record(), own_target_aaaa_record()}));
    // IPv4 only: no AAAA alongside; EDNS: the OPT record last
    r = respond_forwarding(query(0x0A0C, "_xmpp-server._tcp.b.test", 33, 1, opt(), 1), &answer, true, false);
    CHECK(r.additional == 1);
    CHECK(answer == cat({header(0x0A0C, 0, 1, 1, 2), question("_xmpp-server._tcp.b.test", 33),
                         srv_record_own_target(kLocalPort), own_target_a_record(), opt_answer()}));
    // the target's own A and AAAA
    respond_forwarding(query(0x0A0D, "s2s-proxy.localhost", 255), &answer);
    CHECK(answer == cat({header(0x0A0D, 0, 1, 2), question("s2s-proxy.localhost", 255), a_record(), aaaa_record()}));
    respond_forwarding(query(0x0A0E, "s2s-proxy.localhost", 28), &answer, true, false);
    CHECK(answer == cat({header(0x0A0E, 0, 1, 0), question("s2s-proxy.localhost", 28)}));
    // the longest name, EDNS and both addresses still fit in 512 bytes
    std::string longest = "_xmpp-server._tcp";
    while (longest.size() + 64 < 253) longest += "." + std::string(62, 'x');
    longest += "." + std::string(253 - longest.size() - 1, 'y');
    REQUIRE(longest.size() == 253);
    r = respond_forwarding(query(0x0A0F, longest, 33, 1, opt(), 1), &answer);
    CHECK(r.answers == 1);
    CHECK(r.additional == 2);
    CHECK(answer.size() <= 512);
}

TEST_CASE("dns_responder_wire: dns_same_question") {
    const Bytes q = query(1, "db.Example.org", 1);
    CHECK(dns_same_question(q.data(), q.size(), q.data(), q.size()));
    Bytes other_id_and_case = query(2, "DB.example.ORG", 1);
    other_id_and_case[2] |= 0x80;
    CHECK(dns_same_question(q.data(), q.size(), other_id_and_case.data(), other_id_and_case.size()));
    // an answer carries records after the question: only the question counts
    Bytes answer = cat({header(1, 0, 1, 1), question("db.example.org", 1), a_record()});
    CHECK(dns_same_question(q.data(), q.size(), answer.data(), answer.size()));
    for (const Bytes& differs : {query(1, "db.example.com", 1), query(1, "db.example.org", 28),
                                 query(1, "db.example.org", 1, 3), query(1, "example.org", 1),
                                 query(1, "x.db.example.org", 1)}) {
        CAPTURE(hex(differs));
        CHECK_FALSE(dns_same_question(q.data(), q.size(), differs.data(), differs.size()));
    }
    Bytes no_question = header(1, 2, 0, 0);  // SERVFAIL with no question section
    CHECK_FALSE(dns_same_question(q.data(), q.size(), no_question.data(), no_question.size()));
    for (size_t cut = 0; cut < q.size(); ++cut)
        CHECK_FALSE(dns_same_question(q.data(), q.size(), q.data(), cut));
    CHECK_FALSE(dns_same_question(nullptr, 0, q.data(), q.size()));
}
