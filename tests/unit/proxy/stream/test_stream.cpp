// proxy/stream/stream over real loopback TCP in one libuv loop: two Streams talk to each other.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/stream/stream.h"
#include "tests/unit/support/stream_harness.h"

using namespace s2s;

using test::Peer;
using test::kStreamHeader;
using test::tls_pair;
using Harness = test::StreamHarness;

TEST_CASE("stream: header and stanzas cross a real socket; close flushes then closes") {
    Harness h;
    h.client.on_connect_hook = [](Peer& r) {
        r.stream->send(kStreamHeader);
        r.stream->send("<db:result from='a.test' to='b.test'>key</db:result><message to='x@b.test'/>");
        r.stream->send("</stream:stream>");
        r.stream->close("done");
    };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 4 && h.client.closed; }));
    CHECK(h.client.connect_status == 0);
    CHECK(h.server.events ==
          std::vector<std::string>{"open from=a.test", "stanza result", "stanza message", "close"});
    CHECK(h.client.closed_reason == "done");
    REQUIRE(h.run_until([&] { return h.server.closed; }));
    CHECK(h.server.closed_reason == "the peer closed the connection");
}

TEST_CASE("stream: a parser error reaches the owner, which answers and closes") {
    Harness h;
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(std::string(kStreamHeader) + "<message><a></b></message>"); };
    h.server.on_open_hook = [](Peer& r) { r.stream->send(kStreamHeader); };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }));
    CHECK(h.server.events[1] == "parse-error not-well-formed");
}

TEST_CASE("stream: end_with() counts the stream error, sends it and the closing tag, and closes") {
    Harness h;
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(kStreamHeader); };
    const uint64_t before = metrics().stream_errors.get("policy-violation");
    SUBCASE("our header already sent") {
        h.server.on_open_hook = [](Peer& r) {
            r.stream->send(kStreamHeader);
            r.stream->end_with(StreamError::PolicyViolation, "not <here>", "policy-violation: test");
            CHECK(r.stream->state() == Stream::State::Closing);
        };
    }
    SUBCASE("our header owed: it goes first") {
        h.server.on_open_hook = [](Peer& r) {
            r.stream->end_with(StreamError::PolicyViolation, "not <here>", "policy-violation: test", kStreamHeader);
        };
    }
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.closed && h.client.events.size() >= 4; }));
    CHECK(metrics().stream_errors.get("policy-violation") == before + 1);
    CHECK(h.server.closed_reason == "policy-violation: test");
    CHECK(h.client.events == std::vector<std::string>{"connected 0", "open from=a.test", "stream-error policy-violation", "close"});
    CHECK(h.client.last() == "<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                             "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>not &lt;here&gt;</text></stream:error>");
}

TEST_CASE("stream: a stream already ending counts and sends no further stream error") {
    Harness h;
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(kStreamHeader); };
    const uint64_t before = metrics().stream_errors.get("policy-violation");
    const uint64_t shutdown = metrics().stream_errors.get("system-shutdown");
    h.server.on_open_hook = [](Peer& r) {
        r.stream->end_with(StreamError::PolicyViolation, "first", "first", kStreamHeader);
        r.stream->end_with(StreamError::SystemShutdown, "second", "second");
        r.stream->end_unsent(StreamError::SystemShutdown, "third");
    };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.closed && h.client.events.size() >= 4; }));
    CHECK(metrics().stream_errors.get("policy-violation") == before + 1);
    CHECK(metrics().stream_errors.get("system-shutdown") == shutdown);
    CHECK(h.server.closed_reason == "first");
    CHECK(h.client.events == std::vector<std::string>{"connected 0", "open from=a.test", "stream-error policy-violation", "close"});
}

TEST_CASE("stream: end() sends the closing tag and closes; end_unsent() counts the error and sends nothing") {
    Harness h;
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(kStreamHeader); };
    const uint64_t before = metrics().stream_errors.get("connection-timeout");
    SUBCASE("end") {
        h.server.on_open_hook = [](Peer& r) { r.stream->end("idle", kStreamHeader); };
        h.connect();
        REQUIRE(h.run_until([&] { return h.server.closed && h.client.events.size() >= 3; }));
        CHECK(h.client.events == std::vector<std::string>{"connected 0", "open from=a.test", "close"});
        CHECK(h.server.closed_reason == "idle");
        CHECK(metrics().stream_errors.get("connection-timeout") == before);
    }
    SUBCASE("end_unsent") {
        h.server.on_open_hook = [](Peer& r) { r.stream->end_unsent(StreamError::ConnectionTimeout, "no TLS yet"); };
        h.connect();
        REQUIRE(h.run_until([&] { return h.server.closed && h.client.closed; }));
        CHECK(h.client.events == std::vector<std::string>{"connected 0"});
        CHECK(h.server.closed_reason == "no TLS yet");
        CHECK(metrics().stream_errors.get("connection-timeout") == before + 1);
    }
}

TEST_CASE("stream: connecting to a closed port reports the error and closes") {
    Harness h;
    sockaddr_in closed{};
    uv_ip4_addr("127.0.0.1", 1, &closed);  // nothing listens on port 1 here
    h.client.stream = Stream::create(h.loop(), h.client, {}, 3);
    h.client.stream->connect(reinterpret_cast<sockaddr*>(&closed), 2000);
    REQUIRE(h.run_until([&] { return h.client.closed; }));
    CHECK(h.client.connect_status == UV_ECONNREFUSED);
    CHECK(h.client.closed_reason.find("connect failed") == 0);
}

TEST_CASE("stream: many sends in one loop turn arrive complete and in order") {
    Harness h;
    std::string expected;
    h.client.on_connect_hook = [&](Peer& r) {
        r.stream->send(kStreamHeader);
        for (int i = 0; i < 2000; ++i) r.stream->send("<message id='m" + std::to_string(i) + "'/>");
    };
    int count = 0;
    h.server.on_stanza_hook = [&](Peer&) { ++count; };
    h.connect();
    REQUIRE(h.run_until([&] { return count == 2000; }));
    CHECK(h.server.events.back() == "stanza message");
}

TEST_CASE("stream: a peer that never reads is cut off at the hard limit") {
    Harness h;
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.stream != nullptr && h.client.connect_status == 0; }));
    h.client.stream->pause_reading();  // the client stops reading; the server keeps writing
    std::string chunk(64 * 1024, 'x');
    for (int i = 0; i < 300 && h.server.stream && !h.server.closed; ++i) {
        h.server.stream->send(chunk);
        uv_run(h.uv(), UV_RUN_NOWAIT);
    }
    REQUIRE(h.run_until([&] { return h.server.closed; }));
    CHECK(h.server.closed_reason.find("the peer is not reading") == 0);
}

TEST_CASE("stream: an idle stream frees its parser and buffers, and parsing resumes after") {
    Harness h;
    int stanzas = 0;
    h.server.on_stanza_hook = [&](Peer&) { ++stanzas; };
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(std::string(kStreamHeader) + "<message id='1'/>"); };
    h.connect();
    REQUIRE(h.run_until([&] { return stanzas == 1; }));
    uint64_t now = uv_now(h.uv());
    CHECK_FALSE(h.server.stream->trim_if_idle(now, 10000));      // not idle long enough
    size_t before = xml::XmlStream::expat_memory_in_use();
    CHECK(h.server.stream->trim_if_idle(now + 10000, 10000));    // idle: freed
    CHECK(xml::XmlStream::expat_memory_in_use() < before);
    CHECK_FALSE(h.server.stream->trim_if_idle(now + 20000, 10000));  // nothing more to free
    h.client.stream->send("<message id='2'><body>after</body></message>");
    REQUIRE(h.run_until([&] { return stanzas == 2; }));
    CHECK(h.server.saw("<body>after</body>"));
}

TEST_CASE("stream: the unauthenticated limits hold until the owner calls set_authenticated()") {
    Harness h;
    h.options.unauthenticated = xml::StreamLimits::unauthenticated();
    h.server.on_stanza_hook = [](Peer& r) { r.stream->set_authenticated(); };
    const std::string big = "<message><body>" + std::string(20000, 'x') + "</body></message>";
    h.client.on_connect_hook = [&](Peer& r) { r.stream->send(std::string(kStreamHeader) + big + "<iq/>" + big); };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }));
    CHECK(h.server.events[1] == "parse-error policy-violation");  // the first big one, before anything
    Harness h2;
    h2.options.unauthenticated = xml::StreamLimits::unauthenticated();
    h2.server.on_stanza_hook = [](Peer& r) { r.stream->set_authenticated(); };
    h2.client.on_connect_hook = [&](Peer& r) { r.stream->send(std::string(kStreamHeader) + "<iq/>" + big); };
    h2.connect();
    REQUIRE(h2.run_until([&] { return h2.server.events.size() >= 3; }));
    CHECK(h2.server.events[2] == "stanza message");
}
