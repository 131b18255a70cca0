// TLS toward the local server: what each local.tls mode makes of the server's features, fed with
// the features' wire bytes (the handshake and certificate checks run against a real server in
// test_local_link.cpp and test_local_component.cpp).
#include <doctest/doctest.h>

#include <uv.h>

#include "common/xml/xml.h"
#include "common/xmpp/xml_stream.h"
#include "proxy/local/local_tls_client.h"

using namespace s2s;
using local_tls::Offer;

namespace {

xml::Document features(const std::string& inner) {
    auto d = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>" + inner +
                                    "</stream:features>",
                                xml::NamespaceScope::server_stream());
    REQUIRE(d);
    return std::move(*d);
}

const char* const kOffered = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const char* const kRequired = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>";
const char* const kNone = "<dialback xmlns='urn:xmpp:features:dialback'/>";

Offer offer(const char* mode, const char* inner, std::string* why, bool check_name = true) {
    LocalTlsSettings s;
    s.mode = starttls::mode(mode);
    s.check_name = check_name;
    xml::Document d = features(inner);
    return local_tls::on_features(s, d.root(), why);
}

}  // namespace

TEST_CASE("local tls client: plain streams ignore an offered STARTTLS and stop at a required one") {
    std::string why;
    CHECK(offer("false", kNone, &why) == Offer::Continue);
    CHECK(offer("false", kOffered, &why) == Offer::Continue);  // (Prosody offers it anyway)
    CHECK(offer("false", kRequired, &why) == Offer::Fail);
    CHECK(why.find("the local server requires TLS on s2s: set local.tls.mode") == 0);
}

TEST_CASE("local tls client: direct TLS has nothing left to do at the features") {
    std::string why;
    CHECK(offer("tls", kNone, &why) == Offer::Continue);
    CHECK(offer("tls", kRequired, &why) == Offer::Continue);
}

TEST_CASE("local tls client: STARTTLS modes take the offer; a missing one stops them unless nothing is checked") {
    std::string why;
    for (const char* mode : {"starttls", "starttls_required"}) {
        CHECK(offer(mode, kOffered, &why) == Offer::StartTls);
        CHECK(offer(mode, kRequired, &why) == Offer::StartTls);
    }
    CHECK(offer("starttls", kNone, &why) == Offer::Fail);
    CHECK(why.find("does not offer STARTTLS, and local.tls.verify_mode asks for its certificate") != std::string::npos);
    CHECK(offer("starttls", kNone, &why, false) == Offer::Continue);  // verify_mode none
    CHECK(offer("starttls_required", kNone, &why, false) == Offer::Fail);
    CHECK(why.find("which local.tls.mode = \"starttls_required\" needs") != std::string::npos);
}

TEST_CASE("local tls client: a failed connect names the server and the cause") {
    CHECK(local_tls::connect_failure("127.0.0.1:5269", UV_ETIMEDOUT) ==
          "cannot connect to the local server at 127.0.0.1:5269: timed out");
    CHECK(local_tls::connect_failure("xmpp:5269", UV_ECONNREFUSED) ==
          std::string("cannot connect to the local server at xmpp:5269: ") + uv_strerror(UV_ECONNREFUSED));
}
