// proxy/net/shaper: the token bucket's arithmetic, and a shaped Stream held to its rate over real
// loopback TCP.
#include <doctest/doctest.h>

#include <string>

#include "proxy/net/shaper.h"
#include "proxy/stream/stream.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;

TEST_CASE("shaper: a full bucket lets one second's worth through, then asks for a pause") {
    TokenBucket b(1000, 0);
    CHECK(b.take(600, 0) == 0);
    CHECK(b.take(400, 0) == 0);
    CHECK(b.tokens() == 0);
    CHECK(b.take(500, 0) == 500);   // 500 bytes of debt at 1000 B/s: half a second
    CHECK(b.take(0, 250) == 250);   // a quarter second later, a quarter second to go
    CHECK(b.take(0, 500) == 0);     // paid back
}

TEST_CASE("shaper: refill is exact for slow rates and capped at one second's worth") {
    TokenBucket b(3, 0);            // 3 bytes per second: one token per 333.3 ms
    CHECK(b.take(3, 0) == 0);
    for (uint64_t t = 100; t <= 1000; t += 100) (void)b.take(0, t);
    CHECK(b.tokens() == 3);         // fractions were kept between calls
    TokenBucket c(1000, 0);
    (void)c.take(0, 60'000);        // a minute of quiet
    CHECK(c.tokens() == 1000);      // still one second's worth
}

TEST_CASE("shaper: a large read is a debt paid back at the rate; a new rate applies at once") {
    TokenBucket b(10'000, 0);
    CHECK(b.take(65'536, 0) == 5554);  // (65536 - 10000) / 10000 s, rounded up to the ms
    b.set_rate(1'000'000);
    CHECK(b.take(0, 56) == 0);         // the debt at the new rate is paid back in 56 ms
    TokenBucket huge(UINT64_MAX, 0);   // absurd rates do not overflow
    CHECK(huge.take(1 << 20, 0) == 0);
    CHECK(huge.take(0, 10'000) == 0);
}

TEST_CASE("shaper: a shaped stream reads no faster than its rate (measured over a transfer)") {
    test::TestLoop t;
    test::Peer& server = t.new_peer();
    test::Peer& client = t.new_peer();
    constexpr uint64_t kRate = 40'000;        // bytes per second
    constexpr size_t kTotal = 120'000;        // three seconds' worth; the first second is a burst
    t.listen([&](uv_stream_t* l) {
        server.stream = Stream::create(t.loop(), server, {}, 1);
        REQUIRE(uv_accept(l, server.stream->handle()) == 0);
        server.stream->set_rate_limit(kRate);
        server.stream->start();
    });
    std::string body(1000 - 40, 'x');
    client.on_connect_hook = [&](test::Peer& p) {
        p.stream->send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>");
        for (size_t sent = 0; sent < kTotal; sent += 1000) p.stream->send("<message><body>" + body + "</body></message>");
    };
    uint64_t start = t.loop().now_ms();
    t.connect(client, 2);
    REQUIRE(t.run_until([&] { return server.stanzas.size() >= kTotal / 1000; }, 15'000));
    uint64_t elapsed = t.loop().now_ms() - start;
    MESSAGE("120 kB at 40 kB/s took " << elapsed << " ms");
    // The bucket starts full (one second's worth), so the rest takes at least (total - rate) / rate.
    CHECK(elapsed >= (kTotal - kRate) * 1000 / kRate * 9 / 10);
    CHECK(elapsed < 8000);
    // Without a shaper the same transfer is immediate (the limit is what made it slow).
    server.stanzas.clear();
    server.stream->set_rate_limit(0);
    start = t.loop().now_ms();
    for (size_t sent = 0; sent < kTotal; sent += 1000) client.stream->send("<message><body>" + body + "</body></message>");
    REQUIRE(t.run_until([&] { return server.stanzas.size() >= kTotal / 1000; }, 5000));
    CHECK(t.loop().now_ms() - start < 1000);
}

TEST_CASE("shaper: a listener's shaper names a [shaper.NAME] or an access rule whose value names one") {
    Config c;
    c.shapers["normal"].max_rate = 1000;
    c.shapers["fast"].max_rate = 50000;
    c.acl["friends"] = {{"", "b.test"}};
    c.access["c2s_shaper"] = {{"friends", "fast"}, {"all", "normal"}};
    c.access["friends_fast"] = {{"friends", "fast"}, {"all", "none"}};
    CHECK(shaper_rate(c, "none", "b.test") == 0);
    CHECK(shaper_rate(c, "normal", "") == 1000);
    CHECK(shaper_rate(c, "c2s_shaper", "") == 1000);  // at accept: no domain, "all" matches
    CHECK(shaper_rate(c, "c2s_shaper", "b.test") == 50000);
    CHECK(shaper_rate(c, "c2s_shaper", "c.test") == 1000);
    CHECK(shaper_rate(c, "friends_fast", "") == 0);
    CHECK(shaper_rate(c, "friends_fast", "b.test") == 50000);
}

TEST_CASE("shaper: a bucket with a capacity of its own lets that burst through, then holds to the rate") {
    TokenBucket b(2, 0, 5);           // 2 per second, 5 at once (an [antispam] stanza limit)
    CHECK(b.capacity() == 5);
    for (int i = 0; i < 5; ++i) CHECK(b.take(1, 0) == 0);
    CHECK(b.take(1, 0) == 500);       // one over: half a second at 2/s
    CHECK_FALSE(b.full(1000));
    CHECK(b.available(1000) == 1);    // paid back, one token more
    CHECK(b.full(3000));              // full again after 3 s, and no fuller
    CHECK(b.tokens() == 5);
    b.set_rate(2, 3);                 // a smaller burst applies at once
    CHECK(b.tokens() == 3);
}
