// DnsResolver: overrides, SRV (_xmpps-server + _xmpp-server), RFC 2782 order, A/AAAA by
// ip_versions, fallback and failures, against a real dnsmasq on loopback (explicit nameservers:
// no query leaves the machine).
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "proxy/resolve/dns_resolver.h"
#include "tests/unit/support/dnsmasq_fixture.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;
using s2s::test::Dnsmasq;
using s2s::test::FailingNameserver;
using s2s::test::SilentNameserver;
using s2s::test::TestLoop;

namespace {

using Clock = std::chrono::steady_clock;

Config config_for(const std::string& nameserver, std::vector<int> ip_versions = {4, 6}) {
    Config c;
    c.outgoing.dns_nameservers = {nameserver};
    c.outgoing.dns_timeout = 2;
    c.outgoing.dns_retries = 1;
    c.outgoing.port = 5299;
    c.outgoing.ip_versions = std::move(ip_versions);
    return c;
}

std::unique_ptr<DnsResolver> resolver(TestLoop& t, const Config& config, DnsResolver::Random random = {}) {
    std::string error;
    DnsOptions o = dns_options(config.outgoing);
    auto dns = DnsClient::create(t.loop(), o, &error);
    REQUIRE_MESSAGE(dns, error);
    return std::make_unique<DnsResolver>(t.loop(), config, std::move(dns), std::move(random));
}

struct Outcome {
    int calls = 0;
    std::vector<Candidate> candidates;
    std::string error;
    // "host (ip port N[, direct TLS])" per candidate
    [[nodiscard]] std::vector<std::string> list() const {
        std::vector<std::string> out;
        for (auto& c : candidates) out.push_back(c.describe());
        return out;
    }
};

Outcome resolve(TestLoop& t, Resolver& r, const std::string& domain, uint64_t max_ms = 5000) {
    Outcome o;
    r.resolve(domain, [&o](std::vector<Candidate> c, const std::string& error) {
        ++o.calls;
        o.candidates = std::move(c);
        o.error = error;
    });
    CHECK(o.calls == 0);  // never inside resolve()
    REQUIRE(t.run_until([&] { return o.calls > 0; }, max_ms));
    CHECK(o.calls == 1);
    return o;
}

using V = std::vector<std::string>;

SrvTarget srv(int priority, int weight, const std::string& target) { return {priority, weight, 5269, target, false}; }

std::vector<std::string> targets(const std::vector<SrvTarget>& v) {
    std::vector<std::string> out;
    for (auto& t : v) out.push_back(t.target);
    return out;
}

}  // namespace

TEST_CASE("dns_resolver: RFC 2782 order with a scripted random source") {
    std::vector<uint32_t> asked;  // the sums the algorithm draws in
    std::vector<uint32_t> script;
    DnsResolver::Random random = [&](uint32_t max) {
        asked.push_back(max);
        uint32_t v = script.empty() ? 0 : script.front();
        if (!script.empty()) script.erase(script.begin());
        return std::min(v, max);
    };

    // Priorities ascend, whatever the order of the answer.
    CHECK(targets(DnsResolver::order({srv(30, 0, "c"), srv(10, 0, "a"), srv(20, 0, "b")}, random)) == V{"a", "b", "c"});

    // Weight-0 records go first in the running sum: a draw of 0 picks one of them.
    asked.clear();
    script = {0, 5, 0};
    CHECK(targets(DnsResolver::order({srv(10, 10, "light"), srv(10, 90, "heavy"), srv(10, 0, "zero")}, random)) ==
          V{"zero", "light", "heavy"});
    CHECK(asked == std::vector<uint32_t>{100, 100, 90});

    // The first record whose running sum reaches the draw: 10 < 50 <= 100 picks "heavy".
    script = {50, 0};
    CHECK(targets(DnsResolver::order({srv(10, 10, "light"), srv(10, 90, "heavy")}, random)) == V{"heavy", "light"});
    script = {10, 0};
    CHECK(targets(DnsResolver::order({srv(10, 10, "light"), srv(10, 90, "heavy")}, random)) == V{"light", "heavy"});
    script = {11, 0};
    CHECK(targets(DnsResolver::order({srv(10, 10, "light"), srv(10, 90, "heavy")}, random)) == V{"heavy", "light"});

    // Each priority is ordered on its own.
    script = {100, 0, 0};
    CHECK(targets(DnsResolver::order({srv(20, 1, "late"), srv(10, 50, "x"), srv(10, 50, "y")}, random)) ==
          V{"y", "x", "late"});
}

TEST_CASE("dns_resolver: SRV priority order") {
    Dnsmasq dns({"srv-host=_xmpp-server._tcp.p.test,c.p.test,5003,30,0",
                 "srv-host=_xmpp-server._tcp.p.test,a.p.test,5001,10,0",
                 "srv-host=_xmpp-server._tcp.p.test,b.p.test,5002,20,0",
                 "host-record=a.p.test,127.0.0.11", "host-record=b.p.test,127.0.0.12",
                 "host-record=c.p.test,127.0.0.13"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    Config config = config_for(dns.nameserver());
    auto r = resolver(t, config);
    Outcome o = resolve(t, *r, "p.test");
    CHECK(o.error == "");
    CHECK(o.list() == V{"a.p.test (127.0.0.11 port 5001)", "b.p.test (127.0.0.12 port 5002)",
                        "c.p.test (127.0.0.13 port 5003)"});
    CHECK(r->pending() == 0);
}

TEST_CASE("dns_resolver: SRV weights 90/10 over 400 resolutions") {
    Dnsmasq dns({"srv-host=_xmpp-server._tcp.w.test,light.w.test,5010,10,10",
                 "srv-host=_xmpp-server._tcp.w.test,heavy.w.test,5090,10,90",
                 "host-record=light.w.test,127.0.0.10", "host-record=heavy.w.test,127.0.0.90"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    Config config = config_for(dns.nameserver(), {4});
    auto r = resolver(t, config);  // the real random source
    int heavy_first = 0, runs = 0;
    for (int i = 0; i < 400; ++i) {
        Outcome o = resolve(t, *r, "w.test");
        REQUIRE(o.candidates.size() == 2);
        heavy_first += o.candidates[0].host == "heavy.w.test";
        ++runs;
    }
    // Expected 90% (RFC 2782 draws in [0, 100]: 91/101 or 90/101 by answer order); sd ~ 6 runs.
    CAPTURE(heavy_first);
    CHECK(heavy_first >= 320);  // 80 %
    CHECK(heavy_first <= 388);  // 97 %: neither "always heavy" nor the listed order
}

TEST_CASE("dns_resolver: the \".\" target means no service, and there is no A/AAAA fallback") {
    Dnsmasq dns({"srv-host=_xmpp-server._tcp.dot.test", "host-record=dot.test,127.0.0.9",
                 "srv-host=_xmpps-server._tcp.both.test", "srv-host=_xmpp-server._tcp.both.test",
                 "host-record=both.test,127.0.0.9",
                 // "." for direct TLS only: the STARTTLS records are used
                 "srv-host=_xmpps-server._tcp.starttls.test", "srv-host=_xmpp-server._tcp.starttls.test,x.starttls.test,5269,0,0",
                 "host-record=x.starttls.test,127.0.0.8",
                 // "." for direct TLS and nothing else: no fallback either (XEP-0368)
                 "srv-host=_xmpps-server._tcp.tlsdot.test", "host-record=tlsdot.test,127.0.0.9"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    Config config = config_for(dns.nameserver());
    auto r = resolver(t, config);

    Outcome o = resolve(t, *r, "dot.test");
    CHECK(o.candidates.empty());
    CHECK(o.error ==
          "dot.test does not accept XMPP server-to-server connections: its _xmpp-server._tcp SRV record has the target \".\"");

    o = resolve(t, *r, "both.test");
    CHECK(o.candidates.empty());
    CHECK(o.error.find("both.test does not accept XMPP server-to-server connections") == 0);

    o = resolve(t, *r, "starttls.test");
    CHECK(o.error == "");
    CHECK(o.list() == V{"x.starttls.test (127.0.0.8 port 5269)"});

    o = resolve(t, *r, "tlsdot.test");
    CHECK(o.candidates.empty());
    CHECK(o.error.find("tlsdot.test does not accept XMPP server-to-server connections") == 0);
}

// Found by fuzz_dns_answers (corpus entry tests/fuzz/corpus/dns_answers/srv_port_zero): an SRV
// record with port 0 became a candidate on port 0.
TEST_CASE("dns_resolver: an SRV record with port 0 is never a candidate, and port 0 alone is no service") {
    Dnsmasq dns({"srv-host=_xmpp-server._tcp.mixed.test,x.mixed.test,0,0,0",
                 "srv-host=_xmpp-server._tcp.mixed.test,y.mixed.test,5270,10,0",
                 "host-record=x.mixed.test,127.0.0.8", "host-record=y.mixed.test,127.0.0.9",
                 "srv-host=_xmpp-server._tcp.zero.test,x.zero.test,0,0,0", "host-record=x.zero.test,127.0.0.8",
                 "host-record=zero.test,127.0.0.7"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    Config config = config_for(dns.nameserver(), {4});
    auto r = resolver(t, config);

    Outcome o = resolve(t, *r, "mixed.test");
    CHECK(o.error == "");
    CHECK(o.list() == V{"y.mixed.test (127.0.0.9 port 5270)"});

    o = resolve(t, *r, "zero.test");  // no fallback to zero.test's own address either
    CHECK(o.candidates.empty());
    CHECK(o.error ==
          "zero.test has no reachable XMPP server: its SRV records name port 0, where nothing can be reached");
}

TEST_CASE("dns_resolver: no SRV record: the domain's own addresses on s2s.outgoing.port") {
    Dnsmasq dns({"host-record=plain.test,127.0.0.9,::1", "host-record=v4only.test,127.0.0.7",
                 "host-record=_xmpp-server._tcp.empty.test,127.0.0.6"});  // the name exists, no SRV
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    Config config = config_for(dns.nameserver());
    auto r = resolver(t, config);

    Outcome o = resolve(t, *r, "plain.test");
    CHECK(o.error == "");
    CHECK(o.list() == V{"plain.test (127.0.0.9 port 5299)", "plain.test (::1 port 5299)"});

    o = resolve(t, *r, "v4only.test");
    CHECK(o.list() == V{"v4only.test (127.0.0.7 port 5299)"});

    o = resolve(t, *r, "empty.test");  // SRV: no data; empty.test exists (a name under it) but has no address
    CHECK(o.candidates.empty());
    CHECK(o.error ==
          "empty.test has no XMPP server: no _xmpp-server._tcp or _xmpps-server._tcp SRV record and no A (IPv4) or "
          "AAAA (IPv6) record");
}

TEST_CASE("dns_resolver: a domain that does not exist") {
    Dnsmasq dns({"host-record=other.test,127.0.0.9"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    Config config = config_for(dns.nameserver());
    auto r = resolver(t, config);
    Outcome o = resolve(t, *r, "nowhere.test");
    CHECK(o.candidates.empty());
    CHECK(o.error == "no such domain: nowhere.test does not exist in DNS (NXDOMAIN)");
}

TEST_CASE("dns_resolver: _xmpps-server records merge by priority, with direct TLS") {
    Dnsmasq dns({"srv-host=_xmpps-server._tcp.m.test,tls.m.test,5270,5,0",
                 "srv-host=_xmpp-server._tcp.m.test,plain.m.test,5269,10,0",
                 "srv-host=_xmpps-server._tcp.m.test,tls2.m.test,5271,20,0",
                 "host-record=tls.m.test,127.0.0.21", "host-record=plain.m.test,127.0.0.22",
                 "host-record=tls2.m.test,127.0.0.23"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    Config config = config_for(dns.nameserver());
    auto r = resolver(t, config);
    Outcome o = resolve(t, *r, "m.test");
    CHECK(o.error == "");
    CHECK(o.list() == V{"tls.m.test (127.0.0.21 port 5270, direct TLS)", "plain.m.test (127.0.0.22 port 5269)",
                        "tls2.m.test (127.0.0.23 port 5271, direct TLS)"});
    REQUIRE(o.candidates.size() == 3);
    CHECK(o.candidates[0].direct_tls);
    CHECK_FALSE(o.candidates[1].direct_tls);
}

TEST_CASE("dns_resolver: s2s.outgoing.address beats DNS") {
    Dnsmasq dns({"srv-host=_xmpp-server._tcp.b.test,host.b.test,5269,10,0", "host-record=host.b.test,127.0.0.3"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    Config config = config_for(dns.nameserver());
    config.outgoing.address.push_back({"b.test", "127.0.0.77", 5999});
    auto r = resolver(t, config);
    Outcome o = resolve(t, *r, "b.test");
    CHECK(o.error == "");
    CHECK(o.list() == V{"b.test (127.0.0.77 port 5999)"});
    REQUIRE(o.candidates.size() == 1);
    CHECK(o.candidates[0].configured);  // the operator's word: not checked against denied_networks

    // An IP-literal domain needs no DNS either; it is peer input, checked like a DNS answer.
    o = resolve(t, *r, "127.0.0.66");
    CHECK(o.list() == V{"127.0.0.66 (127.0.0.66 port 5299)"});
    REQUIRE(o.candidates.size() == 1);
    CHECK_FALSE(o.candidates[0].configured);

    config.outgoing.address.clear();
    o = resolve(t, *r, "b.test");
    CHECK(o.list() == V{"host.b.test (127.0.0.3 port 5269)"});
    REQUIRE(o.candidates.size() == 1);
    CHECK_FALSE(o.candidates[0].configured);
}

TEST_CASE("dns_resolver: addresses in s2s.outgoing.ip_versions order, only the listed families") {
    Dnsmasq dns({"srv-host=_xmpp-server._tcp.v.test,dual.v.test,5269,10,0",
                 "srv-host=_xmpp-server._tcp.v.test,v4.v.test,5270,20,0", "host-record=dual.v.test,127.0.0.5,::1",
                 "host-record=v4.v.test,127.0.0.6", "srv-host=_xmpp-server._tcp.f.test,v4.f.test,5269,10,0",
                 "host-record=v4.f.test,127.0.0.6"});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    struct Case {
        std::vector<int> versions;
        V expected;
    };
    std::vector<Case> cases = {
        {{4, 6}, {"dual.v.test (127.0.0.5 port 5269)", "dual.v.test (::1 port 5269)", "v4.v.test (127.0.0.6 port 5270)"}},
        {{6, 4}, {"dual.v.test (::1 port 5269)", "dual.v.test (127.0.0.5 port 5269)", "v4.v.test (127.0.0.6 port 5270)"}},
        {{6}, {"dual.v.test (::1 port 5269)"}},
        {{4}, {"dual.v.test (127.0.0.5 port 5269)", "v4.v.test (127.0.0.6 port 5270)"}},
    };
    for (auto& c : cases) {
        CAPTURE(c.versions.size());
        CAPTURE(c.versions.front());
        Config config = config_for(dns.nameserver(), c.versions);
        auto r = resolver(t, config);
        Outcome o = resolve(t, *r, "v.test");
        CHECK(o.list() == c.expected);
    }

    // Nothing left in the listed families: the error says which records were missing.
    Config config = config_for(dns.nameserver(), {6});
    auto r = resolver(t, config);
    Outcome o = resolve(t, *r, "f.test");
    CHECK(o.candidates.empty());
    CHECK(o.error == "no address for the XMPP servers of f.test (v4.f.test: no AAAA (IPv6) record)");
}

TEST_CASE("dns_resolver: a nameserver that never answers: DNS timeout after retries tries") {
    SilentNameserver silent;
    REQUIRE(silent.ok());
    TestLoop t;
    Config config = config_for(silent.nameserver());
    config.outgoing.dns_timeout = 1;
    config.outgoing.dns_retries = 2;
    auto r = resolver(t, config);
    auto start = Clock::now();
    Outcome o = resolve(t, *r, "slow.test", 6000);
    double took = std::chrono::duration<double>(Clock::now() - start).count();
    CHECK(o.candidates.empty());
    CHECK(o.error.find("DNS timeout for _xmpp-server._tcp.slow.test after 2 tries") == 0);
    CHECK(took > 1.8);
    CHECK(took < 2.7);
    CHECK(r->pending() == 0);
}

TEST_CASE("dns_resolver: a nameserver failure is named in the error") {
    FailingNameserver failing(2);
    REQUIRE(failing.ok());
    TestLoop t;
    Config config = config_for(failing.nameserver());
    auto r = resolver(t, config);
    Outcome o = resolve(t, *r, "broken.test");
    CHECK(o.candidates.empty());
    CHECK(o.error.find("DNS failure for _xmpp-server._tcp.broken.test: " + failing.nameserver() + " answered SERVFAIL") ==
          0);
}

TEST_CASE("dns_resolver: cancelled resolutions never call back") {
    SilentNameserver silent;  // dnsmasq forwards *.slow.test there: those resolutions hang
    REQUIRE(silent.ok());
    Dnsmasq dns({"srv-host=_xmpp-server._tcp.b.test,host.b.test,5269,10,0", "host-record=host.b.test,127.0.0.3",
                 "server=/slow.test/127.0.0.54#" + std::to_string(silent.port())});
    REQUIRE_MESSAGE(dns.running(), dns.error());
    TestLoop t;
    Config config = config_for(dns.nameserver());
    config.outgoing.address.push_back({"over.test", "127.0.0.77", 5999});
    auto r = resolver(t, config);
    int calls = 0;
    uint64_t a = r->resolve("b.test", [&](std::vector<Candidate>, const std::string&) { ++calls; });
    uint64_t b = r->resolve("over.test", [&](std::vector<Candidate>, const std::string&) { ++calls; });  // deferred
    r->cancel(a);
    r->cancel(b);
    r->cancel(12345);  // unknown: harmless
    CHECK(r->pending() == 0);
    Outcome control = resolve(t, *r, "b.test");
    CHECK(control.list() == V{"host.b.test (127.0.0.3 port 5269)"});

    // Cancelled from another resolution's callback.
    uint64_t later = 0;
    bool first = false;
    r->resolve("b.test", [&](std::vector<Candidate>, const std::string&) {
        first = true;
        r->cancel(later);
    });
    later = r->resolve("x.slow.test", [&](std::vector<Candidate>, const std::string&) { ++calls; });
    REQUIRE(t.run_until([&] { return first; }));
    t.run_for(200);
    CHECK(calls == 0);
    CHECK(r->pending() == 0);
}

TEST_CASE("dns_resolver: destroying the resolver with resolutions in flight shuts down cleanly") {
    SilentNameserver silent;
    REQUIRE(silent.ok());
    TestLoop t;  // its destructor checks that no handle is left on the loop
    int calls = 0;

    SUBCASE("from outside") {
        Config config = config_for(silent.nameserver());
        auto r = resolver(t, config);
        for (const char* d : {"a.test", "b.test", "c.test"})
            r->resolve(d, [&](std::vector<Candidate>, const std::string&) { ++calls; });
        t.run_for(50);  // the queries are on the wire
        r->resolve("127.0.0.1", [&](std::vector<Candidate>, const std::string&) { ++calls; });  // a deferred answer
        r.reset();
        t.run_for(100);
    }
    SUBCASE("from inside a callback") {
        Dnsmasq dns({"host-record=fast.test,127.0.0.9", "server=/slow.test/127.0.0.54#" + std::to_string(silent.port())});
        REQUIRE_MESSAGE(dns.running(), dns.error());
        Config config = config_for(dns.nameserver());
        auto r = resolver(t, config);
        bool freed = false;
        r->resolve("fast.test", [&](std::vector<Candidate> c, const std::string&) {
            CHECK(c.size() == 1);
            r.reset();
            freed = true;
        });
        r->resolve("x.slow.test", [&](std::vector<Candidate>, const std::string&) { ++calls; });
        REQUIRE(t.run_until([&] { return freed; }));
        t.run_for(100);
    }
    CHECK(calls == 0);
}
