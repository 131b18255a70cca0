// proxy/stream over real loopback TCP in one libuv loop: two Streams talk to each other.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "proxy/stream.h"
#include "tests/unit/tls_test_ca.h"

using namespace s2s;

namespace {

const char* const kHeader =
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
    "xmlns:db='jabber:server:dialback' version='1.0' from='a.test' to='b.test'>";

// Records what a Stream reports; actions can be hooked per event.
struct Recorder : Stream::Owner {
    Stream* stream = nullptr;
    std::vector<std::string> events;
    std::string closed_reason;
    bool closed = false;
    std::function<void(Recorder&)> after_open, after_stanza, after_connect;
    int connect_status = 1;

    void on_connected(int status) override {
        connect_status = status;
        events.push_back("connected " + std::to_string(status));
        if (after_connect) after_connect(*this);
    }
    void on_stream_open(const xml::StreamHeader& h) override {
        events.push_back("open from=" + std::string(h.attr("from").value_or("")));
        if (after_open) after_open(*this);
    }
    void on_stanza(xml::Document& d) override {
        events.push_back("stanza " + std::string(d.root().name()));
        if (after_stanza) after_stanza(*this);
    }
    void on_stream_close() override { events.push_back("close"); }
    void on_stream_error(StreamError e, std::string_view) override {
        events.push_back("error " + std::string(name(e)));
    }
    void on_timeout() override { events.push_back("timeout"); }
    void on_closed(const std::string& reason) override {
        closed = true;
        closed_reason = reason;
        stream = nullptr;
    }
};

// A listener on 127.0.0.1:<ephemeral> that wraps each accepted socket in a Stream for `server`.
struct Harness {
    uv_loop_t uv{};
    EventLoop* loop = nullptr;
    uv_tcp_t listener{};
    sockaddr_in addr{};
    Recorder server, client;

    Harness() {
        uv_loop_init(&uv);
        loop = new EventLoop(&uv);
        uv_tcp_init(&uv, &listener);
        listener.data = this;
        uv_ip4_addr("127.0.0.1", 0, &addr);
        REQUIRE(uv_tcp_bind(&listener, reinterpret_cast<sockaddr*>(&addr), 0) == 0);
        int len = sizeof addr;
        uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&addr), &len);
        REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 16, [](uv_stream_t* l, int) {
                    auto* h = static_cast<Harness*>(l->data);
                    h->server.stream = Stream::create(*h->loop, h->server, {}, 1);
                    REQUIRE(uv_accept(l, h->server.stream->handle()) == 0);
                    h->server.stream->start();
                }) == 0);
    }
    void connect() {
        client.stream = Stream::create(*loop, client, {}, 2);
        client.stream->connect(reinterpret_cast<sockaddr*>(&addr), 2000);
    }
    // Runs the loop until pred() or a 5 s safety deadline.
    bool run_until(const std::function<bool()>& pred) {
        uv_timer_t tick;  // wakes the loop so the deadline is checked even when nothing happens
        uv_timer_init(&uv, &tick);
        uv_timer_start(&tick, [](uv_timer_t*) {}, 10, 10);
        uint64_t until = uv_now(&uv) + 5000;
        while (!pred() && uv_now(&uv) < until) uv_run(&uv, UV_RUN_ONCE);
        uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
        uv_run(&uv, UV_RUN_NOWAIT);
        return pred();
    }
    void run_for(uint64_t ms) {
        uint64_t until = uv_now(&uv) + ms;
        run_until([&] { return uv_now(&uv) >= until; });
    }
    ~Harness() {
        if (server.stream) server.stream->abort("test over");
        if (client.stream) client.stream->abort("test over");
        uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
        loop->close();
        uv_run(&uv, UV_RUN_DEFAULT);
        delete loop;
        CHECK(uv_loop_close(&uv) == 0);  // every handle closed: nothing leaked
    }
};

}  // namespace

TEST_CASE("stream: header and stanzas cross a real socket; close flushes then closes") {
    Harness h;
    h.client.after_connect = [](Recorder& r) {
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
    h.client.after_connect = [](Recorder& r) { r.stream->send(std::string(kHeader) + "<message><a></b></message>"); };
    h.server.after_open = [](Recorder& r) { r.stream->send(kHeader); };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }));
    CHECK(h.server.events[1] == "error not-well-formed");
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
    h.client.stream = Stream::create(*h.loop, h.client, {}, 3);
    h.client.stream->connect(reinterpret_cast<sockaddr*>(&closed), 2000);
    REQUIRE(h.run_until([&] { return h.client.closed; }));
    CHECK(h.client.connect_status == UV_ECONNREFUSED);
    CHECK(h.client.closed_reason.find("connect failed") == 0);
}

TEST_CASE("stream: many sends in one loop turn arrive complete and in order") {
    Harness h;
    std::string expected;
    h.client.after_connect = [&](Recorder& r) {
        r.stream->send(kHeader);
        for (int i = 0; i < 2000; ++i) r.stream->send("<message id='m" + std::to_string(i) + "'/>");
    };
    int count = 0;
    h.server.after_stanza = [&](Recorder&) { ++count; };
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
        uv_run(&h.uv, UV_RUN_NOWAIT);
    }
    REQUIRE(h.run_until([&] { return h.server.closed; }));
    CHECK(h.server.closed_reason.find("the peer is not reading") == 0);
}

TEST_CASE("stream: STARTTLS-style upgrade: plaintext first, then XML over TLS both ways") {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    tls::ContextOptions so;
    so.role = tls::Role::Server;
    so.certificate = {pki.a.cert, pki.a.key, "", {}};
    so.cacertfile = pki.ca;
    tls::ContextOptions co;
    co.role = tls::Role::Client;
    co.certificate = {pki.srv.cert, pki.srv.key, "", {}};
    co.cacertfile = pki.ca;
    auto server_ctx = tls::Context::create(so), client_ctx = tls::Context::create(co);
    REQUIRE_MESSAGE(server_ctx, server_ctx.error);
    REQUIRE_MESSAGE(client_ctx, client_ctx.error);

    Harness h;
    // Server: on <starttls/> answer <proceed/> in plaintext and switch; client: on <proceed/> switch.
    h.server.after_stanza = [&](Recorder& r) {
        if (r.events.back() == "stanza starttls") {
            r.stream->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            r.stream->start_tls(server_ctx.context);
            r.stream->reset_parser();
        }
    };
    h.client.after_connect = [](Recorder& r) {
        r.stream->send(kHeader);
        r.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    };
    h.server.after_open = [&](Recorder& r) {
        if (r.stream->tls_open()) r.stream->send(std::string(kHeader) + "<message id='over-tls'/>");
        else r.stream->send(kHeader);
    };
    h.client.after_stanza = [&](Recorder& r) {
        if (r.events.back() == "stanza proceed") {
            r.stream->start_tls(client_ctx.context, {"a.test", nullptr});
            r.stream->reset_parser();
            r.stream->send(kHeader);  // queued until the handshake is done, then encrypted
        }
    };
    h.connect();
    REQUIRE(h.run_until([&] { return h.client.events.size() >= 4; }));
    CHECK(h.client.stream->tls_open());
    CHECK(h.server.stream->tls_open());
    CHECK(h.client.events == std::vector<std::string>{"connected 0", "open from=a.test", "stanza proceed",
                                                      "open from=a.test", "stanza message"});
    CHECK(h.server.stream->tls()->authenticate_peer("b.test") == tls::PeerAuth::Authenticated);
    CHECK(h.client.stream->tls()->authenticate_peer("a.test") == tls::PeerAuth::Authenticated);
    h.client.stream->close("done");
    REQUIRE(h.run_until([&] { return h.server.closed; }));
    CHECK(h.server.closed_reason == "the peer closed TLS");
}
