// STARTTLS as a listener offers and answers it (proxy/starttls), on a stream that is not encrypted.
#include <doctest/doctest.h>

#include "proxy/starttls.h"
#include "tests/unit/loop_harness.h"

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
