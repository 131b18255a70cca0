// proxy/stream over real loopback TCP in one libuv loop: two Streams talk to each other.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/stream.h"
#include "tests/unit/loop_harness.h"
#include "tests/unit/tls_test_ca.h"

using namespace s2s;

namespace {

const char* const kHeader =
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
    "xmlns:db='jabber:server:dialback' version='1.0' from='a.test' to='b.test'>";

using test::Peer;

// A TestLoop whose listener wraps each accepted socket in a Stream for `server`, and a `client`.
struct Harness : test::TestLoop {
    Peer& server = new_peer();
    Peer& client = new_peer();
    xml::StreamOptions options;  // the server stream's parser
    Harness() {
        listen([this](uv_stream_t* l) {
            server.stream = Stream::create(loop(), server, options, 1);
            REQUIRE(uv_accept(l, server.stream->handle()) == 0);
            server.stream->start();
        });
    }
    void connect() { TestLoop::connect(client, 2); }
};

// TLS contexts from the test CA: the server with a.test's certificate, the client with srv's
// (or none); both trust the CA.
std::pair<tls::ContextResult, tls::ContextResult> tls_pair(bool client_certificate) {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    tls::ContextOptions so;
    so.role = tls::Role::Server;
    so.certificate = {pki.a.cert, pki.a.key, "", {}};
    so.cacertfile = pki.ca;
    tls::ContextOptions co;
    co.role = tls::Role::Client;
    if (client_certificate) co.certificate = {pki.srv.cert, pki.srv.key, "", {}};
    co.cacertfile = pki.ca;
    auto server_ctx = tls::Context::create(so), client_ctx = tls::Context::create(co);
    REQUIRE_MESSAGE(server_ctx, server_ctx.error);
    REQUIRE_MESSAGE(client_ctx, client_ctx.error);
    return {std::move(server_ctx), std::move(client_ctx)};
}

}  // namespace

TEST_CASE("stream: header and stanzas cross a real socket; close flushes then closes") {
    Harness h;
    h.client.on_connect_hook = [](Peer& r) {
        r.stream->send(kHeader);
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
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(std::string(kHeader) + "<message><a></b></message>"); };
    h.server.on_open_hook = [](Peer& r) { r.stream->send(kHeader); };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }));
    CHECK(h.server.events[1] == "parse-error not-well-formed");
}

TEST_CASE("stream: end_with() counts the stream error, sends it and the closing tag, and closes") {
    Harness h;
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(kHeader); };
    const uint64_t before = metrics().stream_errors.get("policy-violation");
    SUBCASE("our header already sent") {
        h.server.on_open_hook = [](Peer& r) {
            r.stream->send(kHeader);
            r.stream->end_with(StreamError::PolicyViolation, "not <here>", "policy-violation: test");
            CHECK(r.stream->state() == Stream::State::Closing);
        };
    }
    SUBCASE("our header owed: it goes first") {
        h.server.on_open_hook = [](Peer& r) {
            r.stream->end_with(StreamError::PolicyViolation, "not <here>", "policy-violation: test", kHeader);
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
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(kHeader); };
    const uint64_t before = metrics().stream_errors.get("policy-violation");
    const uint64_t shutdown = metrics().stream_errors.get("system-shutdown");
    h.server.on_open_hook = [](Peer& r) {
        r.stream->end_with(StreamError::PolicyViolation, "first", "first", kHeader);
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
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(kHeader); };
    const uint64_t before = metrics().stream_errors.get("connection-timeout");
    SUBCASE("end") {
        h.server.on_open_hook = [](Peer& r) { r.stream->end("idle", kHeader); };
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

TEST_CASE("stream: the deadline fires once and can be replaced or disarmed") {
    Harness h;
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.stream != nullptr && h.client.connect_status == 0; }));
    h.server.stream->set_deadline(5000);
    h.server.stream->set_deadline(30);  // replaces the first
    REQUIRE(h.run_until([&] { return !h.server.events.empty(); }));
    CHECK(h.server.events == std::vector<std::string>{"timeout"});
    h.client.stream->set_deadline(20);
    h.client.stream->set_deadline(0);
    h.run_for(100);
    CHECK(h.client.events == std::vector<std::string>{"connected 0"});
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
        r.stream->send(kHeader);
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

TEST_CASE("stream: STARTTLS-style upgrade: plaintext first, then XML over TLS both ways") {
    auto contexts = tls_pair(true);
    tls::ContextResult& server_ctx = contexts.first;
    tls::ContextResult& client_ctx = contexts.second;

    Harness h;
    // Server: on <starttls/> answer <proceed/> in plaintext and switch; client: on <proceed/> switch.
    h.server.on_stanza_hook = [&](Peer& r) {
        if (r.events.back() == "stanza starttls") {
            r.stream->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            r.stream->start_tls(server_ctx.context);
            r.stream->reset_parser();
        }
    };
    h.client.on_connect_hook = [](Peer& r) {
        r.stream->send(kHeader);
        r.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    };
    h.server.on_open_hook = [&](Peer& r) {
        if (r.stream->tls_open()) r.stream->send(std::string(kHeader) + "<message id='over-tls'/>");
        else r.stream->send(kHeader);
    };
    h.client.on_stanza_hook = [&](Peer& r) {
        if (r.events.back() == "stanza proceed") {
            r.stream->start_tls(client_ctx.context, {"a.test", nullptr});
            r.stream->reset_parser();
            r.stream->send(kHeader);  // queued until the handshake is done, then encrypted
        }
    };
    h.connect();
    REQUIRE(h.run_until([&] { return h.client.events.size() >= 6; }));
    CHECK(h.client.stream->tls_open());
    CHECK(h.server.stream->tls_open());
    CHECK(h.client.events == std::vector<std::string>{"connected 0", "open from=a.test", "stanza proceed",
                                                      "tls", "open from=a.test", "stanza message"});
    CHECK(h.server.stream->tls()->authenticate_peer("b.test") == tls::PeerAuth::Authenticated);
    CHECK(h.client.stream->tls()->authenticate_peer("a.test") == tls::PeerAuth::Authenticated);
    h.client.stream->close("done");
    REQUIRE(h.run_until([&] { return h.server.closed; }));
    CHECK(h.server.closed_reason == "the peer closed TLS");
}

TEST_CASE("stream: an idle stream frees its parser and buffers, and parsing resumes after") {
    Harness h;
    int stanzas = 0;
    h.server.on_stanza_hook = [&](Peer&) { ++stanzas; };
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(std::string(kHeader) + "<message id='1'/>"); };
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

TEST_CASE("stream: backpressure: a source stops reading while the stream it feeds is congested") {
    test::TestLoop t;
    Peer& src = t.new_peer();  // server side of the sender's connection
    Peer& dst = t.new_peer();  // server side of the slow receiver's connection
    int accepted = 0;
    t.listen([&](uv_stream_t* l) {
        Peer& p = accepted++ == 0 ? dst : src;
        p.stream = Stream::create(t.loop(), p, {}, 10 + accepted);
        REQUIRE(uv_accept(l, p.stream->handle()) == 0);
        p.stream->start();
        if (&p == &dst) p.stream->send(kHeader);
    });
    Peer& receiver = t.new_peer();
    int received = 0;
    receiver.on_stanza_hook = [&](Peer&) { ++received; };
    t.connect(receiver, 1);
    REQUIRE(t.run_until([&] { return dst.stream != nullptr && receiver.connect_status == 0; }));
    receiver.stream->pause_reading();  // the receiver does not read for now

    const int kStanzas = 200;
    std::string payload(64 * 1024, 'x');  // enough to fill the kernel socket buffers too
    bool was_stopped = false;
    src.on_stanza_hook = [&](Peer& me) {  // forward each stanza, much enlarged, to the slow receiver
        dst.stream->send("<message><body>" + payload + "</body></message>", me.stream);
        was_stopped |= me.stream->reading_stopped();
    };
    Peer& sender = t.new_peer();
    sender.on_connect_hook = [&](Peer& me) {
        me.stream->send(kHeader);
        for (int i = 0; i < kStanzas; ++i) me.stream->send("<message><body>" + std::string(1024, 'y') + "</body></message>");
    };
    t.connect(sender, 2);
    REQUIRE(t.run_until([&] { return src.stream && src.stream->reading_stopped(); }));
    t.run_for(100);
    size_t forwarded = src.stanzas.size();
    CHECK(forwarded < static_cast<size_t>(kStanzas));  // the source stopped before reading everything
    CHECK(dst.stream->queued_bytes() < Stream::kHardLimit);  // and the destination stayed under its cap

    receiver.stream->resume_reading();  // the receiver reads again: everything flows
    REQUIRE(t.run_until([&] { return received == kStanzas; }, 10000));
    CHECK(was_stopped);
    CHECK_FALSE(src.stream->reading_stopped());
}

TEST_CASE("stream: a stream restarted inside a callback under TLS parses the rest of the same read as the new stream") {
    auto contexts = tls_pair(false);
    tls::ContextResult& server_ctx = contexts.first;
    tls::ContextResult& client_ctx = contexts.second;

    Harness h;
    // STARTTLS as above; then, over TLS, the server restarts its stream on <restart/> (as after
    // SASL <success/>), and the client sends <restart/> and the new header in one write.
    h.server.on_stanza_hook = [&](Peer& r) {
        if (r.events.back() == "stanza starttls") {
            r.stream->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            r.stream->start_tls(server_ctx.context);
            r.stream->reset_parser();
        } else if (r.events.back() == "stanza restart") {
            r.stream->reset_parser();
        }
    };
    h.server.on_open_hook = [](Peer& r) { r.stream->send(kHeader); };
    h.client.on_connect_hook = [](Peer& r) {
        r.stream->send(kHeader);
        r.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    };
    h.client.on_stanza_hook = [&](Peer& r) {
        if (r.events.back() == "stanza proceed") {
            r.stream->start_tls(client_ctx.context, {"a.test", nullptr});
            r.stream->reset_parser();
            r.stream->send(std::string(kHeader) + "<restart xmlns='urn:example:restart'/>" + kHeader +
                           "<message id='after-restart'/>");
        }
    };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 7 || h.server.closed; }));
    REQUIRE_FALSE(h.server.closed);  // (the rest fed to TLS as ciphertext would fail it)
    CHECK(h.server.stream->tls_open());
    CHECK(h.server.events == std::vector<std::string>{"open from=a.test", "stanza starttls", "tls", "open from=a.test",
                                                      "stanza restart", "open from=a.test", "stanza message"});
    CHECK(h.server.saw("after-restart"));
}

TEST_CASE("stream: a stanza not finished within stanza_timeout_ms ends the stream with policy-violation") {
    Harness h;
    h.options.stanza_timeout_ms = 150;
    const uint64_t before = metrics().stanza_limits.get("timeout");
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(std::string(kHeader) + "<message><body>half"); };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }));
    CHECK(h.server.events == std::vector<std::string>{"open from=a.test", "parse-error policy-violation"});
    CHECK(metrics().stanza_limits.get("timeout") == before + 1);
}

TEST_CASE("stream: stanzas that each finish in time pass, however the reads cut them; keepalives start no clock") {
    Harness h;
    h.options.stanza_timeout_ms = 200;
    h.connect();
    REQUIRE(h.run_until([&] { return h.client.connect_status == 0 && h.server.stream != nullptr; }));
    h.client.stream->send(std::string(kHeader) + "<message><body>1");
    // Every read ends inside a stanza for 1.2 s, but none of them lives 200 ms.
    for (int i = 2; i <= 12; ++i) {
        h.run_for(100);
        h.client.stream->send("</body></message><message><body>" + std::to_string(i));
    }
    h.client.stream->send("</body></message> ");
    h.run_for(500);  // a trailing keepalive is no stanza
    CHECK(h.server.events.size() == 13);  // open and 12 stanzas
    CHECK(h.server.events.back() == "stanza message");
}

TEST_CASE("stream: the unauthenticated limits hold until the owner calls set_authenticated()") {
    Harness h;
    h.options.unauthenticated = xml::StreamLimits::unauthenticated();
    h.server.on_stanza_hook = [](Peer& r) { r.stream->set_authenticated(); };
    const std::string big = "<message><body>" + std::string(20000, 'x') + "</body></message>";
    h.client.on_connect_hook = [&](Peer& r) { r.stream->send(std::string(kHeader) + big + "<iq/>" + big); };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }));
    CHECK(h.server.events[1] == "parse-error policy-violation");  // the first big one, before anything
    Harness h2;
    h2.options.unauthenticated = xml::StreamLimits::unauthenticated();
    h2.server.on_stanza_hook = [](Peer& r) { r.stream->set_authenticated(); };
    h2.client.on_connect_hook = [&](Peer& r) { r.stream->send(std::string(kHeader) + "<iq/>" + big); };
    h2.connect();
    REQUIRE(h2.run_until([&] { return h2.server.events.size() >= 3; }));
    CHECK(h2.server.events[2] == "stanza message");
}

TEST_CASE("stream: the stanza clock starts again while we hold reading back, and runs once we read again") {
    Harness h;
    h.options.stanza_timeout_ms = 100;
    h.server.on_open_hook = [](Peer& r) { r.stream->pause_reading(); };  // the rest waits in the kernel
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(std::string(kHeader) + "<message><body>half"); };
    h.connect();
    REQUIRE(h.run_until([&] { return !h.server.events.empty(); }));
    h.run_for(400);
    CHECK(h.server.events == std::vector<std::string>{"open from=a.test"});
    h.server.stream->resume_reading();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }, 1000));
    CHECK(h.server.events[1] == "parse-error policy-violation");
}
