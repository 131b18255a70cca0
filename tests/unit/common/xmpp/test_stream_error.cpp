// Stream and stanza error conditions: names, default types, exact bytes.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <string_view>

#include "common/xmpp/stanza_error.h"
#include "common/xmpp/stream_error.h"
#include "common/xmpp/xml_stream.h"

using namespace s2s;

namespace {
// The bytes append_stream_error() writes into an empty buffer.
std::string stream_error_bytes(StreamError e, std::string_view text = {}, std::string_view content = {}) {
    std::string out;
    append_stream_error(out, e, text, content);
    return out;
}
}  // namespace

TEST_CASE("xml/stream_error: every RFC 6120 4.9.3 condition has its element name") {
    const std::set<std::string> rfc = {
        "bad-format",          "bad-namespace-prefix",    "conflict",
        "connection-timeout",  "host-gone",               "host-unknown",
        "improper-addressing", "internal-server-error",   "invalid-from",
        "invalid-namespace",   "invalid-xml",             "not-authorized",
        "not-well-formed",     "policy-violation",        "remote-connection-failed",
        "reset",               "resource-constraint",     "restricted-xml",
        "see-other-host",      "system-shutdown",         "undefined-condition",
        "unsupported-encoding", "unsupported-feature",    "unsupported-stanza-type",
        "unsupported-version"};
    std::set<std::string> ours;
    for (std::size_t i = 0; i < kStreamErrorCount; ++i) {
        ours.insert(std::string(name(static_cast<StreamError>(i))));
    }
    CHECK(ours == rfc);
}

TEST_CASE("xml/stream_error: names map back to their condition") {
    for (std::size_t i = 0; i < kStreamErrorCount; ++i) {
        const auto e = static_cast<StreamError>(i);
        REQUIRE(stream_error_from_name(name(e)).has_value());
        CHECK(*stream_error_from_name(name(e)) == e);
    }
    CHECK_FALSE(stream_error_from_name("no-such-condition").has_value());
    CHECK(name(StreamError::NotWellFormed) == "not-well-formed");
    CHECK(name(StreamError::SeeOtherHost) == "see-other-host");
}

TEST_CASE("xml/stream_error: bytes without text") {
    CHECK(stream_error_bytes(StreamError::HostUnknown) ==
          "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
          "</stream:error>");
}

TEST_CASE("xml/stream_error: bytes with escaped text") {
    CHECK(stream_error_bytes(StreamError::PolicyViolation, "stanza > 10 bytes & <more>") ==
          "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
          "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>stanza &gt; 10 bytes &amp; "
          "&lt;more&gt;</text></stream:error>");
}

TEST_CASE("xml/stream_error: see-other-host carries the new host") {
    CHECK(stream_error_bytes(StreamError::SeeOtherHost, {}, "[2001:db8::1]:5269") ==
          "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
          "[2001:db8::1]:5269</see-other-host></stream:error>");
}

TEST_CASE("xml/stream_error: append keeps what is already in the buffer") {
    std::string out = "<x/>";
    append_stream_error(out, StreamError::Reset);
    CHECK(out == "<x/><stream:error><reset xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                 "</stream:error>");
}

TEST_CASE("xml/stream_error: the bytes parse as a stream:error element") {
    const std::string bytes = stream_error_bytes(StreamError::NotAuthorized, "who are you?");
    auto doc = xml::parse_element(bytes);
    REQUIRE(doc.has_value());
    const xml::Element root = doc->root();
    CHECK(root.is("error", xml::ns::streams));
    CHECK(root.child("not-authorized", kStreamErrorsNs));
    CHECK(root.child("text", kStreamErrorsNs).text() == "who are you?");
}

TEST_CASE("xml/stanza_error: every RFC 6120 8.3.3 condition with its default type") {
    const std::pair<const char*, const char*> rfc[] = {
        {"bad-request", "modify"},
        {"conflict", "cancel"},
        {"feature-not-implemented", "cancel"},
        {"forbidden", "auth"},
        {"gone", "cancel"},
        {"internal-server-error", "cancel"},
        {"item-not-found", "cancel"},
        {"jid-malformed", "modify"},
        {"not-acceptable", "modify"},
        {"not-allowed", "cancel"},
        {"not-authorized", "auth"},
        {"policy-violation", "modify"},
        {"recipient-unavailable", "wait"},
        {"redirect", "modify"},
        {"registration-required", "auth"},
        {"remote-server-not-found", "cancel"},
        {"remote-server-timeout", "wait"},
        {"resource-constraint", "wait"},
        {"service-unavailable", "cancel"},
        {"subscription-required", "auth"},
        {"undefined-condition", "cancel"},
        {"unexpected-request", "wait"},
    };
    CHECK(std::size(rfc) == kStanzaErrorCount);
    for (const auto& [cond, type] : rfc) {
        CAPTURE(cond);
        const auto e = stanza_error_from_name(cond);
        REQUIRE(e.has_value());
        CHECK(name(*e) == cond);
        CHECK(name(default_type(*e)) == type);
    }
}

TEST_CASE("xml/stanza_error: type names map back") {
    for (const char* t : {"auth", "cancel", "continue", "modify", "wait"}) {
        const auto type = stanza_error_type_from_name(t);
        REQUIRE(type.has_value());
        CHECK(name(*type) == t);
    }
    CHECK_FALSE(stanza_error_type_from_name("later").has_value());
    CHECK_FALSE(stanza_error_from_name("not-a-condition").has_value());
}

TEST_CASE("xml/stanza_error: bytes of an error child") {
    std::string out;
    append_stanza_error(out, StanzaError::RemoteServerNotFound, "DNS: no SRV for b.test");
    CHECK(out == "<error type='cancel'><remote-server-not-found "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>DNS: no SRV for b.test</text>"
                 "</error>");
}

TEST_CASE("xml/stanza_error: explicit type and by") {
    std::string out;
    append_stanza_error(out, StanzaError::PolicyViolation, {}, StanzaErrorType::Wait, "a.test");
    CHECK(out == "<error type='wait' by='a.test'><policy-violation "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>");
}

TEST_CASE("xml/stanza_error: add_stanza_error builds a bounce payload in the stanza namespace") {
    auto doc = xml::parse_element("<message from='a@a.test' to='b@b.test' id='m1'><body>hi</body></message>");
    REQUIRE(doc.has_value());
    const xml::Element msg = doc->root();
    add_stanza_error(*doc, msg, StanzaError::RemoteServerTimeout, "connect: timed out");
    CHECK(xml::to_string(msg, xml::NamespaceScope::server_stream()) ==
          "<message from='a@a.test' to='b@b.test' id='m1'><body>hi</body><error type='wait'>"
          "<remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
          "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>connect: timed out</text></error>"
          "</message>");
}
