// BackoffTable: failing remote hosts, with waits that double, entries that expire and a size bound.
#include <doctest/doctest.h>

#include "proxy/routing/backoff.h"

using namespace s2s;

namespace {
constexpr uint64_t kCap = 8000;
}

TEST_CASE("backoff: the wait starts near a second and doubles per failure up to the cap") {
    BackoffTable t;
    uint64_t d1 = t.failed("b.test", "connection refused", 0, kCap, 100);
    CHECK(d1 >= 1000);
    CHECK(d1 <= 1200);
    CHECK(t.remaining("b.test", 0) == d1);
    CHECK(t.remaining("b.test", d1) == 0);
    uint64_t d2 = t.failed("b.test", "again", d1, kCap, 100);
    CHECK(d2 >= 2 * d1);
    CHECK(d2 <= 2 * d1 + 2 * d1 / 5);
    uint64_t d = d2, now = d1 + d2;
    for (int i = 0; i < 10; ++i) {
        d = t.failed("b.test", "again", now, kCap, 100);
        now += d;
    }
    CHECK(d == kCap);
    CHECK(t.find("b.test")->error == "again");
    CHECK(t.waiting(now - 1) == 1);
    CHECK(t.waiting(now) == 0);
}

TEST_CASE("backoff: an entry is forgotten once the longest wait and the slack have passed") {
    BackoffTable t;
    (void)t.failed("b.test", "x", 1000, kCap, 100);
    t.sweep(1000 + kCap + BackoffTable::kForgetSlackMs - 1);
    CHECK(t.size() == 1);  // still remembered: a failure now would double the wait
    t.sweep(1000 + kCap + BackoffTable::kForgetSlackMs);
    CHECK(t.size() == 0);
    CHECK(t.queued() == 0);
    // A failure after that starts from a second again.
    CHECK(t.failed("b.test", "x", 200000, kCap, 100) <= 1200);
}

TEST_CASE("backoff: a host that failed again is kept from its last failure, not its first") {
    BackoffTable t;
    (void)t.failed("b.test", "x", 0, kCap, 100);
    (void)t.failed("b.test", "x", 5000, kCap, 100);
    t.sweep(kCap + BackoffTable::kForgetSlackMs);  // the first failure's time
    CHECK(t.size() == 1);
    t.sweep(5000 + kCap + BackoffTable::kForgetSlackMs);
    CHECK(t.size() == 0);
}

TEST_CASE("backoff: forget() clears a host at once") {
    BackoffTable t;
    (void)t.failed("b.test", "x", 0, kCap, 100);
    t.forget("b.test");
    CHECK(t.size() == 0);
    CHECK(t.remaining("b.test", 1) == 0);
    // Its queued failure is stale and is skipped, not applied to a newer entry.
    (void)t.failed("b.test", "y", 10, kCap, 100);
    t.sweep(kCap + BackoffTable::kForgetSlackMs);
    CHECK(t.size() == 1);
}

TEST_CASE("backoff: past max_entries the oldest failure is forgotten first; the table never grows past it") {
    BackoffTable t;
    for (int i = 0; i < 100000; ++i) (void)t.failed("h" + std::to_string(i) + ".test", "nxdomain", i, kCap, 100);
    CHECK(t.size() == 100);
    CHECK(t.evicted() == 99900);
    CHECK(t.find("h99999.test") != nullptr);
    CHECK(t.find("h99900.test") != nullptr);
    CHECK(t.find("h99899.test") == nullptr);
    CHECK(t.queued() <= 2 * t.size() + 64);
}

TEST_CASE("backoff: repeated failures of the same hosts keep the failure queue bounded") {
    BackoffTable t;
    for (int i = 0; i < 50000; ++i) (void)t.failed("h" + std::to_string(i % 10) + ".test", "x", 0, kCap, 100);
    CHECK(t.size() == 10);
    CHECK(t.evicted() == 0);
    CHECK(t.queued() <= 2 * t.size() + 64);
}
