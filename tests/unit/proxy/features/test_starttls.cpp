// STARTTLS as a listener offers and answers it (proxy/features/starttls), on a stream that is not encrypted.
#include <doctest/doctest.h>

#include "proxy/features/starttls.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;

TEST_CASE("starttls: offered with <required/> only in Require mode, never in None or Direct mode") {
    test::TestLoop t;
    test::Peer& p = t.new_peer();
    p.stream = Stream::create(t.loop(), p, {}, 1);
    CHECK(starttls::feature(InboundTls::None, *p.stream).empty());
    CHECK(starttls::feature(InboundTls::Direct, *p.stream).empty());
    CHECK(starttls::feature(InboundTls::Offer, *p.stream) ==
          "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>");
    CHECK(starttls::feature(InboundTls::Require, *p.stream) ==
          "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>");
    CHECK(starttls::required_first(InboundTls::Require, *p.stream));
    CHECK_FALSE(starttls::required_first(InboundTls::Offer, *p.stream));
    CHECK_FALSE(starttls::required_first(InboundTls::None, *p.stream));
}

TEST_CASE("starttls: <starttls/> gets <proceed/> only where it was offered") {
    test::TestLoop t;
    test::Peer& p = t.new_peer();
    p.stream = Stream::create(t.loop(), p, {}, 1);
    std::string why;
    CHECK(starttls::may_proceed(InboundTls::Offer, *p.stream, &why));
    CHECK(starttls::may_proceed(InboundTls::Require, *p.stream, &why));
    CHECK(why.empty());
    CHECK_FALSE(starttls::may_proceed(InboundTls::None, *p.stream, &why));
    CHECK(why == "STARTTLS asked but not offered");
    CHECK_FALSE(starttls::may_proceed(InboundTls::Direct, *p.stream, &why));
}

TEST_CASE("starttls: an outbound link asks as its mode says, fails without the TLS it requires, or goes on") {
    auto with = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                                   "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>");
    auto required = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                                       "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                                       "</stream:features>");
    auto without = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>");
    REQUIRE(with);
    REQUIRE(required);
    REQUIRE(without);
    using starttls::ClientStep;
    std::string why;
    CHECK(starttls::on_features(OutboundTls::StartTls, false, false, with->root(), "b.test", &why) == ClientStep::Ask);
    CHECK(starttls::on_features(OutboundTls::None, false, true, with->root(), "b.test", &why) == ClientStep::Ask);
    CHECK(starttls::on_features(OutboundTls::None, false, false, with->root(), "b.test", &why) == ClientStep::Continue);
    CHECK(starttls::on_features(OutboundTls::StartTls, true, false, with->root(), "b.test", &why) == ClientStep::Continue);
    CHECK(starttls::on_features(OutboundTls::StartTls, false, false, without->root(), "b.test", &why) ==
          ClientStep::Continue);
    CHECK(why.empty());
    CHECK(starttls::on_features(OutboundTls::None, false, false, required->root(), "b.test", &why) == ClientStep::Fail);
    CHECK(why == "b.test requires TLS, but TLS is off here (s2s.use_starttls / s2s.outgoing.tls.mode)");
    CHECK(starttls::on_features(OutboundTls::StartTlsRequired, false, false, without->root(), "b.test", &why) ==
          ClientStep::Fail);
    CHECK(why == "b.test does not offer STARTTLS, which is required here");
    CHECK(starttls::pre_1_0_acceptable(OutboundTls::StartTls, false, "b.test", &why));
    CHECK(starttls::pre_1_0_acceptable(OutboundTls::Direct, true, "b.test", &why));
    CHECK_FALSE(starttls::pre_1_0_acceptable(OutboundTls::StartTlsRequired, false, "b.test", &why));
    CHECK(why == "b.test does not support STARTTLS, which is required");
    CHECK(starttls::kRequest == "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
}

TEST_CASE("starttls: asked after a domain was authenticated or a verification started, it is refused") {
    LogContext log{1, "a.test", "b.test"};
    std::string why;
    CHECK(starttls::early_enough(false, false, log, &why));
    CHECK(why.empty());
    CHECK_FALSE(starttls::early_enough(true, true, log, &why));
    CHECK(why == "STARTTLS asked after a domain was authenticated on the plain stream");
    CHECK_FALSE(starttls::early_enough(false, true, log, &why));
    CHECK(why == "STARTTLS asked after a dialback verification was started on the plain stream");
}
