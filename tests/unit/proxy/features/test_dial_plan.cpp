// The candidates an outbound link dials (proxy/features/dial_plan): those leading back into s2s-proxy are
// skipped, counted and named for the bounce. No socket.
#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <memory>

#include "proxy/features/dial_plan.h"
#include "proxy/ops/metrics.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/null_router.h"
#include "tests/unit/support/plan_world.h"

using namespace s2s;

namespace {

Candidate candidate(const char* ip, uint16_t port, bool configured) {
    Candidate c{};
    auto* sin = reinterpret_cast<sockaddr_in*>(&c.addr);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, ip, &sin->sin_addr) == 1);
    c.configured = configured;
    return c;
}

}  // namespace

TEST_CASE("dial_plan: addresses in s2s.outgoing.denied_networks from DNS are skipped; the next is dialled") {
    test::PlanWorld w([](Config& c) { REQUIRE(c.outgoing.denied_networks.add("10.0.0.0/8")); });
    DialPlan& plan = *w.plan;
    const LogContext& log = w.log;
    CHECK(plan.empty());
    uint64_t denied = metrics().outgoing_refused.get("denied_network");
    plan.reset({candidate("10.1.2.3", 5269, false), candidate("10.1.2.4", 5269, true), candidate("192.0.2.1", 5269, false)});
    const Candidate* c = plan.next(log);
    REQUIRE(c);
    CHECK(c->configured);  // an override is the operator's word
    CHECK(&plan.current() == c);
    CHECK(plan.refused() == "DNS for b.test points at a forbidden address");
    CHECK(metrics().outgoing_refused.get("denied_network") == denied + 1);
    REQUIRE(plan.next(log));
    CHECK(plan.next(log) == nullptr);
}

TEST_CASE("dial_plan: an address is dialled at most once per attempt; a fallback is counted by its reason") {
    test::PlanWorld w;
    DialPlan& plan = *w.plan;
    const LogContext& log = w.log;
    // two SRV targets on one host, then another address
    plan.reset({candidate("192.0.2.1", 5269, false), candidate("192.0.2.1", 5269, false),
                candidate("192.0.2.2", 5269, false)});
    REQUIRE(plan.next(log));
    CHECK(plan.more());
    uint64_t tls = metrics().outgoing_fallbacks.get("tls");
    plan.fell_back(Fallback::Tls, "the TLS handshake failed", log);
    CHECK(metrics().outgoing_fallbacks.get("tls") == tls + 1);
    const Candidate* c = plan.next(log);
    REQUIRE(c);
    CHECK(format_sockaddr(reinterpret_cast<const sockaddr*>(&c->addr)) == "192.0.2.2:5269");
    CHECK_FALSE(plan.more());
    CHECK(plan.next(log) == nullptr);
    // a new attempt dials them again
    plan.reset({candidate("192.0.2.1", 5269, false)});
    CHECK(plan.next(log));
    CHECK(std::string(fallback_name(Fallback::StreamError)) == "stream_error");
}
