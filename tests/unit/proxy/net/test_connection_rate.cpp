// proxy/net/connection_rate: new connections per second per client address, bounded and expiring.
#include <doctest/doctest.h>

#include <string>

#include "proxy/net/connection_rate.h"

using namespace s2s;
using V = ConnectionRate::Verdict;

TEST_CASE("connection_rate: a burst of `rate` at once, then `rate` a second, per address") {
    ConnectionRate r;
    Limit five{5, false};
    for (int i = 0; i < 5; ++i) CHECK(r.admit("192.0.2.1", five, 1000) == V::Allowed);
    CHECK(r.admit("192.0.2.1", five, 1000) == V::OverRate);
    CHECK(r.admit("192.0.2.2", five, 1000) == V::Allowed);  // another address has its own
    CHECK(r.admit("192.0.2.1", five, 1199) == V::OverRate); // 5/s: one back after 200 ms
    CHECK(r.admit("192.0.2.1", five, 1200) == V::Allowed);
    CHECK(r.admit("192.0.2.1", five, 1200) == V::OverRate);
    // A refusal takes nothing: after a second the whole burst is back.
    for (int i = 0; i < 5; ++i) CHECK(r.admit("192.0.2.1", five, 2300) == V::Allowed);
}

TEST_CASE("connection_rate: infinity allows everything and keeps nothing") {
    ConnectionRate r;
    for (int i = 0; i < 1000; ++i) CHECK(r.admit("192.0.2.1", Limit{0, true}, 0) == V::Allowed);
    CHECK(r.size() == 0);
}

TEST_CASE("connection_rate: a reload's new rate applies to addresses already tracked") {
    ConnectionRate r;
    CHECK(r.admit("192.0.2.1", Limit{1, false}, 0) == V::Allowed);
    CHECK(r.admit("192.0.2.1", Limit{1, false}, 0) == V::OverRate);
    CHECK(r.admit("192.0.2.1", Limit{100, false}, 100) == V::Allowed);
}

TEST_CASE("connection_rate: buckets that filled up again are swept; the table never passes its bound") {
    ConnectionRate r;
    Limit two{2, false};
    for (int i = 0; i < 3000; ++i) REQUIRE(r.admit("a" + std::to_string(i), two, 0) == V::Allowed);
    CHECK(r.size() <= 4096);
    // Seconds later every one of them is full again: the next sweep, when new addresses have
    // doubled the table, drops them.
    for (int i = 0; i < 1500; ++i) REQUIRE(r.admit("b" + std::to_string(i), two, 5000) == V::Allowed);
    CHECK(r.size() <= 1500);
    // Many addresses at once: past kMaxHosts a new one is refused, an old one still works.
    ConnectionRate busy;
    size_t refused = 0;
    for (size_t i = 0; i < ConnectionRate::kMaxHosts + 10; ++i)
        if (busy.admit("h" + std::to_string(i), two, 0) == V::TableFull) ++refused;
    CHECK(refused == 10);
    CHECK(busy.size() == ConnectionRate::kMaxHosts);
    CHECK(busy.admit("h1", two, 0) == V::Allowed);
    CHECK(busy.admit("h1", two, 0) == V::OverRate);
    CHECK(busy.admit("brand-new", two, 0) == V::TableFull);
    CHECK(busy.admit("brand-new", two, 2000) == V::Allowed);  // the old ones have expired by then
}
