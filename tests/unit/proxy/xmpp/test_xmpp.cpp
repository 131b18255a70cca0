// The shared protocol pieces.
#include <doctest/doctest.h>

#include "common/xmpp/xml_stream.h"
#include "proxy/xmpp/xmpp.h"

using namespace s2s;

TEST_CASE("xmpp: our stream header, with only the attributes given, escaped") {
    CHECK(stream_header("a.test", "b.test", "id1", true) ==
          "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
          "xmlns:db='jabber:server:dialback' from='a.test' to='b.test' id='id1' version='1.0'>");
    CHECK(stream_header("", "b'test", "", false).find("to='b&apos;test'>") != std::string::npos);
    CHECK(stream_header("", "b.test", "", false).find("from=") == std::string::npos);
}

TEST_CASE("xmpp: dialback answers, plain and with an error that parses back") {
    CHECK(dialback_answer("result", "a.test", "b.test", "", "valid") == "<db:result from='a.test' to='b.test' type='valid'/>");
    CHECK(dialback_answer("verify", "a.test", "b.test", "s1", "invalid") ==
          "<db:verify from='a.test' to='b.test' id='s1' type='invalid'/>");
    std::string e = dialback_answer("result", "a.test", "b.test", "", "error", "policy-violation", "denied <here>");
    CHECK(e.find("<error type='cancel'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>") != std::string::npos);
    CHECK(e.find("denied &lt;here&gt;") != std::string::npos);
    CHECK(xml::parse_element(e));
}

TEST_CASE("xmpp: versions and domains") {
    CHECK(major_version("1.0") == 1);
    CHECK(major_version("2.5") == 2);
    CHECK(major_version("") == 0);
    CHECK(major_version("x.0") == 0);
    CHECK(major_version("1") == 0);
    CHECK(domain_of("A.Test.") == "a.test");
    CHECK(domain_of("a..test").empty());
}
