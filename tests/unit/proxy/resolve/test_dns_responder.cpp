// DnsResponder (local.dns_responder): real UDP queries, hand-built, sent to a responder on the
// loop; every answer checked byte by byte. Then malformed datagrams, the config checks (with
// local.dns_upstream too), the udns client (common/dns/dns.h) as a real resolver library reading
// the answers, and the Server starting and stopping the responder from a loaded config.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/config_load.h"
#include "common/dns/dns.h"
#include "proxy/resolve/dns_responder.h"
#include "proxy/app/server.h"
#include "tests/unit/support/dns_packets.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;
using s2s::test::TestLoop;
using namespace s2s::test::dns;

namespace {

// ---- a responder on the loop and a plain UDP client --------------------------------------------

sockaddr_storage loopback(int port, bool v6 = false) {
    sockaddr_storage ss{};
    if (v6) REQUIRE(uv_ip6_addr("::1", port, reinterpret_cast<sockaddr_in6*>(&ss)) == 0);
    else REQUIRE(uv_ip4_addr("127.0.0.1", port, reinterpret_cast<sockaddr_in*>(&ss)) == 0);
    return ss;
}

int port_of(const sockaddr_storage& ss) {
    return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(ss).sin_port
                                         : reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
}

struct Responder {
    TestLoop& t;
    std::unique_ptr<DnsResponder> server;
    int fd = -1;

    explicit Responder(TestLoop& loop, DnsResponderRules r = rules(), bool v6 = false) : t(loop) {
        std::string error;
        server = DnsResponder::start(t.loop(), loopback(0, v6), std::move(r), &error);
        REQUIRE_MESSAGE(server, error);
        fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
        REQUIRE(fd >= 0);
        const sockaddr_storage& a = server->address();
        REQUIRE(connect(fd, reinterpret_cast<const sockaddr*>(&a),
                        v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)) == 0);
    }
    ~Responder() {
        if (fd >= 0) close(fd);
    }

    // Sends one datagram and waits (running the loop) for the answer; nullopt after `ms` of silence.
    std::optional<Bytes> ask(const Bytes& datagram, uint64_t ms = 2000) {
        REQUIRE(send(fd, datagram.data(), datagram.size(), 0) == static_cast<ssize_t>(datagram.size()));
        Bytes got(70000);
        ssize_t n = -1;
        t.run_until([&] {  // (run_until asks once more at the end: keep what was received)
            if (n < 0) n = recv(fd, got.data(), got.size(), MSG_DONTWAIT);
            return n >= 0;
        }, ms);
        if (n < 0) return std::nullopt;
        got.resize(static_cast<size_t>(n));
        return got;
    }

    void expect(const Bytes& datagram, const Bytes& answer) {
        auto got = ask(datagram);
        REQUIRE_MESSAGE(got, "no answer to " << hex(datagram));
        CHECK_MESSAGE(*got == answer, "query    " << hex(datagram) << "\nexpected " << hex(answer) << "\ngot      "
                                                  << hex(*got));
    }

    void expect_silence(const Bytes& datagram) {
        uint64_t before = server->dropped();
        auto got = ask(datagram, 200);
        CHECK_MESSAGE(!got, "unexpected answer " << (got ? hex(*got) : "") << " to " << hex(datagram));
        CHECK(server->dropped() == before + 1);
    }

    // A header-only error answer (FORMERR, NOTIMP) with the query's id and RD, opcode kept.
    void expect_error(const Bytes& datagram, int rcode, uint8_t opcode = 0) {
        REQUIRE(datagram.size() >= 3);
        Bytes want{datagram[0], datagram[1], static_cast<uint8_t>(0x84 | opcode << 3 | (datagram[2] & 1)),
                   static_cast<uint8_t>(0x80 | rcode), 0, 0, 0, 0, 0, 0, 0, 0};
        expect(datagram, want);
    }
};

}  // namespace

// ---- well-formed queries -------------------------------------------------------------------------

TEST_CASE("dns_responder: SRV _xmpp-server._tcp of any domain is localhost at the local listener's port") {
    TestLoop t;
    {
        Responder r(t);
        for (const char* name : {"_xmpp-server._tcp.b.test", "_xmpp-server._tcp.jabber.org",
                                 "_xmpp-server._tcp.a.very.deep.domain.example", "_xmpp-server._tcp.localhost"}) {
            CAPTURE(name);
            r.expect(query(0x1234, name, 33), cat({header(0x1234, 0, 1, 1), question(name, 33), srv_record(kLocalPort)}));
        }
        // labels compare without case, and the question comes back exactly as asked (RFC 1035 7.3)
        r.expect(query(0xBEEF, "_XMPP-Server._TCP.B.Test", 33),
                 cat({header(0xBEEF, 0, 1, 1), question("_XMPP-Server._TCP.B.Test", 33), srv_record(kLocalPort)}));
        // ANY gets the SRV record too
        r.expect(query(7, "_xmpp-server._tcp.b.test", 255),
                 cat({header(7, 0, 1, 1), question("_xmpp-server._tcp.b.test", 255), srv_record(kLocalPort)}));
        // another type for that name: it exists, no records of that type
        r.expect(query(8, "_xmpp-server._tcp.b.test", 1), cat({header(8, 0, 1, 0), question("_xmpp-server._tcp.b.test", 1)}));
        // class ANY is answered as IN
        r.expect(query(9, "_xmpp-server._tcp.b.test", 33, 255),
                 cat({header(9, 0, 1, 1), question("_xmpp-server._tcp.b.test", 33, 255), srv_record(kLocalPort)}));
        // RD clear in the query: clear in the answer
        Bytes q = query(10, "_xmpp-server._tcp.b.test", 33);
        q[2] = 0;
        Bytes want = cat({header(10, 0, 1, 1), question("_xmpp-server._tcp.b.test", 33), srv_record(kLocalPort)});
        want[2] = 0x84;
        r.expect(q, want);
        CHECK(r.server->answered() == 9);
    }
}

TEST_CASE("dns_responder: the local server's own domains are never sent to the proxy") {
    TestLoop t;
    {
        Responder r(t);
        for (const char* name : {"_xmpp-server._tcp.c.test", "_xmpp-server._tcp.C.TEST", "_xmpps-server._tcp.c.test",
                                 "_xmpp-server._tcp.other.example"}) {
            CAPTURE(name);
            r.expect(query(0x0102, name, 33), cat({header(0x0102, 3, 1, 0), question(name, 33)}));
        }
        // a subdomain of an own domain is another domain
        r.expect(query(3, "_xmpp-server._tcp.muc.c.test", 33),
                 cat({header(3, 0, 1, 1), question("_xmpp-server._tcp.muc.c.test", 33), srv_record(kLocalPort)}));
    }
}

TEST_CASE("dns_responder: _xmpps-server is empty (no direct TLS from the local server)") {
    TestLoop t;
    {
        Responder r(t);
        for (uint16_t type : {33, 255, 1}) {
            CAPTURE(type);
            r.expect(query(0x4444, "_xmpps-server._tcp.b.test", type),
                     cat({header(0x4444, 0, 1, 0), question("_xmpps-server._tcp.b.test", type)}));
        }
    }
}

TEST_CASE("dns_responder: localhost A and AAAA follow the local listener's address family") {
    TestLoop t;
    {
        Responder v4(t, rules(true, false));
        v4.expect(query(1, "localhost", 1), cat({header(1, 0, 1, 1), question("localhost", 1), a_record()}));
        v4.expect(query(2, "LocalHost", 1), cat({header(2, 0, 1, 1), question("LocalHost", 1), a_record()}));
        v4.expect(query(3, "localhost", 28), cat({header(3, 0, 1, 0), question("localhost", 28)}));
        v4.expect(query(4, "localhost", 255), cat({header(4, 0, 1, 1), question("localhost", 255), a_record()}));
        v4.expect(query(5, "localhost", 33), cat({header(5, 0, 1, 0), question("localhost", 33)}));

        Responder v6(t, rules(false, true));
        v6.expect(query(6, "localhost", 1), cat({header(6, 0, 1, 0), question("localhost", 1)}));
        v6.expect(query(7, "localhost", 28), cat({header(7, 0, 1, 1), question("localhost", 28), aaaa_record()}));

        Responder both(t, rules(true, true));
        both.expect(query(8, "localhost", 255),
                    cat({header(8, 0, 1, 2), question("localhost", 255), a_record(), aaaa_record()}));
    }
}

TEST_CASE("dns_responder: anything else is NXDOMAIN; a class other than IN is REFUSED") {
    TestLoop t;
    {
        Responder r(t);
        for (const char* name : {"b.test", "_xmpp-client._tcp.b.test", "_xmpp-server._udp.b.test", "_xmpp-server._tcp",
                                 "_tcp.b.test", "localhost.b.test", "www.localhost", "example"}) {
            CAPTURE(name);
            r.expect(query(0x7777, name, 33), cat({header(0x7777, 3, 1, 0), question(name, 33)}));
        }
        // the root
        Bytes root_q{0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
        r.expect(root_q, cat({header(0x1234, 3, 1, 0), Bytes{0, 0, 2, 0, 1}}));
        // CHAOS class (version.bind and friends)
        r.expect(query(5, "version.bind", 16, 3), cat({header(5, 5, 1, 0), question("version.bind", 16, 3)}));
        r.expect(query(6, "_xmpp-server._tcp.b.test", 33, 3),
                 cat({header(6, 5, 1, 0), question("_xmpp-server._tcp.b.test", 33, 3)}));
    }
}

TEST_CASE("dns_responder: EDNS queries get an OPT record back; an unknown EDNS version gets BADVERS") {
    TestLoop t;
    {
        Responder r(t);
        const char* name = "_xmpp-server._tcp.b.test";
        r.expect(query(1, name, 33, 1, opt(4096), 1),
                 cat({header(1, 0, 1, 1, 1), question(name, 33), srv_record(kLocalPort), opt_answer()}));
        r.expect(query(2, name, 33, 1, opt(512, 0, true), 1),
                 cat({header(2, 0, 1, 1, 1), question(name, 33), srv_record(kLocalPort), opt_answer(0, true)}));
        r.expect(query(3, "nothing.test", 1, 1, opt(), 1),
                 cat({header(3, 3, 1, 0, 1), question("nothing.test", 1), opt_answer()}));
        // version 1: BADVERS (16) = extended rcode 1, header rcode 0, no records
        r.expect(query(4, name, 33, 1, opt(4096, 1), 1), cat({header(4, 0, 1, 0, 1), question(name, 33), opt_answer(1)}));
        // a record other than OPT in the additional section is skipped (e.g. a TSIG we do not check)
        Bytes other{0xC0, 0x0C, 0, 16, 0, 1, 0, 0, 0, 0, 0, 3, 2, 'h', 'i'};
        r.expect(query(5, name, 33, 1, cat({other, opt()}), 2),
                 cat({header(5, 0, 1, 1, 1), question(name, 33), srv_record(kLocalPort), opt_answer()}));
    }
}

TEST_CASE("dns_responder: names at the length limits") {
    TestLoop t;
    {
        Responder r(t);
        // 255 bytes on the wire: _xmpp-server (13) _tcp (5) + 3 x (1 + 63) + (1 + 43) + the final 0
        std::string l63(63, 'x'), l43(43, 'y');
        std::string longest = "_xmpp-server._tcp." + l63 + "." + l63 + "." + l63 + "." + l43;
        REQUIRE(wire_name(longest).size() == 255);
        r.expect(query(1, longest, 33), cat({header(1, 0, 1, 1), question(longest, 33), srv_record(kLocalPort)}));
        // one byte more: FORMERR
        std::string too_long = longest + "z";
        REQUIRE(wire_name(too_long).size() == 256);
        r.expect_error(query(2, too_long, 33), 1);
        // a 64-byte label cannot be encoded (0x40 is an extended label type): FORMERR
        r.expect_error(query(3, "_xmpp-server._tcp." + std::string(64, 'a'), 33), 1);
    }
}

// ---- malformed datagrams -------------------------------------------------------------------------

TEST_CASE("dns_responder: malformed datagrams get FORMERR or nothing, and the responder keeps answering") {
    TestLoop t;
    {
        Responder r(t);
        const Bytes good = query(0x4242, "_xmpp-server._tcp.b.test", 33);

        // nothing: too short for a header, empty, or itself a response
        r.expect_silence(Bytes{});
        r.expect_silence(Bytes{0x12});
        r.expect_silence(Bytes(11, 0));
        Bytes response = good;
        response[2] |= 0x80;
        r.expect_silence(response);

        // a header alone (no question) and other counts: FORMERR
        r.expect_error(Bytes{0xAB, 0xCD, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 1);
        Bytes two = good;
        two[5] = 2;
        r.expect_error(two, 1);
        Bytes with_answer = good;
        with_answer[7] = 1;
        r.expect_error(with_answer, 1);
        Bytes with_authority = good;
        with_authority[9] = 1;
        r.expect_error(with_authority, 1);

        // opcodes other than QUERY: NOTIMP, the opcode kept
        Bytes status = good;
        status[2] = static_cast<uint8_t>(2 << 3 | 1);
        r.expect_error(status, 4, 2);
        Bytes update = good;
        update[2] = static_cast<uint8_t>(5 << 3);
        r.expect_error(update, 4, 5);

        // the question cut anywhere: FORMERR
        for (size_t cut = 12; cut < good.size(); ++cut) {
            CAPTURE(cut);
            r.expect_error(Bytes(good.begin(), good.begin() + static_cast<long>(cut)), 1);
        }
        // a label running past the end
        Bytes past = good;
        past[12] = 60;
        r.expect_error(past, 1);
        // a compression pointer in the question (to itself: a loop if followed)
        Bytes pointer{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 33, 0, 1};
        r.expect_error(pointer, 1);
        // extended label types 0x40 and 0x80
        for (uint8_t type : {0x41, 0x81}) {
            Bytes ext{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, type, 'a', 0, 0, 33, 0, 1};
            r.expect_error(ext, 1);
        }
        // bytes after the question
        Bytes trailing = good;
        trailing.push_back(0);
        r.expect_error(trailing, 1);
        // an additional record announced but missing, cut short, or too long for the datagram
        Bytes missing = good;
        missing[11] = 1;
        r.expect_error(missing, 1);
        Bytes o = opt();
        for (size_t cut = 1; cut < o.size(); ++cut) {
            CAPTURE(cut);
            r.expect_error(query(5, "localhost", 1, 1, Bytes(o.begin(), o.begin() + static_cast<long>(cut)), 1), 1);
        }
        Bytes long_rdata = opt();
        long_rdata[10] = 5;  // rdlength 5, nothing follows
        r.expect_error(query(6, "localhost", 1, 1, long_rdata, 1), 1);
        // two OPT records; an OPT record not owned by the root
        r.expect_error(query(7, "localhost", 1, 1, cat({opt(), opt()}), 2), 1);
        Bytes named_opt = cat({Bytes{1, 'x', 0}, Bytes(o.begin() + 1, o.end())});  // owner "x." instead of "."
        r.expect_error(query(8, "localhost", 1, 1, named_opt, 1), 1);
        // a big datagram of garbage after a valid header
        Bytes big = good;
        big.resize(9000, 0x3F);
        r.expect_error(big, 1);

        // still answering
        r.expect(good, cat({header(0x4242, 0, 1, 1), question("_xmpp-server._tcp.b.test", 33), srv_record(kLocalPort)}));
    }
}

// ---- configuration -------------------------------------------------------------------------------

TEST_CASE("dns_responder: settings from the config") {
    Config c;
    c.hosts = {"c.test"};
    c.listen_local.resize(1);
    c.listen_local[0].port = 15270;
    c.listen_local[0].ip_address = "127.0.0.1";
    sockaddr_storage bind{};
    DnsResponderRules r;
    std::vector<sockaddr_storage> upstreams;
    std::string error;

    c.local_dns_responder = "127.0.0.1:5353";
    REQUIRE_MESSAGE(dns_responder_settings(c, &bind, &r, &upstreams, &error), error);
    CHECK(bind.ss_family == AF_INET);
    CHECK(port_of(bind) == 5353);
    CHECK(r.port == 15270);
    CHECK(r.ipv4);
    CHECK_FALSE(r.ipv6);
    CHECK(r.ttl == 60);
    REQUIRE(r.own.size() == 1);
    CHECK(r.own[0] == std::vector<std::string>{"c", "test"});

    for (const char* ok : {"[::1]:53", "localhost:5353", "127.0.0.53:5353"}) {
        CAPTURE(ok);
        c.local_dns_responder = ok;
        CHECK_MESSAGE(dns_responder_settings(c, &bind, &r, &upstreams, &error), error);
    }

    for (const char* outside : {"0.0.0.0:5353", "10.1.2.3:53", "[::]:53", "192.168.0.1:5353", "[2001:db8::1]:53"}) {
        CAPTURE(outside);
        c.local_dns_responder = outside;
        error.clear();
        CHECK_FALSE(dns_responder_settings(c, &bind, &r, &upstreams, &error));
        CHECK(error.rfind("local.dns_responder: ", 0) == 0);
        CHECK(error.find("not a loopback address") != std::string::npos);
    }
    for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:53x", "dns.example:53",
                            ":53", ""}) {
        CAPTURE(bad);
        c.local_dns_responder = bad;
        error.clear();
        CHECK_FALSE(dns_responder_settings(c, &bind, &r, &upstreams, &error));
        CHECK(error.rfind("local.dns_responder: ", 0) == 0);
    }

    // where the local listener is decides A / AAAA, or makes "localhost" a wrong answer
    c.local_dns_responder = "127.0.0.1:5353";
    struct Case {
        const char* ip;
        bool ok, v4, v6;
    };
    for (const Case& k : {Case{"0.0.0.0", true, true, false}, Case{"::1", true, false, true}, Case{"::", true, true, true},
                          Case{"127.0.0.5", false, false, false}, Case{"10.0.0.1", false, false, false},
                          Case{"::2", false, false, false}}) {
        CAPTURE(k.ip);
        c.listen_local[0].ip_address = k.ip;
        error.clear();
        REQUIRE(dns_responder_settings(c, &bind, &r, &upstreams, &error) == k.ok);
        if (k.ok) {
            CHECK(r.ipv4 == k.v4);
            CHECK(r.ipv6 == k.v6);
        } else {
            CHECK(error.find("listen.local.0") != std::string::npos);
        }
    }
    c.listen_local[0].ip_address = "127.0.0.1";

    // upstreams (local.dns_upstream): forwarding on, never to the responder itself
    c.local_dns_responder = "127.0.0.1:53";
    REQUIRE_MESSAGE(dns_responder_settings(c, &bind, &r, &upstreams, &error), error);
    CHECK_FALSE(r.forward);
    CHECK(upstreams.empty());
    c.local_dns_upstream = {"10.96.0.10", "127.0.0.53:53", "[fd00::a]:5353"};
    REQUIRE_MESSAGE(dns_responder_settings(c, &bind, &r, &upstreams, &error), error);
    CHECK(r.forward);
    CHECK(upstreams.size() == 3);
    for (const char* self : {"127.0.0.1", "127.0.0.1:53", "0.0.0.0", "[::]:53"}) {
        CAPTURE(self);
        c.local_dns_upstream = {"10.96.0.10", self};
        error.clear();
        CHECK_FALSE(dns_responder_settings(c, &bind, &r, &upstreams, &error));
        CHECK(error.rfind("local.dns_upstream: ", 0) == 0);
    }
    // another port on the same address, or on every address: another server (a local dnsmasq)
    for (const char* other : {"127.0.0.1:5353", "0.0.0.0:5353", "[::]:5353"}) {
        CAPTURE(other);
        c.local_dns_upstream = {other};
        CHECK_MESSAGE(dns_responder_settings(c, &bind, &r, &upstreams, &error), error);
    }
    c.local_dns_upstream = {"dns.example"};
    CHECK_FALSE(dns_responder_settings(c, &bind, &r, &upstreams, &error));
    CHECK(error.rfind("local.dns_upstream: ", 0) == 0);
    c.local_dns_upstream.clear();

    c.listen_local.clear();
    CHECK_FALSE(dns_responder_settings(c, &bind, &r, &upstreams, &error));
    CHECK(error.find("[[listen.local]]") != std::string::npos);
}

TEST_CASE("dns_responder: answers on ::1 as well") {
    TestLoop t;
    {
        std::string error;
        if (!DnsResponder::start(t.loop(), loopback(0, true), rules(), &error)) {
            MESSAGE("no ::1 on this machine: " << error);
            return;
        }
        Responder r(t, rules(false, true), true);
        CHECK(r.server->address().ss_family == AF_INET6);
        r.expect(query(0x0606, "_xmpp-server._tcp.b.test", 33),
                 cat({header(0x0606, 0, 1, 1), question("_xmpp-server._tcp.b.test", 33), srv_record(kLocalPort)}));
        r.expect(query(0x0607, "localhost", 28), cat({header(0x0607, 0, 1, 1), question("localhost", 28), aaaa_record()}));
    }
}

TEST_CASE("dns_responder: refuses to bind a non-loopback address") {
    TestLoop t;
    sockaddr_storage any{};
    REQUIRE(uv_ip4_addr("0.0.0.0", 0, reinterpret_cast<sockaddr_in*>(&any)) == 0);
    std::string error;
    CHECK_FALSE(DnsResponder::start(t.loop(), any, rules(), &error));
    CHECK(error.find("not a loopback address") != std::string::npos);
}

// ---- a real resolver library reads the answers ---------------------------------------------------

TEST_CASE("dns_responder: udns (DnsClient) agrees with the encoding") {
    TestLoop t;
    {
        Responder r(t, rules(true, false));
        DnsOptions o;
        o.nameservers = {"127.0.0.1:" + std::to_string(port_of(r.server->address()))};
        o.timeout_s = 2;
        o.retries = 1;
        std::string error;
        auto dns = DnsClient::create(t.loop(), o, &error);
        REQUIRE_MESSAGE(dns, error);
        auto ask = [&](DnsType type, const std::string& name) {
            bool done = false;
            DnsAnswer answer;
            dns->query(type, name, [&](const DnsAnswer& a) {
                answer = a;
                done = true;
            });
            REQUIRE(t.run_until([&] { return done; }, 5000));
            return answer;
        };

        DnsAnswer srv = ask(DnsType::SRV, "_xmpp-server._tcp.b.test");
        REQUIRE_MESSAGE(srv.status == DnsStatus::Ok, srv.error);
        REQUIRE(srv.srv.size() == 1);
        CHECK(srv.srv[0].priority == 0);
        CHECK(srv.srv[0].weight == 0);
        CHECK(srv.srv[0].port == kLocalPort);
        CHECK(srv.srv[0].target == "localhost");

        DnsAnswer a = ask(DnsType::A, "localhost");
        REQUIRE_MESSAGE(a.status == DnsStatus::Ok, a.error);
        REQUIRE(a.addresses.size() == 1);
        char ip[INET_ADDRSTRLEN] = "";
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a.addresses[0]).sin_addr, ip, sizeof ip);
        CHECK(std::string(ip) == "127.0.0.1");

        CHECK(ask(DnsType::AAAA, "localhost").status == DnsStatus::NoData);
        CHECK(ask(DnsType::SRV, "_xmpps-server._tcp.b.test").status == DnsStatus::NoData);
        CHECK(ask(DnsType::SRV, "_xmpp-server._tcp.c.test").status == DnsStatus::NoSuchDomain);
        CHECK(ask(DnsType::A, "b.test").status == DnsStatus::NoSuchDomain);
        dns.reset();
    }
}

// ---- the server starts it from the config and closes it on stop ----------------------------------

namespace {

int free_port(int type) {
    int fd = socket(AF_INET, type, 0);
    sockaddr_storage ss = loopback(0);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in)) == 0);
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    close(fd);
    return port_of(ss);
}

}  // namespace

TEST_CASE("dns_responder: Server::start runs it from local.dns_responder; Server::stop closes it") {
    const int s2s = free_port(SOCK_STREAM), local = free_port(SOCK_STREAM), udp = free_port(SOCK_DGRAM);
    auto toml = [&](const std::string& responder) {
        return "[general]\nhosts = [\"c.test\"]\n[local]\nserver = \"127.0.0.1:15269\"\ndns_responder = \"" + responder +
               "\"\n[[listen.s2s]]\nport = " + std::to_string(s2s) + "\nip_address = \"127.0.0.1\"\n[[listen.local]]\nport = " +
               std::to_string(local) + "\n[admin]\nenabled = false\n";
    };
    auto loaded = config::load("test.toml", toml("127.0.0.1:" + std::to_string(udp)), {});
    REQUIRE(loaded.ok());
    CHECK(loaded.config.local_dns_responder == "127.0.0.1:" + std::to_string(udp));
    TestLoop t;
    {
        Server server(t.loop(), loaded.config);
        std::string error;
        REQUIRE_MESSAGE(server.start(&error), error);
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_storage to = loopback(udp);
        REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(sockaddr_in)) == 0);
        Bytes q = query(0x5151, "_xmpp-server._tcp.b.test", 33);
        REQUIRE(send(fd, q.data(), q.size(), 0) == static_cast<ssize_t>(q.size()));
        Bytes got(512);
        ssize_t n = -1;
        CHECK(t.run_until([&] { return n >= 0 || (n = recv(fd, got.data(), got.size(), MSG_DONTWAIT)) >= 0; }));
        got.resize(n > 0 ? static_cast<size_t>(n) : 0);
        CHECK(got == cat({header(0x5151, 0, 1, 1), question("_xmpp-server._tcp.b.test", 33),
                          srv_record(static_cast<uint16_t>(local))}));
        // the own domain of this config
        q = query(0x5152, "_xmpp-server._tcp.c.test", 33);
        REQUIRE(send(fd, q.data(), q.size(), 0) == static_cast<ssize_t>(q.size()));
        got.assign(512, 0);
        n = -1;
        CHECK(t.run_until([&] { return n >= 0 || (n = recv(fd, got.data(), got.size(), MSG_DONTWAIT)) >= 0; }));
        got.resize(n > 0 ? static_cast<size_t>(n) : 0);
        CHECK(got == cat({header(0x5152, 3, 1, 0), question("_xmpp-server._tcp.c.test", 33)}));
        server.stop("test over");
        t.run_for(50);
        close(fd);
    }
    // the UDP port is free again: the socket was closed
    {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_storage ss = loopback(udp);
        CHECK(bind(fd, reinterpret_cast<sockaddr*>(&ss), sizeof(sockaddr_in)) == 0);
        close(fd);
    }
    // a non-loopback address stops the start with an error naming the key
    auto outside = config::load("test.toml", toml("0.0.0.0:" + std::to_string(udp)), {});
    REQUIRE(outside.ok());  // (the loopback rule is checked when the server starts)
    {
        Server server(t.loop(), outside.config);
        std::string error;
        CHECK_FALSE(server.start(&error));
        CHECK(error.rfind("local.dns_responder: \"0.0.0.0:", 0) == 0);
        server.stop("startup failed");
        t.run_for(50);
    }
}
