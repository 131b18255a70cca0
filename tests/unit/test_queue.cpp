// Queued stanzas and bounces.
#include <doctest/doctest.h>

#include "common/xml_stream.h"
#include "proxy/queue.h"

using namespace s2s;

namespace {
QueuedStanza q(const char* xml) {
    auto doc = xml::parse_element(xml);
    REQUIRE(doc);
    return QueuedStanza::capture(doc->root(), xml::NamespaceScope::server_stream());
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
