// Streaming parser: callbacks under every chunking, stream errors, limits, reset, stop.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/xmpp/stream_error.h"
#include "common/xml/xml.h"
#include "common/xmpp/xml_stream.h"

using namespace s2s;
using namespace s2s::xml;

namespace {

const char kHeader[] =
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
    "xmlns:db='jabber:server:dialback' version='1.0' from='b.test' to='a.test' id='D9C3A3B6' "
    "xml:lang='en'>";

// A server-to-server stream as a peer sends it.
const std::string kSampleStream = std::string("<?xml version='1.0'?>") + kHeader +
    "<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
    "</stream:features>\n"
    "<db:result from='b.test' to='a.test'>37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643</db:result>"
    "  \n "
    "<message from='romeo@b.test/orchard' to='juliet@a.test' type='chat' id='m&amp;1' xml:lang='en'>"
    "<body>Wow, I'm green with envy! 1 &lt; 2 \xe2\x98\xba</body>"
    "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>"
    "<p style='font-size:large'><em>Wow</em>, I&apos;m <span style='color:green'>green</span>"
    " with <strong>envy</strong>!</p></body></html></message>"
    "<presence from='romeo@b.test/orchard' to='juliet@a.test'><c xmlns='http://jabber.org/protocol/caps' "
    "hash='sha-1' node='http://psi-im.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/><priority>5</priority>"
    "</presence>\n"
    "<iq type='set' from='romeo@b.test/orchard' to='pubsub.a.test' id='pub1'>"
    "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:metadata'>"
    "<item id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f'><metadata xmlns='urn:xmpp:avatar:metadata'>"
    "<info bytes='12345' height='64' id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f' type='image/png' "
    "width='64'/></metadata></item></publish></pubsub></iq>"
    "<db:verify from='b.test' to='a.test' id='417GAF25'>KEY2</db:verify>"
    "</stream:stream>";

// Records every callback as a line of text; optional hooks act on the stream from callbacks.
class Recorder : public XmlStream::Handler {
public:
    void on_stream_open(const StreamHeader& h) override {
        std::string s = "open " + h.prefix + ":" + h.name + " {" + h.ns + "}";
        for (const auto& d : h.namespaces) s += " xmlns" + (d.prefix.empty() ? "" : ":" + d.prefix) + "=" + d.uri;
        for (const auto& a : h.attributes) s += " {" + a.ns + "}" + a.name + "=" + a.value;
        events.push_back(s);
        if (open_hook) open_hook(h);
    }
    void on_stanza(Document& d) override {
        events.push_back("stanza " + to_string(d.root(), NamespaceScope::server_stream()));
        if (stanza_hook) stanza_hook(d);
    }
    void on_stream_close() override {
        events.push_back("close");
        if (close_hook) close_hook();
    }
    void on_stream_error(StreamError e, std::string_view text) override {
        events.push_back("error " + std::string(name(e)));
        error_text = std::string(text);
        if (error_hook) error_hook();
    }

    std::vector<std::string> events;
    std::string error_text;
    std::function<void(const StreamHeader&)> open_hook;
    std::function<void(Document&)> stanza_hook;
    std::function<void()> close_hook;
    std::function<void()> error_hook;
};

std::vector<std::string> parse_in_chunks(const std::string& input, const std::vector<std::size_t>& cuts,
                                         const StreamOptions& options = {}) {
    Recorder r;
    XmlStream s(r, options);
    std::size_t pos = 0;
    for (std::size_t cut : cuts) {
        (void)s.feed(input.data() + pos, cut - pos);
        pos = cut;
    }
    (void)s.feed(input.data() + pos, input.size() - pos);
    return r.events;
}

std::vector<std::string> parse_whole(const std::string& input, const StreamOptions& options = {}) {
    return parse_in_chunks(input, {}, options);
}

// Feeds the header, then `body`, and returns the error condition reported (or "none").
std::string error_of(const std::string& input, const StreamOptions& options = {}) {
    Recorder r;
    XmlStream s(r, options);
    const FeedResult res = s.feed(input);
    for (const std::string& e : r.events) {
        if (e.rfind("error ", 0) == 0) {
            CHECK(res.status == FeedStatus::Failed);
            CHECK(s.state() == XmlStream::State::Failed);
            CHECK(r.events.back() == e);  // nothing after the error
            return e.substr(6);
        }
    }
    return "none";
}

std::string with_header(const std::string& body) { return kHeader + body; }

}  // namespace

// --- Chunking --------------------------------------------------------------------------------

TEST_CASE("xml/stream: the sample stream produces the expected callbacks") {
    const auto events = parse_whole(kSampleStream);
    REQUIRE(events.size() == 8);
    CHECK(events[0] ==
          "open stream:stream {http://etherx.jabber.org/streams} xmlns=jabber:server "
          "xmlns:stream=http://etherx.jabber.org/streams xmlns:db=jabber:server:dialback "
          "{}version=1.0 {}from=b.test {}to=a.test {}id=D9C3A3B6 "
          "{http://www.w3.org/XML/1998/namespace}lang=en");
    CHECK(events[1] ==
          "stanza <stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/>"
          "</dialback></stream:features>");
    CHECK(events[2] ==
          "stanza <db:result from='b.test' to='a.test'>"
          "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643</db:result>");
    CHECK(events[3].rfind("stanza <message from='romeo@b.test/orchard' to='juliet@a.test' "
                          "type='chat' id='m&amp;1' xml:lang='en'><body>Wow, I'm green with envy! "
                          "1 &lt; 2 \xe2\x98\xba</body><html xmlns='http://jabber.org/protocol/xhtml-im'>",
                          0) == 0);
    CHECK(events[4] ==
          "stanza <presence from='romeo@b.test/orchard' to='juliet@a.test'><c "
          "xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' "
          "ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/><priority>5</priority></presence>");
    CHECK(events[5].rfind("stanza <iq type='set'", 0) == 0);
    CHECK(events[6] == "stanza <db:verify from='b.test' to='a.test' id='417GAF25'>KEY2</db:verify>");
    CHECK(events[7] == "close");
}

TEST_CASE("xml/stream: every two-chunk split gives identical callbacks") {
    const auto reference = parse_whole(kSampleStream);
    for (std::size_t cut = 0; cut <= kSampleStream.size(); ++cut) {
        const auto events = parse_in_chunks(kSampleStream, {cut});
        if (events != reference) {
            CAPTURE(cut);
            CHECK(events == reference);
            break;
        }
    }
}

TEST_CASE("xml/stream: byte-by-byte feeding gives identical callbacks") {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < kSampleStream.size(); ++i) cuts.push_back(i);
    CHECK(parse_in_chunks(kSampleStream, cuts) == parse_whole(kSampleStream));
}

TEST_CASE("xml/stream: random multi-chunk splits give identical callbacks") {
    const auto reference = parse_whole(kSampleStream);
    std::mt19937 rng(20240611);
    for (int round = 0; round < 300; ++round) {
        std::uniform_int_distribution<std::size_t> pick(0, kSampleStream.size());
        std::vector<std::size_t> cuts;
        for (int i = 0; i < 6; ++i) cuts.push_back(pick(rng));
        std::sort(cuts.begin(), cuts.end());
        const auto events = parse_in_chunks(kSampleStream, cuts);
        if (events != reference) {
            CAPTURE(round);
            CHECK(events == reference);
            break;
        }
    }
}

TEST_CASE("xml/stream: the header exposes attributes, namespaces and a matching scope") {
    Recorder r;
    XmlStream s(r);
    REQUIRE(s.feed(kHeader).status == FeedStatus::Ok);
    REQUIRE(s.state() == XmlStream::State::Open);
    const StreamHeader& h = s.header();
    CHECK(h.attr("from") == std::optional<std::string_view>("b.test"));
    CHECK(h.attr("version") == std::optional<std::string_view>("1.0"));
    CHECK(h.attr("lang", ns::xml) == std::optional<std::string_view>("en"));
    CHECK_FALSE(h.attr("lang").has_value());
    CHECK(h.content_namespace() == ns::server);
    const NamespaceScope scope = h.scope();
    CHECK(scope.default_ns() == ns::server);
    CHECK(scope.prefix_for(ns::dialback) == "db");
    CHECK(scope.prefix_for(ns::streams) == "stream");
}

TEST_CASE("xml/stream: an empty id is kept (Prosody sends id='')") {
    Recorder r;
    XmlStream s(r);
    REQUIRE(s.feed("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' id=''>").status == FeedStatus::Ok);
    REQUIRE(s.header().attr("id").has_value());
    CHECK(s.header().attr("id")->empty());
}

TEST_CASE("xml/stream: an XML declaration before the header is accepted") {
    for (const char* decl : {"<?xml version='1.0'?>", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                             "<?xml version='1.0' encoding='utf-8'?>\n", "\xef\xbb\xbf<?xml version='1.0'?>"}) {
        CAPTURE(decl);
        const auto events = parse_whole(std::string(decl) + kHeader);
        REQUIRE(events.size() == 1);
        CHECK(events[0].rfind("open ", 0) == 0);
    }
}

TEST_CASE("xml/stream: whitespace keepalives between stanzas are ignored") {
    const auto events = parse_whole(with_header(" \n\t\r\n <message/> \n <message/>  "));
    CHECK(events.size() == 3);
}

TEST_CASE("xml/stream: a component stream is accepted when configured") {
    StreamOptions options;
    options.content_namespaces = {std::string(ns::component_accept)};
    const auto events = parse_whole(
        "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' "
        "to='muc.a.test'><handshake>aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake>",
        options);
    REQUIRE(events.size() == 2);
    CHECK(events[1] == "stanza <handshake xmlns='jabber:component:accept'>"
                       "aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e</handshake>");
}

TEST_CASE("xml/stream: feeding nothing is fine") {
    Recorder r;
    XmlStream s(r);
    const FeedResult res = s.feed("", 0);
    CHECK(res.status == FeedStatus::Ok);
    CHECK(res.consumed == 0);
    CHECK(r.events.empty());
}

// --- Stream errors ---------------------------------------------------------------------------

TEST_CASE("xml/stream error: not-well-formed for mismatched tags") {
    CHECK(error_of(with_header("<message><body></message>")) == "not-well-formed");
}

TEST_CASE("xml/stream error: not-well-formed for garbage before the header") {
    CHECK(error_of("hello <") == "not-well-formed");
    CHECK(error_of("<message/>") == "invalid-namespace");
}

TEST_CASE("xml/stream error: not-well-formed for a duplicate attribute") {
    CHECK(error_of(with_header("<message to='a' to='b'/>")) == "not-well-formed");
}

TEST_CASE("xml/stream error: not-well-formed for invalid UTF-8") {
    const char* const bad[] = {
        "\xc3\x28",          // bad continuation byte
        "\xc0\xaf",          // overlong '/'
        "\xed\xa0\x80",      // UTF-16 surrogate
        "\xf4\x90\x80\x80",  // above U+10FFFF
        "\xff",              // never valid
        "\xe2\x82",          // truncated, then '<'
    };
    for (const char* b : bad) {
        CAPTURE(b);
        CHECK(error_of(with_header(std::string("<message><body>") + b + "</body></message>")) ==
              "not-well-formed");
        CHECK(error_of(with_header(std::string("<message to='") + b + "'/>")) == "not-well-formed");
    }
}

TEST_CASE("xml/stream error: not-well-formed for a forbidden character reference") {
    CHECK(error_of(with_header("<message><body>&#1;</body></message>")) == "not-well-formed");
}

TEST_CASE("xml/stream error: invalid-namespace for a header that is not stream:stream") {
    CHECK(error_of("<stream:features xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server'>") ==
          "invalid-namespace");
}

TEST_CASE("xml/stream error: invalid-namespace for a wrong stream namespace") {
    CHECK(error_of("<stream:stream xmlns:stream='http://etherx.jabber.org/stream' xmlns='jabber:server'>") ==
          "invalid-namespace");
}

TEST_CASE("xml/stream error: invalid-namespace for an unexpected content namespace") {
    CHECK(error_of("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'>") ==
          "invalid-namespace");
}

TEST_CASE("xml/stream error: invalid-namespace when no content namespace is declared") {
    CHECK(error_of("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>") ==
          "invalid-namespace");
}

TEST_CASE("xml/stream error: invalid-namespace when content and stream namespace coincide") {
    StreamOptions any;
    any.content_namespaces.clear();
    CHECK(error_of("<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                   "xmlns='http://etherx.jabber.org/streams'>",
                   any) == "invalid-namespace");
}

TEST_CASE("xml/stream error: bad-namespace-prefix for an unprefixed stream element") {
    CHECK(error_of("<stream xmlns='http://etherx.jabber.org/streams'>") == "bad-namespace-prefix");
}

TEST_CASE("xml/stream error: bad-namespace-prefix for an unbound prefix") {
    CHECK(error_of("<stream:stream xmlns='jabber:server'>") == "bad-namespace-prefix");
    CHECK(error_of(with_header("<foo:message/>")) == "bad-namespace-prefix");
}

TEST_CASE("xml/stream: another prefix for the stream namespace is accepted") {
    const auto events = parse_whole(
        "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:server'><s:features/>");
    REQUIRE(events.size() == 2);
    CHECK(events[1] == "stanza <stream:features/>");
}

TEST_CASE("xml/stream error: restricted-xml for a DOCTYPE") {
    CHECK(error_of("<?xml version='1.0'?><!DOCTYPE stream>") == "restricted-xml");
}

TEST_CASE("xml/stream error: restricted-xml for a comment") {
    CHECK(error_of(with_header("<message><!-- hi --></message>")) == "restricted-xml");
    CHECK(error_of("<!-- before the header -->") == "restricted-xml");
}

TEST_CASE("xml/stream error: restricted-xml for a processing instruction") {
    CHECK(error_of(with_header("<message><?php echo 1; ?></message>")) == "restricted-xml");
    CHECK(error_of("<?xml-stylesheet href='a.xsl'?>") == "restricted-xml");
}

TEST_CASE("xml/stream error: restricted-xml for an undefined entity reference") {
    CHECK(error_of(with_header("<message><body>&nbsp;</body></message>")) == "restricted-xml");
    CHECK(error_of(with_header("<message to='&foo;'/>")) == "restricted-xml");
}

TEST_CASE("xml/stream: the five predefined entities and character references are fine") {
    const auto events = parse_whole(with_header("<message><body>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;</body></message>"));
    REQUIRE(events.size() == 2);
    CHECK(events[1] == "stanza <message><body>&lt;&gt;&amp;\"'AB</body></message>");
}

TEST_CASE("xml/stream error: billion laughs is refused at the DOCTYPE, without cost") {
    std::string lol = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>";
    lol += "<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>";
    for (int i = 2; i <= 9; ++i) {
        lol += "<!ENTITY lol" + std::to_string(i) + " '";
        for (int j = 0; j < 10; ++j) lol += "&lol" + std::to_string(i - 1) + ";";
        lol += "'>";
    }
    lol += "]><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>"
           "<message><body>&lol9;</body></message>";
    const std::size_t before = XmlStream::expat_memory_in_use();
    Recorder r;
    XmlStream s(r);
    const FeedResult res = s.feed(lol);
    CHECK(res.status == FeedStatus::Failed);
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0] == "error restricted-xml");
    CHECK(XmlStream::expat_memory_in_use() - before < 64 * 1024);
}

TEST_CASE("xml/stream error: unsupported-encoding for a non-UTF-8 declaration") {
    CHECK(error_of("<?xml version='1.0' encoding='ISO-8859-1'?>") == "unsupported-encoding");
    CHECK(error_of("<?xml version='1.0' encoding='UTF-16'?>") == "unsupported-encoding");
}

TEST_CASE("xml/stream error: bad-format for text between stanzas") {
    CHECK(error_of(with_header("<message/>hello<message/>")) == "bad-format");
}

TEST_CASE("xml/stream error: no callback follows an error, stanzas before it were delivered") {
    Recorder r;
    XmlStream s(r);
    const FeedResult res =
        s.feed(with_header("<message id='1'/><message id='2'><!-- x --></message><message id='3'/></stream:stream>"));
    CHECK(res.status == FeedStatus::Failed);
    REQUIRE(r.events.size() == 3);
    CHECK(r.events[1] == "stanza <message id='1'/>");
    CHECK(r.events[2] == "error restricted-xml");
    CHECK(s.feed("<message/>").status == FeedStatus::Failed);
    CHECK(r.events.size() == 3);
}

TEST_CASE("xml/stream error: an exception from a handler becomes internal-server-error") {
    Recorder r;
    r.stanza_hook = [](Document&) { throw std::runtime_error("handler bug"); };
    XmlStream s(r);
    CHECK(s.feed(with_header("<message/><message/>")).status == FeedStatus::Failed);
    REQUIRE(r.events.size() == 3);
    CHECK(r.events[2] == "error internal-server-error");
    CHECK(r.error_text == "handler bug");
}

TEST_CASE("xml/stream error: the error text says where") {
    Recorder r;
    XmlStream s(r);
    (void)s.feed(with_header("\n<message></iq>"));
    CHECK(r.error_text.find("line 2") != std::string::npos);
}

// --- Limits ----------------------------------------------------------------------------------

namespace {

std::string message_of_size(std::size_t total) {
    const std::string open = "<message><body>";
    const std::string close = "</body></message>";
    REQUIRE(total >= open.size() + close.size());
    return open + std::string(total - open.size() - close.size(), 'x') + close;
}

StreamOptions small_stanzas(std::size_t max) {
    StreamOptions o;
    o.limits.max_stanza_size = max;
    return o;
}

}  // namespace

TEST_CASE("xml/stream limit: a stanza of exactly max_stanza_size passes, one byte more fails") {
    const StreamOptions o = small_stanzas(1000);
    CHECK(error_of(with_header(message_of_size(1000) + message_of_size(1000)), o) == "none");
    CHECK(error_of(with_header(message_of_size(1001)), o) == "policy-violation");
}

TEST_CASE("xml/stream limit: the limit holds under any chunking") {
    const StreamOptions o = small_stanzas(1000);
    const std::string ok = with_header(message_of_size(1000));
    const std::string bad = with_header(message_of_size(1001));
    for (std::size_t cut = 0; cut <= bad.size(); cut += 7) {
        CAPTURE(cut);
        auto events = parse_in_chunks(bad, {cut}, o);
        REQUIRE(events.size() == 2);
        CHECK(events[1] == "error policy-violation");
        events = parse_in_chunks(ok, {std::min(cut, ok.size())}, o);
        REQUIRE(events.size() == 2);
        CHECK(events[1].rfind("stanza ", 0) == 0);
    }
}

TEST_CASE("xml/stream limit: an oversized stanza fails before it has fully arrived") {
    const StreamOptions o = small_stanzas(1000);
    const std::string big = message_of_size(4000);
    Recorder r;
    XmlStream s(r, o);
    REQUIRE(s.feed(kHeader).status == FeedStatus::Ok);
    // Half of the stanza, in one chunk bigger than the limit: rejected right away.
    const FeedResult res = s.feed(big.substr(0, 2000));
    CHECK(res.status == FeedStatus::Failed);
    REQUIRE(r.events.size() == 2);
    CHECK(r.events[1] == "error policy-violation");
    CHECK(r.error_text.find("1000") != std::string::npos);
}

TEST_CASE("xml/stream limit: a huge chunk is refused without being buffered") {
    const StreamOptions o = small_stanzas(64 * 1024);
    const std::string huge = message_of_size(8 * 1024 * 1024);
    Recorder r;
    XmlStream s(r, o);
    REQUIRE(s.feed(kHeader).status == FeedStatus::Ok);
    const std::size_t before = XmlStream::expat_memory_in_use();
    CHECK(s.feed(huge).status == FeedStatus::Failed);
    CHECK(XmlStream::expat_memory_in_use() - before < 64 * 1024);
    CHECK(s.memory_usage() < 256 * 1024);
}

TEST_CASE("xml/stream limit: the count restarts for every stanza") {
    const StreamOptions o = small_stanzas(200);
    std::string body;
    for (int i = 0; i < 100; ++i) body += message_of_size(150) + "\n";
    const auto events = parse_whole(with_header(body), o);
    CHECK(events.size() == 101);
    CHECK(events.back().rfind("stanza", 0) == 0);
}

TEST_CASE("xml/stream limit: whitespace keepalives do not add up to a stanza") {
    const StreamOptions o = small_stanzas(300);
    Recorder r;
    XmlStream s(r, o);
    REQUIRE(s.feed(kHeader).status == FeedStatus::Ok);
    for (int i = 0; i < 1000; ++i) REQUIRE(s.feed(" ").status == FeedStatus::Ok);
    CHECK(s.feed("<message/>").status == FeedStatus::Ok);
    CHECK(r.events.size() == 2);
}

TEST_CASE("xml/stream limit: an oversized stream header is refused") {
    const StreamOptions o = small_stanzas(300);
    std::string header = kHeader;
    header.insert(header.size() - 1, " x='" + std::string(400, 'a') + "'");
    CHECK(error_of(header, o) == "policy-violation");
}

TEST_CASE("xml/stream limit: max_tag_size bounds one start tag") {
    StreamOptions o;
    o.limits.max_tag_size = 1024;
    CHECK(error_of(with_header("<message to='" + std::string(2000, 'a') + "'/>"), o) == "policy-violation");
    // The same bytes as text or CDATA are fine: expat reports them as they arrive.
    CHECK(error_of(with_header("<message><body>" + std::string(20000, 'a') + "</body></message>"), o) == "none");
    CHECK(error_of(with_header("<message><body><![CDATA[" + std::string(20000, 'a') + "]]></body></message>"), o) == "none");
}

TEST_CASE("xml/stream limit: a large tag fed byte by byte is refused at the limit") {
    StreamOptions o;
    o.limits.max_tag_size = 512;
    Recorder r;
    XmlStream s(r, o);
    REQUIRE(s.feed(kHeader).status == FeedStatus::Ok);
    const std::string tag = "<message to='" + std::string(1000, 'a');
    std::size_t fed = 0;
    FeedStatus st = FeedStatus::Ok;
    for (; fed < tag.size() && st == FeedStatus::Ok; ++fed) st = s.feed(tag.data() + fed, 1).status;
    CHECK(st == FeedStatus::Failed);
    CHECK(fed == 513);
}

TEST_CASE("xml/stream limit: nesting depth") {
    StreamOptions o;
    o.limits.max_depth = 4;
    CHECK(error_of(with_header("<message><a><b><c/></b></a></message>"), o) == "none");
    CHECK(error_of(with_header("<message><a><b><c><d/></c></b></a></message>"), o) == "policy-violation");
}

TEST_CASE("xml/stream limit: default depth limit stops deep nesting") {
    std::string deep;
    for (int i = 0; i < 1000; ++i) deep += "<a>";
    CHECK(error_of(with_header("<message>" + deep)) == "policy-violation");
}

TEST_CASE("xml/stream limit: attribute count") {
    StreamOptions o;
    o.limits.max_attributes = 3;
    const std::string header =
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
        "from='b.test' to='a.test' version='1.0'>";
    CHECK(error_of(header + "<message a='1' b='2' c='3'/>", o) == "none");
    CHECK(error_of(header + "<message a='1' b='2' c='3' d='4'/>", o) == "policy-violation");
    CHECK(error_of(with_header(""), o) == "policy-violation");  // the header counts too
}

// --- Owner control: reset, stop, close, destroy -------------------------------------------------

// --- Memory and time of one stanza; the process-wide budget ---------------------------------

namespace {

std::string bombs(std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += "<a/>";
    return s;
}

}  // namespace

TEST_CASE("xml/stream limit: max_stanza_elements counts the stanza and its descendants") {
    StreamOptions o;
    o.limits.max_stanza_elements = 10;
    CHECK(error_of(with_header("<message>" + bombs(9) + "</message>"), o) == "none");
    Recorder r;
    XmlStream s(r, o);
    CHECK(s.feed(with_header("<message>" + bombs(10))).status == FeedStatus::Failed);
    CHECK(r.events.back() == "error policy-violation");
    CHECK(r.error_text == "too many elements in one stanza (limit 10)");
    CHECK(s.limit_hit() == LimitHit::Elements);
    CHECK(std::string(limit_name(s.limit_hit())) == "elements");
}

TEST_CASE("xml/stream limit: max_stanza_memory stops a tree bomb long before its bytes do") {
    // 1 MiB of <a/> is far below max_stanza_size here, but its tree would take ~16 MiB.
    StreamOptions o;
    o.limits.max_stanza_size = 4 * 1024 * 1024;
    o.limits.max_stanza_elements = 10000000;
    o.limits.max_stanza_memory = 256 * 1024;
    Recorder r;
    XmlStream s(r, o);
    REQUIRE(s.feed(with_header("<message>")).status == FeedStatus::Ok);
    const std::string chunk = bombs(1024);
    std::size_t fed = 0;
    while (fed < 1024 * 1024 && s.feed(chunk).status == FeedStatus::Ok) fed += chunk.size();
    CHECK(s.state() == XmlStream::State::Failed);
    CHECK(s.limit_hit() == LimitHit::Memory);
    CHECK(r.events.back() == "error policy-violation");
    // Cut off at the limit: 256 KiB of tree is about 4096 nodes, 16 KiB of input.
    CHECK(fed < 64 * 1024);
    CHECK(s.memory_usage() < 4 * 1024);  // the dead stream's tree is freed
}

TEST_CASE("xml/stream limit: a text stanza of max_stanza_size fits in the default tree memory") {
    StreamOptions o;
    o.limits.max_stanza_size = 512 * 1024;
    o.limits.max_stanza_memory = StreamLimits::memory_for(o.limits.max_stanza_size);
    CHECK(error_of(with_header(message_of_size(512 * 1024)), o) == "none");
    // Chunked as a socket delivers it: the text buffer grows piece by piece.
    const std::string input = with_header(message_of_size(512 * 1024));
    std::vector<std::size_t> cuts;
    for (std::size_t c = 1000; c < input.size(); c += 1000) cuts.push_back(c);
    const auto events = parse_in_chunks(input, cuts, o);
    REQUIRE(events.size() == 2);
    CHECK(events[1].rfind("stanza <message>", 0) == 0);
}

TEST_CASE("xml/stream limit: RFC 6120's 10000-byte floor holds for any shape under the smallest allowed settings") {
    StreamOptions o;
    o.limits.max_stanza_size = 10000;
    o.limits.max_stanza_memory = StreamLimits::memory_for(10000);
    o.limits.max_stanza_elements = 2500;  // general.max_stanza_elements' lower bound
    const std::string open = "<message>", close = "</message>";
    std::string mixed;  // elements and text nodes interleaved
    while (open.size() + mixed.size() + 5 + close.size() <= 10000) mixed += "<a/>x";
    CHECK(error_of(with_header(open + mixed + close), o) == "none");
    CHECK(error_of(with_header(open + bombs((10000 - open.size() - close.size()) / 4 - 1) + close), o) == "none");
    std::string attrs = "<a";
    for (int i = 0; i < 64; ++i) attrs += " b" + std::to_string(i) + "=''";
    attrs += "/>";
    std::string many_attrs;
    while (open.size() + many_attrs.size() + attrs.size() + close.size() <= 10000) many_attrs += attrs;
    CHECK(error_of(with_header(open + many_attrs + close), o) == "none");
}

TEST_CASE("xml/stream: the unauthenticated limits hold until set_authenticated()") {
    StreamOptions o;
    o.limits.max_stanza_size = 100000;
    o.unauthenticated = StreamLimits::unauthenticated();
    const std::string big = message_of_size(20000);  // over 16 KiB
    {
        Recorder r;
        XmlStream s(r, o);
        CHECK_FALSE(s.authenticated());
        CHECK(s.limits().max_stanza_size == 16 * 1024);
        CHECK(s.feed(with_header(big)).status == FeedStatus::Failed);
        CHECK(s.limit_hit() == LimitHit::StanzaSize);
        CHECK(r.error_text == "stanza too large (limit 16384)");
    }
    {
        Recorder r;
        XmlStream s(r, o);
        REQUIRE(s.feed(with_header("<db:result from='b.test' to='a.test'>k</db:result>")).status == FeedStatus::Ok);
        s.set_authenticated();
        CHECK(s.authenticated());
        CHECK(s.feed(big).status == FeedStatus::Ok);
        CHECK(r.events.back().rfind("stanza <message>", 0) == 0);
        s.reset();  // a restarted stream keeps what the owner said
        CHECK(s.authenticated());
    }
    {
        // An unauthenticated limit above the configured one is capped by it.
        StreamOptions tight = o;
        tight.limits.max_stanza_size = 10000;
        Recorder r;
        XmlStream s(r, tight);
        CHECK(s.limits().max_stanza_size == 10000);
        CHECK(s.limits().max_stanza_elements == 500);
    }
}

TEST_CASE("xml/stream: unfinished_bytes and items_done tell when a stanza began") {
    Recorder r;
    XmlStream s(r);
    REQUIRE(s.feed(kHeader).status == FeedStatus::Ok);
    CHECK(s.unfinished_bytes() == 0);
    const std::uint64_t after_header = s.items_done();
    REQUIRE(s.feed("  \n").status == FeedStatus::Ok);  // a whitespace keepalive is no stanza
    CHECK(s.unfinished_bytes() == 0);
    REQUIRE(s.feed("<message><bo").status == FeedStatus::Ok);
    CHECK(s.unfinished_bytes() == 12);
    const std::uint64_t started = s.items_done();
    CHECK(started > after_header);
    REQUIRE(s.feed("dy>x").status == FeedStatus::Ok);
    CHECK(s.items_done() == started);  // the same stanza
    REQUIRE(s.feed("</body></message><iq").status == FeedStatus::Ok);
    CHECK(s.unfinished_bytes() == 3);
    CHECK(s.items_done() > started);  // a newer one
    REQUIRE(s.feed("/>").status == FeedStatus::Ok);
    CHECK(s.unfinished_bytes() == 0);
}

TEST_CASE("xml/stream budget: the running total follows unfinished stanzas only") {
    const std::size_t before = XmlStream::stanza_memory_in_use();
    Recorder r;
    XmlStream s(r);
    REQUIRE(s.feed(with_header("<message>" + bombs(100))).status == FeedStatus::Ok);
    CHECK(s.accounted_memory() > 100 * sizeof(detail::NodeRec));
    CHECK(XmlStream::stanza_memory_in_use() == before + s.accounted_memory());
    REQUIRE(s.feed("</message>").status == FeedStatus::Ok);
    CHECK(s.accounted_memory() == 0);
    CHECK(XmlStream::stanza_memory_in_use() == before);
    REQUIRE(s.feed("<message>" + bombs(10)).status == FeedStatus::Ok);
    {
        Recorder r2;
        XmlStream gone(r2);
        REQUIRE(gone.feed(with_header("<iq>" + bombs(10))).status == FeedStatus::Ok);
        CHECK(XmlStream::stanza_memory_in_use() == before + s.accounted_memory() + gone.accounted_memory());
    }
    CHECK(XmlStream::stanza_memory_in_use() == before + s.accounted_memory());  // a destroyed stream leaves
    s.reset();
    CHECK(XmlStream::stanza_memory_in_use() == before);
}

TEST_CASE("xml/stream budget: past it the largest unfinished stanza is cut off, whichever stream fed last") {
    REQUIRE(XmlStream::stanza_memory_in_use() == 0);
    Recorder big_r, small_r;
    XmlStream big(big_r), small(small_r);
    REQUIRE(big.feed(with_header("<message>" + bombs(2000))).status == FeedStatus::Ok);
    REQUIRE(small.feed(with_header("<message>" + bombs(100))).status == FeedStatus::Ok);
    const std::size_t total = XmlStream::stanza_memory_in_use();
    REQUIRE(big.accounted_memory() > small.accounted_memory());
    XmlStream::set_memory_budget(total);  // nothing over it yet
    REQUIRE(small.feed(bombs(1)).status == FeedStatus::Ok);
    CHECK(big.state() == XmlStream::State::Open);
    XmlStream::set_memory_budget(total - 1);
    // The small stream's next bytes find the total over budget: the big one goes, at once.
    CHECK(small.feed(bombs(1)).status == FeedStatus::Ok);
    CHECK(big.state() == XmlStream::State::Failed);
    CHECK(big_r.events.back() == "error resource-constraint");
    CHECK(big.limit_hit() == LimitHit::Budget);
    CHECK(big.accounted_memory() == 0);
    CHECK(big.memory_usage() < 2048);  // the header only
    CHECK(small.state() == XmlStream::State::Open);
    CHECK(XmlStream::stanza_memory_in_use() == small.accounted_memory());
    CHECK(big.feed("</message>").status == FeedStatus::Failed);  // nothing after the error
    CHECK(big_r.events.back() == "error resource-constraint");
    // The one feeding may be the largest itself.
    XmlStream::set_memory_budget(small.accounted_memory() + 1);
    CHECK(small.feed(bombs(500)).status == FeedStatus::Failed);
    CHECK(small.limit_hit() == LimitHit::Budget);
    CHECK(XmlStream::stanza_memory_in_use() == 0);
    XmlStream::set_memory_budget(0);
}

TEST_CASE("xml/stream budget: the owner of the stream cut off may destroy it from the error callback") {
    REQUIRE(XmlStream::stanza_memory_in_use() == 0);
    Recorder big_r, small_r;
    auto big = std::make_unique<XmlStream>(big_r);
    XmlStream small(small_r);
    big_r.error_hook = [&] { big.reset(); };
    REQUIRE(big->feed(with_header("<message>" + bombs(2000))).status == FeedStatus::Ok);
    REQUIRE(small.feed(with_header("<message>" + bombs(10))).status == FeedStatus::Ok);
    XmlStream::set_memory_budget(XmlStream::stanza_memory_in_use() - 1);
    CHECK(small.feed(bombs(1)).status == FeedStatus::Ok);
    CHECK(big == nullptr);
    CHECK(big_r.events.back() == "error resource-constraint");
    CHECK(XmlStream::stanza_memory_in_use() == small.accounted_memory());
    XmlStream::set_memory_budget(0);
}

TEST_CASE("xml/stream: cut_off outside feed reports once; inside a callback it waits for feed to return") {
    Recorder r;
    XmlStream s(r);
    REQUIRE(s.feed(with_header("<message><body>x")).status == FeedStatus::Ok);
    s.cut_off(StreamError::PolicyViolation, "late", LimitHit::Timeout);
    CHECK(r.events.back() == "error policy-violation");
    CHECK(r.error_text == "late");
    CHECK(s.limit_hit() == LimitHit::Timeout);
    CHECK_FALSE(s.has_parser());
    s.cut_off(StreamError::PolicyViolation, "again", LimitHit::Timeout);
    CHECK(std::count(r.events.begin(), r.events.end(), "error policy-violation") == 1);

    Recorder r2;
    XmlStream s2(r2);
    r2.stanza_hook = [&](Document&) { s2.cut_off(StreamError::ResourceConstraint, "now", LimitHit::Budget); };
    CHECK(s2.feed(with_header("<iq/><iq/>")).status == FeedStatus::Failed);
    CHECK(r2.events.size() == 3);  // open, the first stanza, the error
    CHECK(r2.events.back() == "error resource-constraint");
}

TEST_CASE("xml/stream: reset after STARTTLS accepts a new header on the same object") {
    Recorder r;
    XmlStream s(r);
    REQUIRE(s.feed(with_header("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")).status == FeedStatus::Ok);
    s.reset();
    CHECK(s.state() == XmlStream::State::AwaitingHeader);
    CHECK(s.header().namespaces.empty());
    REQUIRE(s.feed(std::string("<?xml version='1.0'?>") + kHeader + "<db:result from='b.test' to='a.test'>K</db:result>").status == FeedStatus::Ok);
    REQUIRE(r.events.size() == 4);
    CHECK(r.events[2].rfind("open ", 0) == 0);
    CHECK(r.events[3] == "stanza <db:result from='b.test' to='a.test'>K</db:result>");
}

TEST_CASE("xml/stream: reset from inside a callback stops after that element") {
    Recorder r;
    XmlStream s(r);
    r.stanza_hook = [&](Document& d) {
        if (d.root().is("proceed", ns::tls)) s.reset();
    };
    const std::string before = with_header("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    const std::string tls_bytes = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03<garbage";
    const FeedResult res = s.feed(before + tls_bytes);
    CHECK(res.status == FeedStatus::Stopped);
    CHECK(res.consumed == before.size());
    CHECK(r.events.size() == 2);  // no error for the bytes that follow
    CHECK(s.state() == XmlStream::State::AwaitingHeader);
    REQUIRE(s.feed(kHeader).status == FeedStatus::Ok);
    CHECK(r.events.size() == 3);
}

TEST_CASE("xml/stream: stop from a callback suppresses later callbacks") {
    Recorder r;
    XmlStream s(r);
    r.stanza_hook = [&](Document&) { s.stop(); };
    const std::string first = with_header("<message id='1'/>");
    const FeedResult res = s.feed(first + "<message id='2'/></stream:stream>");
    CHECK(res.status == FeedStatus::Stopped);
    CHECK(res.consumed == first.size());
    CHECK(r.events.size() == 2);
    CHECK(s.state() == XmlStream::State::Stopped);
    const FeedResult again = s.feed("<message/>");
    CHECK(again.status == FeedStatus::Stopped);
    CHECK(again.consumed == 0);
    CHECK(r.events.size() == 2);
}

TEST_CASE("xml/stream: stop from the header callback suppresses everything after it") {
    Recorder r;
    XmlStream s(r);
    r.open_hook = [&](const StreamHeader&) { s.stop(); };
    const FeedResult res = s.feed(with_header("<message/>"));
    CHECK(res.status == FeedStatus::Stopped);
    CHECK(res.consumed == std::string(kHeader).size());
    CHECK(r.events.size() == 1);
}

TEST_CASE("xml/stream: stop inside an empty element sees no end callback") {
    Recorder r;
    XmlStream s(r);
    int stanzas = 0;
    r.stanza_hook = [&](Document&) {
        ++stanzas;
        s.stop();
    };
    (void)s.feed(with_header("<a/><b/><c/>"));
    CHECK(stanzas == 1);
}

TEST_CASE("xml/stream: the stream close is reported once and ends parsing") {
    Recorder r;
    XmlStream s(r);
    const std::string all = with_header("<message/></stream:stream>");
    const FeedResult res = s.feed(all + "trailing junk <<<");
    CHECK(res.status == FeedStatus::Closed);
    CHECK(res.consumed == all.size());
    REQUIRE(r.events.size() == 3);
    CHECK(r.events[2] == "close");
    CHECK(s.state() == XmlStream::State::Closed);
    CHECK(s.feed("<message/>").status == FeedStatus::Closed);
    CHECK(r.events.size() == 3);
}

TEST_CASE("xml/stream: the owner may destroy the stream from a stanza callback") {
    Recorder r;
    auto s = std::make_unique<XmlStream>(r);
    r.stanza_hook = [&](Document&) { s.reset(nullptr); };
    XmlStream* raw = s.get();
    const FeedResult res = raw->feed(with_header("<message id='1'/><message id='2'/><x/>"));
    CHECK(res.status == FeedStatus::Stopped);
    CHECK_FALSE(s);
    CHECK(r.events.size() == 2);
}

TEST_CASE("xml/stream: the owner may destroy the stream from an empty-element callback and the error callback") {
    for (int which = 0; which < 3; ++which) {
        CAPTURE(which);
        Recorder r;
        auto s = std::make_unique<XmlStream>(r);
        auto kill = [&] { s.reset(nullptr); };
        if (which == 0) r.open_hook = [&](const StreamHeader&) { kill(); };
        if (which == 1) r.close_hook = kill;
        if (which == 2) r.error_hook = kill;
        XmlStream* raw = s.get();
        const std::string input = which == 2 ? with_header("<a><!-- --></a>") : with_header("<a/></stream:stream>");
        (void)raw->feed(input);
        CHECK_FALSE(s);
    }
}

TEST_CASE("xml/stream: a handler may keep the stanza by moving it away") {
    Recorder r;
    XmlStream s(r);
    std::vector<Document> kept;
    r.stanza_hook = [&](Document& d) { kept.push_back(std::move(d)); };
    REQUIRE(s.feed(with_header("<message id='1'><body>a</body></message><message id='2'/>")).status == FeedStatus::Ok);
    REQUIRE(kept.size() == 2);
    CHECK(kept[0].root().child("body", ns::server).text() == "a");
    CHECK(kept[1].root().attr("id") == std::optional<std::string_view>("2"));
}

TEST_CASE("xml/stream: feed from inside a callback is refused") {
    Recorder r;
    XmlStream s(r);
    FeedStatus inner = FeedStatus::Ok;
    r.stanza_hook = [&](Document&) { inner = s.feed("<message/>").status; };
    REQUIRE(s.feed(with_header("<message/>")).status == FeedStatus::Ok);
    CHECK(inner == FeedStatus::Stopped);
    CHECK(r.events.size() == 2);
}

// --- Memory ----------------------------------------------------------------------------------

TEST_CASE("xml/stream: release_parser frees memory between stanzas and parsing resumes") {
    const std::string stanza1 = "<db:result from='b.test' to='a.test'>K</db:result>";
    const std::string stanza2 =
        "<message to='juliet@a.test'><body>hi</body><x xmlns='urn:x' xml:lang='fr'/></message>";
    const auto reference = parse_whole(with_header(stanza1 + stanza2 + stanza1));

    Recorder r;
    XmlStream s(r);
    REQUIRE(s.feed(with_header(stanza1)).status == FeedStatus::Ok);
    const std::size_t with_parser = XmlStream::expat_memory_in_use();
    REQUIRE(s.release_parser());
    CHECK_FALSE(s.has_parser());
    CHECK(XmlStream::expat_memory_in_use() < with_parser);
    CHECK(s.memory_usage() < 2048);  // what is left is the header
    REQUIRE(s.feed(stanza2).status == FeedStatus::Ok);
    CHECK(s.has_parser());
    REQUIRE(s.release_parser());
    REQUIRE(s.feed(stanza1).status == FeedStatus::Ok);
    CHECK(r.events == reference);
}

TEST_CASE("xml/stream: release_parser refuses while a stanza is half-received") {
    Recorder r;
    XmlStream s(r);
    REQUIRE(s.feed(with_header("<message><bo")).status == FeedStatus::Ok);
    CHECK_FALSE(s.release_parser());
    CHECK(s.has_parser());
    REQUIRE(s.feed("dy>x</body></message>").status == FeedStatus::Ok);
    CHECK(s.release_parser());
}

TEST_CASE("xml/stream: release_parser refuses before the header and after the close") {
    Recorder r;
    XmlStream s(r);
    CHECK_FALSE(s.release_parser());
    REQUIRE(s.feed("<stream:stream xmlns='jabber:server' ").status == FeedStatus::Ok);
    CHECK_FALSE(s.release_parser());
    REQUIRE(s.feed("xmlns:stream='http://etherx.jabber.org/streams'></stream:stream>").status == FeedStatus::Closed);
    CHECK_FALSE(s.release_parser());
}

TEST_CASE("xml/stream: memory of an idle stream after its header") {
    const std::size_t before = XmlStream::expat_memory_in_use();
    Recorder r;
    XmlStream s(r);
    REQUIRE(s.feed(kSampleStream.substr(0, kSampleStream.find("</stream:stream>"))).status == FeedStatus::Ok);
    const std::size_t expat = XmlStream::expat_memory_in_use() - before;
    MESSAGE("idle stream: expat " << expat << " bytes, stanza buffers " << s.memory_usage()
                                  << " bytes, object " << sizeof(XmlStream) << " bytes");
    CHECK(expat < 16 * 1024);
    CHECK(s.memory_usage() < 20 * 1024);
    REQUIRE(s.release_parser());
    CHECK(XmlStream::expat_memory_in_use() == before);
}

// --- parse_element ---------------------------------------------------------------------------

TEST_CASE("xml/parse_element: exactly one element") {
    CHECK(parse_element("<message/>").has_value());
    CHECK(parse_element("  <message/>\n").has_value());
    CHECK_FALSE(parse_element("<message/><message/>").has_value());
    CHECK_FALSE(parse_element("").has_value());
    CHECK_FALSE(parse_element("text").has_value());
    CHECK_FALSE(parse_element("<message>").has_value());
    CHECK_FALSE(parse_element("<message/></stream:stream>").has_value());
    CHECK_FALSE(parse_element("<message><!-- c --></message>").has_value());
}
