// VerifyBudget: dialback verifications under way, per client address and in total.
#include <doctest/doctest.h>

#include "proxy/xmpp/verify_budget.h"

using namespace s2s;
using R = VerifyBudget::Refusal;

TEST_CASE("verify_budget: per-host bound, then total bound; giving back frees both") {
    VerifyBudget b;
    CHECK(b.take("192.0.2.1", 2, 3) == R::None);
    CHECK(b.take("192.0.2.1", 2, 3) == R::None);
    CHECK(b.take("192.0.2.1", 2, 3) == R::PerHost);
    CHECK(b.take("192.0.2.2", 2, 3) == R::None);
    CHECK(b.take("192.0.2.3", 2, 3) == R::Total);
    CHECK(b.total() == 3);
    CHECK(b.of("192.0.2.1") == 2);
    CHECK(b.hosts() == 2);
    b.give_back("192.0.2.1");
    CHECK(b.take("192.0.2.3", 2, 3) == R::None);
    CHECK(b.hosts() == 3);
}

TEST_CASE("verify_budget: an address with nothing under way leaves no entry behind") {
    VerifyBudget b;
    for (int i = 0; i < 1000; ++i) {
        std::string host = "10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256);
        REQUIRE(b.take(host, 1, 10) == R::None);
        b.give_back(host);
    }
    CHECK(b.hosts() == 0);
    CHECK(b.total() == 0);
    b.give_back("never-taken");  // harmless
    CHECK(b.total() == 0);
}

TEST_CASE("verify_budget: 0 means no bound") {
    VerifyBudget b;
    for (int i = 0; i < 100; ++i) REQUIRE(b.take("h", 0, 0) == R::None);
    CHECK(b.total() == 100);
}
