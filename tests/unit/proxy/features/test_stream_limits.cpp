// Stream limits (proxy/features/stream_limits, XEP-0478): the feature we list, and what is read
// from a remote's features. The keepalive and the bounce on a live link: test_s2s_out.cpp.
#include <doctest/doctest.h>

#include <string>

#include "common/xmpp/xml_stream.h"
#include "proxy/features/stream_limits.h"
#include "proxy/ops/metrics.h"

using namespace s2s;

namespace {

RemoteLimits read(const std::string& features) {
    auto d = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>" + features +
                                "</stream:features>");
    REQUIRE(d);
    RemoteLimits l;
    l.read(d->root());
    return l;
}

}  // namespace

TEST_CASE("stream_limits: the feature names max-bytes, and idle-seconds in whole seconds when one applies") {
    CHECK(limits_feature(10000, 600000) ==
          "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>"
          "<idle-seconds>600</idle-seconds></limits>");
    CHECK(limits_feature(524288, 2500) ==
          "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>524288</max-bytes>"
          "<idle-seconds>2</idle-seconds></limits>");
    // No idle timeout (stream_timeout = "infinity"), or one under a second: no idle-seconds.
    CHECK(limits_feature(1000, 0) == "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>1000</max-bytes></limits>");
    CHECK(limits_feature(1000, 999) == "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>1000</max-bytes></limits>");
}

TEST_CASE("stream_limits: a remote's limits are read from its features; junk, zero or absent is no limit") {
    RemoteLimits l = read("<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>"
                          "<idle-seconds> 1800 </idle-seconds></limits>");
    CHECK(l.max_bytes() == 10000);
    CHECK(l.idle_seconds() == 1800);
    CHECK(l.keepalive_ms() == 1200000);  // two thirds of it

    CHECK(read("").max_bytes() == 0);
    CHECK(read("<limits xmlns='urn:xmpp:stream-limits:0'/>").idle_seconds() == 0);
    CHECK(read("<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>-5</max-bytes></limits>").max_bytes() == 0);
    CHECK(read("<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>12k</max-bytes></limits>").max_bytes() == 0);
    CHECK(read("<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>0</max-bytes></limits>").max_bytes() == 0);
    CHECK(read("<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>99999999999</max-bytes></limits>").max_bytes() == 0);
    // The element in another namespace is not XEP-0478's.
    CHECK(read("<limits xmlns='urn:example'><max-bytes>100</max-bytes></limits>").max_bytes() == 0);
    // Keepalives never closer together than kMinKeepaliveMs.
    CHECK(read("<limits xmlns='urn:xmpp:stream-limits:0'><idle-seconds>0</idle-seconds></limits>").keepalive_ms() == 0);
    CHECK(read("<limits xmlns='urn:xmpp:stream-limits:0'><idle-seconds>1</idle-seconds></limits>").keepalive_ms() ==
          666);
    CHECK(RemoteLimits::kMinKeepaliveMs == 500);
}

TEST_CASE("stream_limits: later features replace the limits earlier ones advertised") {
    auto before = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                                     "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>10000</max-bytes>"
                                     "<idle-seconds>60</idle-seconds></limits></stream:features>");
    auto after = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                                    "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>262144</max-bytes></limits>"
                                    "</stream:features>");
    REQUIRE(before);
    REQUIRE(after);
    RemoteLimits l;
    l.read(before->root());
    CHECK(l.max_bytes() == 10000);
    l.read(after->root());
    CHECK(l.max_bytes() == 262144);
    CHECK(l.idle_seconds() == 0);
}

TEST_CASE("stream_limits: a stanza over the remote's max-bytes is refused with a text naming the limit; counted") {
    RemoteLimits l = read("<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>1000</max-bytes></limits>");
    LogContext log{1, "a.test", "b.test"};
    uint64_t before = metrics().stream_limits.get("too_large");
    CHECK_FALSE(l.refuse(1000, "b.test", log));
    auto refused = l.refuse(1001, "b.test", log);
    REQUIRE(refused);
    CHECK(*refused == "b.test accepts stanzas of at most 1000 bytes (XEP-0478 stream limits); this one has 1001");
    CHECK(metrics().stream_limits.get("too_large") == before + 1);
    // No limit advertised: anything goes (the remote's own parser is the judge).
    CHECK_FALSE(RemoteLimits{}.refuse(100000000, "b.test", log));
}
