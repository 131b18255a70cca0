// DnsClient: udns on the libuv loop, against a real dnsmasq (and silent / failing nameservers) on
// loopback. Every test passes its nameservers explicitly: no query leaves the machine.
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/dns/dns.h"
#include "tests/unit/support/dnsmasq_fixture.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;
using s2s::test::Dnsmasq;
using s2s::test::FailingNameserver;
using s2s::test::SilentNameserver;
using s2s::test::TestLoop;

namespace {

using Clock = std::chrono::steady_clock;

DnsOptions options(std::vector<std::string> nameservers, int timeout = 2, int retries = 1) {
    DnsOptions o;
    o.nameservers = std::move(nameservers);
    o.timeout_s = timeout;
    o.retries = retries;
    return o;
}

std::unique_ptr<DnsClient> client(TestLoop& t, const DnsOptions& o) {
    std::string error;
    auto c = DnsClient::create(t.loop(), o, &error);
    REQUIRE_MESSAGE(c, error);
    return c;
}

struct Asked {
    bool done = false;
    int calls = 0;
    DnsAnswer answer;
};

DnsAnswer ask(TestLoop& t, DnsClient& c, DnsType type, const std::string& name, uint64_t max_ms = 5000) {
    Asked r;
    c.query(type, name, [&r](const DnsAnswer& a) {
        r.done = true;
        ++r.calls;
        r.answer = a;
    });
    REQUIRE(t.run_until([&] { return r.done; }, max_ms));
    CHECK(r.calls == 1);
    return r.answer;
}

std::string ip(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
    else inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
    return buf;
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

TEST_CASE("dns: nameserver addresses with and without ports") {
    sockaddr_storage sa{};
    std::string error;
    REQUIRE(parse_nameserver("127.0.0.53", &sa, &error));
    CHECK(sa.ss_family == AF_INET);
    CHECK(ntohs(reinterpret_cast<sockaddr_in&>(sa).sin_port) == 0);  // udns's default, 53
    REQUIRE(parse_nameserver("127.0.0.53:5353", &sa, &error));
    CHECK(ntohs(reinterpret_cast<sockaddr_in&>(sa).sin_port) == 5353);
    REQUIRE(parse_nameserver("::1", &sa, &error));
    CHECK(sa.ss_family == AF_INET6);
    REQUIRE(parse_nameserver("[::1]:5300", &sa, &error));
    CHECK(sa.ss_family == AF_INET6);
    CHECK(ntohs(reinterpret_cast<sockaddr_in6&>(sa).sin6_port) == 5300);
    REQUIRE(parse_nameserver("[::1]", &sa, &error));

    for (const char* bad : {"", "localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:53x",
                            "[::1", "[::1]5300", "[127.0.0.1]:53", "1.2.3"}) {
        CAPTURE(bad);
        error.clear();
        CHECK_FALSE(parse_nameserver(bad, &sa, &error));
        CHECK(error.find("nameserver \"" + std::string(bad) + "\"") == 0);
    }
}

TEST_CASE("dns: unusable options are refused with a sentence naming the option") {
    TestLoop t;
    std::string error;
    CHECK_FALSE(DnsClient::create(t.loop(), options({"127.0.0.53"}, 0, 1), &error));
    CHECK(error.find("s2s.outgoing.dns.timeout") != std::string::npos);
    CHECK_FALSE(DnsClient::create(t.loop(), options({"127.0.0.53"}, 1, 0), &error));
    CHECK(error.find("s2s.outgoing.dns.retries") != std::string::npos);
    CHECK_FALSE(DnsClient::create(t.loop(), options({"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
                                                     "127.0.0.6", "127.0.0.7"}),
                                  &error));
    CHECK(error.find("at most 6") != std::string::npos);
    CHECK_FALSE(DnsClient::create(t.loop(), options({"127.0.0.1", "dns.example"}), &error));
    CHECK(error.find("\"dns.example\"") != std::string::npos);

    // No list: the system's resolv.conf (no query is sent here).
    auto system = DnsClient::create(t.loop(), options({}), &error);
    REQUIRE(system);
    CHECK(system->servers().find("resolv.conf") != std::string::npos);
}

TEST_CASE("dns: SRV, A and AAAA answers from a real nameserver") {
    Dnsmasq dns({"srv-host=_xmpp-server._tcp.b.test,host.b.test,5269,10,30",
                 "srv-host=_xmpp-server._tcp.b.test,backup.b.test,5270,20,0",
                 "srv-host=_xmpps-server._tcp.b.test",
                 "host-record=host.b.test,127.0.0.3",
                 "host-record=both.b.test,127.0.0.5,::1"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    auto c = client(t, options({dns.nameserver()}));

    DnsAnswer srv = ask(t, *c, DnsType::SRV, "_xmpp-server._tcp.b.test");
    REQUIRE(srv.status == DnsStatus::Ok);
    REQUIRE(srv.srv.size() == 2);
    const SrvRecord& first = srv.srv[0].target == "host.b.test" ? srv.srv[0] : srv.srv[1];
    CHECK(first.priority == 10);
    CHECK(first.weight == 30);
    CHECK(first.port == 5269);
    CHECK(srv.error.empty());
    CHECK(srv.tries == 1);

    DnsAnswer dot = ask(t, *c, DnsType::SRV, "_xmpps-server._tcp.b.test");
    REQUIRE(dot.status == DnsStatus::Ok);
    REQUIRE(dot.srv.size() == 1);
    CHECK(dot.srv[0].target == ".");

    DnsAnswer a = ask(t, *c, DnsType::A, "host.b.test");
    REQUIRE(a.status == DnsStatus::Ok);
    REQUIRE(a.addresses.size() == 1);
    CHECK(ip(a.addresses[0]) == "127.0.0.3");

    DnsAnswer aaaa = ask(t, *c, DnsType::AAAA, "both.b.test");
    REQUIRE(aaaa.status == DnsStatus::Ok);
    REQUIRE(aaaa.addresses.size() == 1);
    CHECK(ip(aaaa.addresses[0]) == "::1");

    DnsAnswer nodata = ask(t, *c, DnsType::AAAA, "host.b.test");
    CHECK(nodata.status == DnsStatus::NoData);
    CHECK(nodata.error == "host.b.test has no AAAA record");

    DnsAnswer nx = ask(t, *c, DnsType::A, "nowhere.test");
    CHECK(nx.status == DnsStatus::NoSuchDomain);
    CHECK(nx.error.find("no such domain: nowhere.test") == 0);
    CHECK(c->pending() == 0);
}

TEST_CASE("dns: the callback runs later on the loop, never inside query()") {
    Dnsmasq dns({"host-record=host.b.test,127.0.0.3"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    auto c = client(t, options({dns.nameserver()}));

    int good = 0, bad = 0, empty = 0;
    DnsAnswer bad_answer;
    c->query(DnsType::A, "host.b.test", [&](const DnsAnswer&) { ++good; });
    c->query(DnsType::A, std::string(70, 'x') + ".test", [&](const DnsAnswer& a) {
        ++bad;
        bad_answer = a;
    });
    c->query(DnsType::A, "", [&](const DnsAnswer&) { ++empty; });
    CHECK(good + bad + empty == 0);
    REQUIRE(t.run_until([&] { return good && bad && empty; }));
    CHECK(bad_answer.status == DnsStatus::BadName);
    CHECK(bad_answer.error.find("not a valid domain name") != std::string::npos);
    t.run_for(50);
    CHECK(good == 1);
    CHECK(bad == 1);
    CHECK(empty == 1);
}

TEST_CASE("dns: each nameserver has its own port; a silent one is skipped") {
    Dnsmasq dns({"host-record=host.b.test,127.0.0.3"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    SilentNameserver silent;
    REQUIRE(silent.ok());
    REQUIRE(silent.port() != dns.port());
    TestLoop t;
    // udns asks the first server, waits a second, then asks the next one.
    auto c = client(t, options({silent.nameserver(), dns.nameserver()}, 3, 1));
    auto start = Clock::now();
    DnsAnswer a = ask(t, *c, DnsType::A, "host.b.test");
    REQUIRE(a.status == DnsStatus::Ok);
    CHECK(ip(a.addresses[0]) == "127.0.0.3");
    CHECK(seconds_since(start) < 2.5);
}

TEST_CASE("dns: a nameserver that never answers: timeout after retries tries, within timeout x retries") {
    SilentNameserver silent;
    REQUIRE(silent.ok());
    TestLoop t;
    auto c = client(t, options({silent.nameserver()}, 1, 2));
    auto start = Clock::now();
    DnsAnswer a = ask(t, *c, DnsType::SRV, "_xmpp-server._tcp.slow.test", 6000);
    double took = seconds_since(start);
    CHECK(a.status == DnsStatus::Timeout);
    CHECK(a.tries == 2);
    CHECK(a.error.find("DNS timeout for _xmpp-server._tcp.slow.test after 2 tries") == 0);
    CHECK(a.error.find(silent.nameserver()) != std::string::npos);
    CHECK(took > 1.8);
    CHECK(took < 2.7);
    CHECK(c->pending() == 0);
}

TEST_CASE("dns: SERVFAIL is a server failure, told apart from a timeout") {
    FailingNameserver failing(2);
    REQUIRE(failing.ok());
    TestLoop t;
    auto c = client(t, options({failing.nameserver()}, 2, 2));
    auto start = Clock::now();
    DnsAnswer a = ask(t, *c, DnsType::A, "host.b.test");
    CHECK(a.status == DnsStatus::ServerFailure);
    CHECK(a.error.find("DNS failure for host.b.test (A): " + failing.nameserver() + " answered SERVFAIL") == 0);
    CHECK(seconds_since(start) < 1.0);  // no waiting for a timeout
    CHECK(failing.answered() >= 1);
}

TEST_CASE("dns: a cancelled query never calls back") {
    SilentNameserver silent;  // dnsmasq forwards *.slow.test there: those queries hang
    REQUIRE(silent.ok());
    Dnsmasq dns({"host-record=host.b.test,127.0.0.3", "host-record=other.b.test,127.0.0.4",
                 "server=/slow.test/127.0.0.54#" + std::to_string(silent.port())});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    auto c = client(t, options({dns.nameserver()}));

    SUBCASE("cancelled before the answer") {
        int calls = 0;
        auto token = c->query(DnsType::A, "host.b.test", [&](const DnsAnswer&) { ++calls; });
        c->cancel(token);
        c->cancel(token);  // twice is harmless
        CHECK(c->pending() == 0);
        bool control = false;
        c->query(DnsType::A, "other.b.test", [&](const DnsAnswer&) { control = true; });
        REQUIRE(t.run_until([&] { return control; }));
        t.run_for(100);
        CHECK(calls == 0);
    }
    SUBCASE("cancelled by another query's callback") {
        int first = 0, second = 0;
        DnsClient::Token other = 0;
        c->query(DnsType::A, "host.b.test", [&](const DnsAnswer&) {
            ++first;
            c->cancel(other);
        });
        other = c->query(DnsType::A, "x.slow.test", [&](const DnsAnswer&) { ++second; });
        REQUIRE(t.run_until([&] { return first == 1; }));
        t.run_for(100);
        CHECK(second == 0);
        CHECK(c->pending() == 0);
    }
    SUBCASE("a query started from a callback") {
        bool inner = false;
        c->query(DnsType::A, "host.b.test", [&](const DnsAnswer&) {
            c->query(DnsType::A, "other.b.test", [&](const DnsAnswer& a) { inner = a.status == DnsStatus::Ok; });
        });
        CHECK(t.run_until([&] { return inner; }));
    }
}

TEST_CASE("dns: destroying the client with queries in flight closes everything cleanly") {
    SilentNameserver silent;
    REQUIRE(silent.ok());
    TestLoop t;  // its destructor checks that no handle is left on the loop
    int calls = 0;

    SUBCASE("from outside") {
        auto c = client(t, options({silent.nameserver()}, 1, 2));
        for (int i = 0; i < 5; ++i) c->query(DnsType::SRV, "_xmpp-server._tcp.slow.test", [&](const DnsAnswer&) { ++calls; });
        t.run_for(50);  // the queries are on the wire
        c.reset();
        t.run_for(100);
    }
    SUBCASE("from inside one of its callbacks") {
        Dnsmasq dns({"host-record=host.b.test,127.0.0.3", "server=/slow.test/127.0.0.54#" + std::to_string(silent.port())});
        REQUIRE_MESSAGE(dns.running(), dns.error());
        // A second client keeps a query in flight on the silent server meanwhile.
        auto c = client(t, options({dns.nameserver()}, 1, 2));
        auto slow = client(t, options({silent.nameserver()}, 1, 2));
        bool freed = false;
        c->query(DnsType::A, "host.b.test", [&](const DnsAnswer&) {
            c.reset();
            freed = true;
        });
        c->query(DnsType::A, "x.slow.test", [&](const DnsAnswer&) { ++calls; });
        slow->query(DnsType::A, "host.b.test", [&](const DnsAnswer&) { ++calls; });
        REQUIRE(t.run_until([&] { return freed; }));
        slow.reset();
        t.run_for(100);
    }
    CHECK(calls == 0);
}

TEST_CASE("dns: TLSA records with DNSSEC asked for; a resolver that does not validate sets no AD") {
    // 3 1 1 <32 bytes>, 2 0 2 <64 bytes>, and a record too short to be TLSA elsewhere.
    std::string sha256(64, 'a'), sha512(128, 'b');
    Dnsmasq dns({"dns-rr=_5269._tcp.host.b.test,52,030101" + sha256,
                 "dns-rr=_5269._tcp.host.b.test,52,020002" + sha512, "dns-rr=_5269._tcp.short.b.test,52,0301",
                 "host-record=host.b.test,127.0.0.3"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    DnsOptions o = options({dns.nameserver()});
    o.dnssec = true;
    auto c = client(t, o);

    DnsAnswer a = ask(t, *c, DnsType::TLSA, "_5269._tcp.host.b.test");
    REQUIRE(a.status == DnsStatus::Ok);
    REQUIRE(a.tlsa.size() == 2);
    auto& ee = a.tlsa[0].usage == 3 ? a.tlsa[0] : a.tlsa[1];
    auto& ta = a.tlsa[0].usage == 3 ? a.tlsa[1] : a.tlsa[0];
    CHECK(ee.selector == 1);
    CHECK(ee.matching == 1);
    CHECK(ee.data == std::string(32, '\xaa'));
    CHECK(ta.usage == 2);
    CHECK(ta.selector == 0);
    CHECK(ta.matching == 2);
    CHECK(ta.data == std::string(64, '\xbb'));
    CHECK_FALSE(a.authenticated);  // dnsmasq does not validate its own data

    CHECK(ask(t, *c, DnsType::TLSA, "_5269._tcp.short.b.test").status == DnsStatus::ServerFailure);
    CHECK(ask(t, *c, DnsType::TLSA, "_5269._tcp.none.b.test").status == DnsStatus::NoSuchDomain);
    DnsAnswer nodata = ask(t, *c, DnsType::TLSA, "host.b.test");
    CHECK(nodata.status == DnsStatus::NoData);
    CHECK(nodata.error == "host.b.test has no TLSA record");
    // The DO bit changes nothing for the other types.
    DnsAnswer addr = ask(t, *c, DnsType::A, "host.b.test");
    REQUIRE(addr.status == DnsStatus::Ok);
    CHECK(ip(addr.addresses.at(0)) == "127.0.0.3");
}
