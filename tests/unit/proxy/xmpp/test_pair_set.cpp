// PairSet: the pairs authenticated on a stream, one hash lookup per claim and per stanza.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "proxy/xmpp/pair_set.h"

using namespace s2s;

TEST_CASE("pair_set: pairs are kept in canonical form and found in any valid spelling") {
    PairSet s;
    CHECK(s.empty());
    CHECK(s.insert("B.Test.", "a.test"));
    CHECK_FALSE(s.insert("b.test", "A.TEST"));  // the same pair
    CHECK(s.size() == 1);
    CHECK(s.contains("b.test", "a.test"));
    CHECK(s.contains("B.TEST", "a.test."));
    CHECK_FALSE(s.contains("a.test", "b.test"));  // the order matters
    CHECK_FALSE(s.contains("b.test", "a2.test"));
    CHECK(s.pairs()[0].remote == "b.test");
    CHECK(s.pairs()[0].local == "a.test");
}

TEST_CASE("pair_set: invalid domains are neither added nor found") {
    PairSet s;
    CHECK_FALSE(s.insert("bad..test", "a.test"));
    CHECK_FALSE(s.insert("b.test", ""));
    CHECK(s.empty());
    CHECK_FALSE(s.contains("bad..test", "a.test"));
}

TEST_CASE("pair_set: a pair's domains cannot run into another pair's") {
    PairSet s;
    CHECK(s.insert("b.test", "a.test"));
    CHECK_FALSE(s.contains("b.testa", ".test"));
    CHECK_FALSE(s.contains("b", "test.a.test"));
    s.clear();
    CHECK(s.empty());
    CHECK_FALSE(s.contains("b.test", "a.test"));
}

TEST_CASE("pair_set: lookups stay cheap with many pairs (a hash, not a scan)") {
    PairSet s;
    for (int i = 0; i < 20000; ++i) REQUIRE(s.insert("b" + std::to_string(i) + ".test", "a.test"));
    CHECK(s.size() == 20000);
    auto start = std::chrono::steady_clock::now();
    size_t found = 0;
    for (int i = 0; i < 20000; ++i) found += s.contains("b" + std::to_string(i) + ".test", "a.test");
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    CHECK(found == 20000);
    // A scan per lookup would be 2e8 domain comparisons (seconds); hashing is a few ms.
    CHECK(ms < 1000);
}
