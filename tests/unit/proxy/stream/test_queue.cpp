// Queued stanzas and bounces.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "common/xmpp/xml_stream.h"
#include "proxy/stream/queue.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;

namespace {
// A stanza as captured for routing; `source`: the stream it was read from.
QueuedStanza q(const char* xml, Stream* source = nullptr) {
    auto doc = xml::parse_element(xml);
    REQUIRE(doc);
    QueuedStanza s = QueuedStanza::capture(doc->root(), xml::NamespaceScope::server_stream());
    s.source = source;
    return s;
}
}  // namespace

TEST_CASE("queue: a bounce swaps the addresses, keeps the id and says why") {
    auto b = make_bounce(q("<message from='a@x.test/r' to='b@y.test' id='m1'><body>hi</body></message>"),
                         StanzaError::RemoteServerNotFound, "s2s to y.test failed: no address");
    REQUIRE(b);
    CHECK(*b == "<message from='b@y.test' to='a@x.test/r' type='error' id='m1'><error type='cancel'>"
                "<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>s2s to y.test failed: no address</text>"
                "</error></message>");
    // The bounce is itself a well-formed stanza of the stream.
    CHECK(xml::parse_element(*b));
}

TEST_CASE("queue: errors and presence are never bounced") {
    CHECK_FALSE(make_bounce(q("<message from='a@x.test' to='b@y.test' type='error'/>"), StanzaError::RemoteServerTimeout, ""));
    CHECK_FALSE(make_bounce(q("<presence from='a@x.test' to='b@y.test'/>"), StanzaError::RemoteServerTimeout, ""));
    CHECK(make_bounce(q("<iq from='a@x.test' to='y.test' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"),
                      StanzaError::RemoteServerTimeout, ""));
}

TEST_CASE("queue: bounded by count and by bytes") {
    StanzaQueue by_count(2, 1000);
    CHECK(by_count.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK(by_count.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK_FALSE(by_count.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK(by_count.size() == 2);
    StanzaQueue by_bytes(100, 60);
    CHECK(by_bytes.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK_FALSE(by_bytes.push(q("<message from='a@x.test' to='b@y.test'/>")));
    size_t before = by_bytes.bytes();
    QueuedStanza s = by_bytes.pop();
    CHECK(by_bytes.bytes() == before - s.bytes.size());
    CHECK(by_bytes.empty());
}

TEST_CASE("queue: how full it is, by the nearer of its two bounds") {
    StanzaQueue queue(4, 1000);
    CHECK(queue.fill() == 0);
    CHECK(queue.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK(queue.fill() == doctest::Approx(0.25));  // 1 of 4 stanzas; about 40 of 1000 bytes
    StanzaQueue by_bytes(100, 80);
    CHECK(by_bytes.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK(by_bytes.fill() == doctest::Approx(static_cast<double>(by_bytes.bytes()) / 80));
    CHECK(by_bytes.fill() > 0.25);
}

TEST_CASE("queue: a link's queues per domain, counted together and by the fullest") {
    struct Domain {
        StanzaQueue queue;
    };
    std::map<std::string, Domain> domains;
    CHECK(queued_in(domains) == 0);
    CHECK(fullest_fill(domains) == 0);
    domains.emplace("a.test", Domain{StanzaQueue(4, 1000)});
    domains.emplace("b.test", Domain{StanzaQueue(2, 1000)});
    domains.emplace("c.test", Domain{StanzaQueue(8, 1000)});
    CHECK(domains.at("a.test").queue.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK(domains.at("b.test").queue.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK(domains.at("c.test").queue.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK(domains.at("c.test").queue.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK(queued_in(domains) == 4);
    CHECK(fullest_fill(domains) == doctest::Approx(0.5));  // b.test: 1 of 2, not the last one seen
}

TEST_CASE("queue: filling up holds back the stream the stanzas come from, until it is nearly empty") {
    // A queue of 160: it holds its source from 20 stanzas on, and lets it go at 10.
    StanzaQueue queue(160, 1 << 20);
    test::TestLoop t;
    test::Peer& src = t.new_peer();  // the server side of the sender's connection
    t.listen([&](uv_stream_t* l) {
        src.stream = Stream::create(t.loop(), src, {}, 1);
        REQUIRE(uv_accept(l, src.stream->handle()) == 0);
        src.stream->start();
    });
    size_t refused = 0;
    src.on_stanza_hook = [&](test::Peer& me) { refused += queue.push(q(me.last().c_str(), me.stream)) ? 0 : 1; };
    test::Peer& sender = t.new_peer();
    sender.on_connect_hook = [](test::Peer& me) {
        me.stream->send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                        "from='b.test' to='a.test' version='1.0'>");
        for (int i = 0; i < 20; ++i) me.stream->send("<message from='u@b.test' to='v@a.test'/>");
    };
    t.connect(sender, 2);
    REQUIRE(t.run_until([&] { return queue.size() >= 20; }));
    CHECK(src.stream->reading_stopped());
    CHECK(queue.holding() == 1);
    // What the sender writes now waits in TCP: nothing more is read.
    for (int i = 0; i < 50; ++i) sender.stream->send("<message from='u@b.test' to='v@a.test'/>");
    t.run_for(150);
    CHECK(queue.size() == 20);
    // Drained to 10 (a sixteenth of 160), the source reads again and the rest arrives.
    while (queue.size() > 11) (void)queue.pop();
    CHECK(src.stream->reading_stopped());
    (void)queue.pop();
    CHECK_FALSE(src.stream->reading_stopped());
    REQUIRE(t.run_until([&] { return queue.size() >= 20; }));
    CHECK(queue.holding() == 1);
    while (!queue.empty()) {
        (void)queue.pop();
        t.run_for(5);
    }
    REQUIRE(t.run_until([&] { return src.stanzas.size() == 70; }));
    CHECK(refused == 0);
}

TEST_CASE("queue: a held stream that closes leaves the queue; a queue that goes away lets its streams read") {
    test::TestLoop t;
    test::Peer& src = t.new_peer();
    t.listen([&](uv_stream_t* l) {
        src.stream = Stream::create(t.loop(), src, {}, 1);
        REQUIRE(uv_accept(l, src.stream->handle()) == 0);
        src.stream->start();
    });
    auto queue = std::make_unique<StanzaQueue>(8, 1 << 20);  // holds from the first stanza
    src.on_stanza_hook = [&](test::Peer& me) {
        if (queue) (void)queue->push(q(me.last().c_str(), me.stream));
    };
    test::Peer& sender = t.new_peer();
    sender.on_connect_hook = [](test::Peer& me) {
        me.stream->send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                        "from='b.test' to='a.test' version='1.0'><message from='u@b.test' to='v@a.test'/>");
    };
    t.connect(sender, 2);
    REQUIRE(t.run_until([&] { return queue->holding() == 1; }));
    SUBCASE("the queue goes away") {
        queue.reset();
        CHECK_FALSE(src.stream->reading_stopped());
    }
    SUBCASE("the held stream goes away") {
        src.stream->abort("test");
        REQUIRE(t.run_until([&] { return src.closed; }));
        CHECK(queue->holding() == 0);
        queue.reset();  // nothing dangling to touch
    }
}

TEST_CASE("queue: only a stanza's own source is held, and a queued stanza refers to no stream") {
    test::TestLoop t;
    test::Peer& src = t.new_peer();
    src.stream = Stream::create(t.loop(), src, {}, 1);
    StanzaQueue queue(8, 1 << 20);  // holds from the first stanza
    CHECK(queue.push(q("<message from='a@x.test' to='b@y.test'/>")));  // s2s-proxy's own: nobody to hold
    CHECK(queue.holding() == 0);
    CHECK(queue.push(q("<message from='a@x.test' to='b@y.test'/>", src.stream)));
    CHECK(queue.holding() == 1);
    CHECK(queue.pop().source == nullptr);
    CHECK(queue.pop().source == nullptr);
    CHECK(queue.holding() == 0);  // empty again: the source reads again
}

TEST_CASE("queue: a stanza bigger than an empty queue's byte bound is refused without holding its source") {
    test::TestLoop t;
    test::Peer& src = t.new_peer();
    src.stream = Stream::create(t.loop(), src, {}, 1);
    StanzaQueue queue(8, 64);
    const std::string body = "<message from='a@x.test' to='b@y.test'><body>" + std::string(100, 'x') + "</body></message>";
    QueuedStanza big = q(body.c_str(), src.stream);
    CHECK_FALSE(queue.push(std::move(big)));
    CHECK(queue.holding() == 0);  // nothing in the queue would ever drain to let it go
    // A full queue with stanzas in it does hold the source until it drains.
    CHECK(queue.push(q("<message from='a@x.test' to='b@y.test'/>")));
    CHECK_FALSE(queue.push(q(body.c_str(), src.stream)));
    CHECK(queue.holding() == 1);
    (void)queue.pop();
    CHECK(queue.holding() == 0);
}
