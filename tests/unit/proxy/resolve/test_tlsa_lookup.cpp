// DANE's DNS side (proxy/resolve/tlsa_lookup): what a TLSA answer means, and what it makes of
// the resolver's candidates (left out when bogus, counted and logged once per server).
#include "proxy/resolve/tlsa_lookup.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>

#include "proxy/ops/metrics.h"
#include "tests/unit/support/test_support.h"

using namespace s2s;
using Kind = TlsaVerdict::Kind;

namespace {

DnsAnswer answer(DnsStatus status, bool ad, std::vector<tls::TlsaRecord> records = {}) {
    DnsAnswer a;
    a.type = DnsType::TLSA;
    a.status = status;
    a.authenticated = ad;
    a.tlsa = std::move(records);
    a.error = status == DnsStatus::ServerFailure ? "DNS failure for _5269._tcp.x.test (TLSA): SERVFAIL" : "";
    return a;
}

Candidate candidate(const std::string& host, const char* ip, int port) {
    Candidate c;
    auto* sin = reinterpret_cast<sockaddr_in*>(&c.addr);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, ip, &sin->sin_addr);
    c.host = host;
    return c;
}

const tls::TlsaRecord kEe{3, 1, 1, std::string(32, 'x')};
const tls::TlsaRecord kPkix{1, 1, 1, std::string(32, 'x')};

}  // namespace

TEST_CASE("tlsa lookup: names and the meaning of each answer") {
    CHECK(tlsa_name("xmpp.b.test", 5269) == "_5269._tcp.xmpp.b.test");
    CHECK(tlsa_name(candidate("h.b.test", "127.0.0.3", 5270)) == "_5270._tcp.h.b.test");

    TlsaVerdict usable = judge_tlsa(answer(DnsStatus::Ok, true, {kPkix, kEe}));
    CHECK(usable.kind == Kind::Usable);
    REQUIRE(usable.usable.size() == 1);
    CHECK(usable.usable[0].usage == 3);
    CHECK(judge_tlsa(answer(DnsStatus::Ok, false, {kEe})).kind == Kind::Insecure);
    CHECK(judge_tlsa(answer(DnsStatus::Ok, true, {kPkix})).kind == Kind::NoRecords);
    CHECK(judge_tlsa(answer(DnsStatus::NoData, true)).kind == Kind::NoRecords);
    CHECK(judge_tlsa(answer(DnsStatus::NoSuchDomain, true)).kind == Kind::NoRecords);
    CHECK(judge_tlsa(answer(DnsStatus::NoSuchDomain, false)).kind == Kind::Insecure);
    for (DnsStatus s : {DnsStatus::ServerFailure, DnsStatus::Timeout, DnsStatus::Error}) {
        TlsaVerdict v = judge_tlsa(answer(s, false));
        CHECK(v.kind == Kind::Bogus);
        CHECK(v.why.find("TLSA lookup failed") == 0);
    }
}

TEST_CASE("tlsa lookup: candidates get their server's state; a bogus server is not dialled") {
    s2s::test::LogCapture log;
    uint64_t bogus_before = metrics().dane.get("bogus"), none_before = metrics().dane.get("none"),
             insecure_before = metrics().dane.get("insecure");
    std::map<std::string, TlsaVerdict> verdicts;
    verdicts["_5269._tcp.good.b.test"] = judge_tlsa(answer(DnsStatus::Ok, true, {kEe}));
    verdicts["_5269._tcp.bad.b.test"] = judge_tlsa(answer(DnsStatus::ServerFailure, false));
    verdicts["_5269._tcp.plain.b.test"] = judge_tlsa(answer(DnsStatus::NoData, true));
    std::vector<Candidate> in = {candidate("good.b.test", "127.0.0.3", 5269), candidate("good.b.test", "127.0.0.4", 5269),
                                 candidate("bad.b.test", "127.0.0.5", 5269), candidate("plain.b.test", "127.0.0.6", 5269),
                                 candidate("unsigned.b.test", "127.0.0.7", 5269)};
    std::string error;
    std::vector<Candidate> out = apply_tlsa(in, verdicts, LogContext{std::nullopt, {}, "b.test"}, &error);
    CHECK(error.empty());
    REQUIRE(out.size() == 4);
    CHECK(out[0].dane == DaneState::Usable);
    REQUIRE(static_cast<bool>(out[0].tlsa));
    CHECK(out[0].tlsa.get() == out[1].tlsa.get());  // one copy per server
    CHECK(out[2].host == "plain.b.test");
    CHECK(out[2].dane == DaneState::NoRecords);
    CHECK(out[3].dane == DaneState::Insecure);  // never asked: its SRV or addresses had no AD
    CHECK(metrics().dane.get("bogus") == bogus_before + 1);
    CHECK(metrics().dane.get("none") == none_before + 1);
    CHECK(metrics().dane.get("insecure") == insecure_before + 1);
    CHECK(log.has("_5269._tcp.bad.b.test", "not connecting to bad.b.test"));

    // Only bogus servers: nothing to dial, and the error says why.
    out = apply_tlsa({in[2]}, verdicts, LogContext{std::nullopt, {}, "b.test"}, &error);
    CHECK(out.empty());
    CHECK(error.find("not connecting to the XMPP servers of b.test: TLSA lookup failed") == 0);
}
