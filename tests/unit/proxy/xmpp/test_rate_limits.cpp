// proxy/xmpp/rate_limits: the [antispam] limits per remote domain. The first cases hold streams
// that are never connected (holding is bookkeeping plus a read stop); the last one holds a real
// stream over loopback TCP and measures when its next stanza is read.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/xml/xml.h"
#include "proxy/ops/metrics.h"
#include "proxy/xmpp/rate_limits.h"
#include "tests/unit/support/stream_harness.h"

using namespace s2s;

namespace {

using test::Peer;

Stream* idle_stream(test::TestLoop& t, uint64_t id) {
    Peer& p = t.new_peer();
    p.stream = Stream::create(t.loop(), p, {}, id);
    return p.stream;
}

void inbound(RateLimits& limits, const std::string& remote, const std::string& stanza, Stream* source) {
    auto doc = xml::parse_element(stanza);
    REQUIRE(doc);
    limits.inbound(remote, doc->root(), source);
}

std::string subscribe(const std::string& from, const std::string& to) {
    return "<presence type='subscribe' from='" + from + "' to='" + to + "'/>";
}

QueuedStanza presence_out(const std::string& type, const std::string& from, const std::string& to) {
    QueuedStanza s;
    s.name = "presence";
    s.type = type;
    s.from = from;
    s.to = to;
    return s;
}

// A listener whose streams count every stanza they read from b.test against `stanzas`, noting
// when each arrived (loop time).
struct LimitedServer {
    test::TestLoop t;
    RateLimits limits{t.loop()};
    Peer& server = t.new_peer();
    std::vector<uint64_t> arrivals;

    explicit LimitedServer(RateSetting stanzas) {
        limits.configure(stanzas, RateSetting{});
        server.on_stanza_hook = [this](Peer& me) {
            arrivals.push_back(t.loop().now_ms());
            inbound(limits, "b.test", me.last(), me.stream);
        };
        t.listen([this](uv_stream_t* l) {
            server.stream = Stream::create(t.loop(), server, {}, 10);
            REQUIRE(uv_accept(l, server.stream->handle()) == 0);
            server.stream->start();
        });
    }
};

}  // namespace

TEST_CASE("rate_limits: without limits nothing is tracked or held") {
    test::TestLoop t;
    RateLimits limits(t.loop());
    Stream* s = idle_stream(t, 1);
    for (int i = 0; i < 100; ++i) inbound(limits, "b.test", "<message from='x@b.test' to='u@a.test'/>", s);
    CHECK(limits.domains() == 0);
    CHECK_FALSE(s->reading_stopped());
}

TEST_CASE("rate_limits: past the burst the domain's streams stop reading until the debt is paid back") {
    test::TestLoop t;
    RateLimits limits(t.loop());
    limits.configure(RateSetting{20, 3}, RateSetting{});
    Stream* s = idle_stream(t, 1);
    Stream* other = idle_stream(t, 2);  // another stream of the same domain
    Stream* elsewhere = idle_stream(t, 3);
    uint64_t before = metrics().antispam_rate_limited.get("stanzas");
    for (int i = 0; i < 3; ++i) inbound(limits, "b.test", "<message/>", s);
    CHECK_FALSE(s->reading_stopped());
    inbound(limits, "b.test", "<message/>", s);
    CHECK(s->reading_stopped());
    inbound(limits, "b.test", "<message/>", other);
    CHECK(other->reading_stopped());
    inbound(limits, "c.test", "<message/>", elsewhere);  // each domain has its own bucket
    CHECK_FALSE(elsewhere->reading_stopped());
    CHECK(limits.holding("b.test"));
    CHECK(metrics().antispam_rate_limited.get("stanzas") == before + 2);
    // Two stanzas of debt at 20/s: 100 ms.
    REQUIRE(t.run_until([&] { return !s->reading_stopped(); }, 1000));
    CHECK_FALSE(other->reading_stopped());
    CHECK_FALSE(limits.holding("b.test"));
}

TEST_CASE("rate_limits: subscription requests have their own stricter bucket; known contacts pass") {
    test::TestLoop t;
    RateLimits limits(t.loop());
    limits.configure(RateSetting{}, RateSetting{1, 2});
    Stream* s = idle_stream(t, 1);
    for (int i = 0; i < 10; ++i) inbound(limits, "b.test", "<message from='x@b.test' to='u@a.test'/>", s);
    inbound(limits, "b.test", "<presence from='x@b.test' to='u@a.test'/>", s);
    inbound(limits, "b.test", "<presence type='subscribed' from='x@b.test' to='u@a.test'/>", s);
    CHECK_FALSE(s->reading_stopped());  // only type='subscribe' counts

    // Our user approved (or asked) z@b.test: z's requests to that user are not counted.
    limits.outbound(presence_out("subscribed", "U@a.test/phone", "Z@B.test"));
    limits.outbound(presence_out("unavailable", "u@a.test", "w@b.test"));  // not a subscription
    CHECK(limits.contacts().size() == 1);
    for (int i = 0; i < 5; ++i) inbound(limits, "b.test", subscribe("z@b.test/r", "u@a.test"), s);
    CHECK_FALSE(s->reading_stopped());

    uint64_t before = metrics().antispam_rate_limited.get("subscriptions");
    inbound(limits, "b.test", subscribe("z@b.test", "v@a.test"), s);  // another user's: counted
    inbound(limits, "b.test", subscribe("w@b.test", "u@a.test"), s);
    CHECK_FALSE(s->reading_stopped());
    inbound(limits, "b.test", subscribe("y@b.test", "u@a.test"), s);
    CHECK(s->reading_stopped());
    CHECK(metrics().antispam_rate_limited.get("subscriptions") == before + 1);
    limits.configure(RateSetting{}, RateSetting{});  // a reload that turns the limit off lets it read
    CHECK_FALSE(s->reading_stopped());
}

TEST_CASE("rate_limits: a domain back to full is forgotten; past the bound the least recently active goes") {
    test::TestLoop t;
    RateLimits limits(t.loop(), 2);
    limits.configure(RateSetting{1000, 1}, RateSetting{});
    Stream* s = idle_stream(t, 1);
    inbound(limits, "b.test", "<message/>", s);
    CHECK(limits.domains() == 1);
    t.run_for(20);  // the bucket is full again
    inbound(limits, "c.test", "<message/>", s);
    CHECK(limits.domains() == 1);  // b.test was forgotten

    limits.configure(RateSetting{1, 1}, RateSetting{});  // slow refill: nothing is idle now
    inbound(limits, "c.test", "<message/>", nullptr);
    inbound(limits, "d.test", "<message/>", nullptr);
    inbound(limits, "e.test", "<message/>", nullptr);
    CHECK(limits.domains() == 2);

    // A held domain is not forgotten while it holds.
    RateLimits held(t.loop(), 1);
    held.configure(RateSetting{1000, 1}, RateSetting{});
    inbound(held, "b.test", "<message/>", s);
    inbound(held, "b.test", "<message/>", s);
    CHECK(s->reading_stopped());
    t.run_for(20);
    CHECK_FALSE(s->reading_stopped());
}

TEST_CASE("rate_limits: a held stream reads its next stanza only when the domain's debt is paid back") {
    LimitedServer w(RateSetting{20, 5});
    Peer& client = w.t.new_peer();
    client.on_connect_hook = [&](Peer& me) {
        std::string burst = test::kStreamHeader;
        for (int i = 0; i < 10; ++i) burst += "<message from='x@b.test' to='u@a.test'/>";
        me.stream->send(burst);
    };
    w.t.connect(client, 2);
    REQUIRE(w.t.run_until([&] { return w.arrivals.size() == 10; }));
    uint64_t burst_at = w.arrivals.back();
    CHECK(w.server.stream->reading_stopped());  // 5 over the burst: 250 ms at 20/s
    client.stream->send("<message from='x@b.test' to='u@a.test'/>");
    REQUIRE(w.t.run_until([&] { return w.arrivals.size() == 11; }, 2000));
    CHECK(w.arrivals.back() - burst_at >= 240);
    CHECK(w.arrivals.back() - burst_at < 1000);
}

TEST_CASE("rate_limits: a held stream takes what was sent meanwhile a few stanzas at a time") {
    LimitedServer w(RateSetting{20, 2});
    Peer& client = w.t.new_peer();
    const std::string stanza = "<message from='x@b.test' to='u@a.test'><body>" + std::string(150, 'x') + "</body></message>";
    client.on_connect_hook = [&](Peer& me) { me.stream->send(std::string(test::kStreamHeader) + stanza + stanza + stanza); };
    w.t.connect(client, 2);
    REQUIRE(w.t.run_until([&] { return w.arrivals.size() == 3; }));
    CHECK(w.server.stream->reading_stopped());
    std::string more;
    for (int i = 0; i < 20; ++i) more += stanza;  // about 4 KB while the stream is held
    client.stream->send(more);
    REQUIRE(w.t.run_until([&] { return w.arrivals.size() == 23; }, 5000));
    // 21 stanzas over the burst at 20/s: about a second, not one read at the end of the first pause.
    CHECK(w.arrivals.back() - w.arrivals[2] >= 700);
    size_t at_once = 0;
    for (size_t i = 3, run = 1; i < w.arrivals.size(); ++i) {
        run = w.arrivals[i] == w.arrivals[i - 1] ? run + 1 : 1;
        at_once = std::max(at_once, run);
    }
    CHECK(at_once <= 6);  // one read of 1 KB holds about 5 of these
}
