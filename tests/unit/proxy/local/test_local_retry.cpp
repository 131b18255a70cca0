// When a link to the local server is tried again, and when its stanzas are given up.
#include <doctest/doctest.h>

#include <algorithm>

#include "proxy/local/local_retry.h"

using namespace s2s;
using Next = LocalRetry::Next;

TEST_CASE("local retry: nothing waiting, nothing to retry") {
    LocalRetry r;
    CHECK(r.after_close(false, false, 1000, 60000).next == Next::Idle);
}

TEST_CASE("local retry: failed attempts wait twice as long each time, up to the cap") {
    LocalRetry r;
    uint64_t now = 1000, expected = LocalRetry::kFirstRetryMs;
    for (int i = 0; i < 8; ++i) {
        LocalRetry::Decision d = r.after_close(false, true, now, 60000);
        REQUIRE(d.next == Next::Retry);
        CHECK(d.delay_ms == expected);
        now += d.delay_ms;
        expected = std::min<uint64_t>(expected * 2, LocalRetry::kMaxRetryMs);
    }
    CHECK(expected == LocalRetry::kMaxRetryMs);
}

TEST_CASE("local retry: after queue_timeout of failures in a row the waiting stanzas are given up") {
    LocalRetry r;
    CHECK(r.after_close(false, true, 1000, 3000).next == Next::Retry);   // down since 1000
    CHECK(r.after_close(false, true, 3999, 3000).next == Next::Retry);
    CHECK(r.after_close(false, true, 4000, 3000).next == Next::GiveUp);
    // ...and the count starts again with the next stanza's attempt
    CHECK(r.after_close(false, true, 5000, 3000).next == Next::Retry);
    CHECK(r.after_close(false, true, 7999, 3000).next == Next::Retry);
}

TEST_CASE("local retry: a link that was up is retried at once, and counts its outage from then") {
    LocalRetry r;
    for (int i = 0; i < 4; ++i) (void)r.after_close(false, true, 1000, 60000);  // delays grew
    r.ready();
    LocalRetry::Decision d = r.after_close(true, true, 100000, 3000);
    CHECK(d.next == Next::Retry);
    CHECK(d.delay_ms == LocalRetry::kFirstRetryMs);
    CHECK(r.after_close(false, true, 102999, 3000).next == Next::Retry);
    CHECK(r.after_close(false, true, 103000, 3000).next == Next::GiveUp);
}
