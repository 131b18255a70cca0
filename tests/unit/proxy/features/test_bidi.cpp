// Bidirectional streams (proxy/features/bidi), both roles, fed flags and parsed elements: no socket.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "proxy/features/bidi.h"
#include "proxy/ops/metrics.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/null_router.h"

using namespace s2s;

TEST_CASE("bidi: offered over TLS before anything is claimed; asked for only where offered") {
    LogContext log{1, "a.test", "b.test"};
    BidiServer plain;
    CHECK(plain.feature(true, false, true).empty());
    CHECK(plain.state() == BidiServer::State::NotOffered);
    CHECK(*plain.on_request(true, false, true, log) == "bidi (XEP-0288) is offered only over TLS");
    BidiServer off;
    CHECK(off.feature(false, true, true).empty());
    CHECK(*off.on_request(false, true, true, log) == "bidi (XEP-0288) is disabled here (s2s.bidi)");
    BidiServer late;
    CHECK(late.feature(true, true, false).empty());
    CHECK(*late.on_request(true, true, false, log) == "bidi (XEP-0288) must be asked for before authentication");

    BidiServer bidi;
    CHECK(bidi.feature(true, true, true) == "<bidi xmlns='urn:xmpp:features:bidi'/>");
    CHECK(bidi.state() == BidiServer::State::Offered);
    // authenticated since the features that offered it: too late
    CHECK(bidi.on_request(true, true, false, log));
    CHECK_FALSE(bidi.on_request(true, true, true, log));
    CHECK(bidi.agreed());
    CHECK_FALSE(bidi.on_request(true, true, false, log));  // asked again: nothing more
    bidi.new_stream();
    CHECK(bidi.agreed());
    CHECK(bidi.feature(true, true, true).empty());

    BidiServer restarted;
    (void)restarted.feature(true, true, true);
    restarted.new_stream();  // the offer was for the previous stream
    CHECK(restarted.state() == BidiServer::State::NotOffered);
    CHECK(restarted.on_request(true, true, true, log));
}

TEST_CASE("bidi: the initiating side asks only over TLS and when offered; stanzas back need bidi") {
    test::TestLoop t;
    Config config;
    config.hosts = {"a.test"};
    DialbackKeys keys{"test secret"};
    PolicyRules policy(config, false);
    test::NullRouter router;
    ProxyContext ctx{config, t.loop(), keys, policy, router, {}, 0};
    LogContext log{1, "a.test", "b.test"};
    auto features = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                                       "<bidi xmlns='urn:xmpp:features:bidi'/></stream:features>");
    REQUIRE(features);
    BidiClient bidi;
    CHECK_FALSE(bidi.wanted(ctx, true, features->root(), nullptr, "b.test", log));
    auto stanza = xml::parse_element("<message from='u@b.test' to='v@a.test'/>");
    REQUIRE(stanza);
    PairSet pairs;
    (void)pairs.insert("b.test", "a.test");
    auto refused = bidi.on_stanza(ctx, 1, nullptr, *stanza, pairs, "b.test");
    REQUIRE(refused);
    CHECK(refused->error == StreamError::NotAuthorized);
    CHECK(refused->text == "b.test sent a stanza on a stream s2s-proxy opened, which is not bidirectional");
    CHECK(bidi.ask("b.test", log) == "<bidi xmlns='urn:xmpp:bidi'/>");
    CHECK(bidi.asked());
    CHECK(bidi.ask("b.test", log, "<limits xmlns='urn:xmpp:stream-limits:0'/>") ==
          "<bidi xmlns='urn:xmpp:bidi'><limits xmlns='urn:xmpp:stream-limits:0'/></bidi>");
    CHECK_FALSE(bidi.wanted(ctx, true, features->root(), nullptr, "b.test", log));
}
