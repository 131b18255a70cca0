// The reconnect driver of the local links, with the least a link says on its stream (a header,
// then stanzas), against a local server played by a peer on a real loopback socket in the same
// loop: each close counted and logged, retries, giving up with bounces, shutdown.
#include <doctest/doctest.h>

#include <cstring>
#include <deque>
#include <memory>

#include "common/base/log.h"
#include "proxy/local/local_reconnect.h"
#include "proxy/ops/metrics.h"
#include "proxy/routing/router.h"
#include "proxy/xmpp/xmpp.h"
#include "tests/unit/support/local_world.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/test_support.h"

using namespace s2s;
using test::LogCapture;
using test::Peer;

namespace {

QueuedStanza stanza(const std::string& id) {
    auto d = xml::parse_element("<message from='bob@b.test/r' to='alice@a.test' id='" + id + "'/>");
    REQUIRE(d);
    return QueuedStanza::capture(d->root(), xml::NamespaceScope::server_stream());
}

// The smallest link: its header, and Ready once the server's header came.
class TestLink final : public LocalReconnect {
public:
    TestLink(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router)
        : LocalReconnect(ctx, settings, router, "a.test") {}

    void deliver(QueuedStanza s) {
        if (!accepting(s)) return;
        if (state_ == State::Ready && queue_.empty()) {
            write(s, log_ctx(), "");
            return;
        }
        if (!enqueue(queue_, std::move(s))) return;
        if (state_ == State::Idle) connect();
    }
    [[nodiscard]] const char* kind() const noexcept override { return "test_link"; }
    [[nodiscard]] size_t queued_stanzas() const noexcept override { return queue_.size(); }

private:
    ~TestLink() override = default;
    void connect() override { open(settings_.parse); }
    void send_header() override {
        stream_->send(stream_header("b.test", "a.test", "", false));
        enter(State::AwaitingHeader);
    }
    [[nodiscard]] bool waiting() const override { return !queue_.empty(); }
    void bounce_waiting(const std::string& why) override {
        while (!queue_.empty()) router_.bounce(queue_.pop(), StanzaError::RemoteServerTimeout, why);
    }
    void on_stream_open(const xml::StreamHeader&) override {
        enter(State::Ready);
        up();
        stream_->set_deadline(0);
        flush(queue_, log_ctx(), ", was queued");
    }
    void on_stanza(xml::Document& doc) override {
        connection_lost(StreamError::UnsupportedStanzaType, "no stanzas here",
                        "the server sent <" + std::string(doc.root().name()) + ">");
    }
    void on_stream_close() override { connection_lost("the server closed the stream"); }

    StanzaQueue queue_;
};

struct Fixture : test::LocalWorld {
    std::deque<Peer*> servers;  // one per connection made to local.server
    bool server_up = true;      // answers our header; else ends the stream at once
    TestLink* driven = nullptr;

    Fixture() {
        t.listen([this](uv_stream_t* l) {
            Peer& p = t.new_peer();
            servers.push_back(&p);
            p.on_open_hook = [this](Peer& me) {
                if (!server_up) {
                    me.stream->abort("server down");
                    return;
                }
                me.stream->send(stream_header("a.test", "b.test", "id1", false));
            };
            p.stream = Stream::create(t.loop(), p, xml::StreamOptions{}, 500 + servers.size());
            REQUIRE(uv_accept(l, p.stream->handle()) == 0);
            p.stream->start();
        });
        std::memcpy(&settings.server, t.address(), sizeof(sockaddr_in));
        settings.server_text = "test server";
        settings.state_timeout_ms = 2000;
        driven = new TestLink(*ctx, settings, *router);
    }
    ~Fixture() { shutdown(); }  // before the servers go: the peers' hooks use them
    [[nodiscard]] std::string state() const { return ctx->connections.empty() ? "none" : driven->state_label(); }
};

}  // namespace

TEST_CASE("local reconnect: stanzas wait while the stream opens, then flow") {
    Fixture f;
    f.driven->deliver(stanza("1"));
    CHECK(f.state() == "connecting");
    REQUIRE(f.t.run_until([&] { return !f.servers.empty() && f.servers[0]->saw("id='1'"); }));
    CHECK(f.state() == "ready");
    f.driven->deliver(stanza("2"));
    REQUIRE(f.t.run_until([&] { return f.servers[0]->saw("id='2'"); }));
    CHECK(f.router->counters().delivered_local == 2);
    CHECK(f.router->counters().bounced == 0);
}

TEST_CASE("local reconnect: each close is counted and logged; a failing server is retried, then stanzas bounce") {
    LogCapture log;
    Fixture f;
    f.server_up = false;
    f.settings.queue_timeout_ms = 600;
    uint64_t down = metrics().local_link_down.get("awaiting-header");
    f.driven->deliver(stanza("lost"));
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
    CHECK(f.servers.size() >= 2);  // tried again after a delay
    CHECK(f.servers.size() <= 4);  // ...but not in a tight loop
    CHECK(f.state() == "idle");
    CHECK(f.driven->queued_stanzas() == 0);
    CHECK(metrics().local_link_down.get("awaiting-header") == down + f.servers.size());
    // (the server resets the connection: the stream's own reason)
    CHECK(log.count("local-link-down", "the peer closed the connection") == f.servers.size());
    CHECK(log.count("bounced", "the local server for a.test is unreachable: the peer closed the connection") == 1);

    // The next stanza connects again, and a server that is back takes it.
    f.server_up = true;
    size_t tried = f.servers.size();
    f.driven->deliver(stanza("again"));
    REQUIRE(f.t.run_until([&] { return f.servers.size() == tried + 1 && f.servers.back()->saw("id='again'"); }));
    CHECK(f.state() == "ready");
}

TEST_CASE("local reconnect: a stream that was ready is opened again at once when stanzas wait") {
    Fixture f;
    f.driven->deliver(stanza("1"));
    REQUIRE(f.t.run_until([&] { return f.state() == "ready"; }));
    uint64_t down = metrics().local_link_down.get("ready");
    f.servers[0]->stream->abort("server restarting");
    f.driven->deliver(stanza("2"));  // (written before the close is seen, or queued after it)
    REQUIRE(f.t.run_until([&] { return f.servers[0]->closed && f.state() != "ready"; }));
    f.driven->deliver(stanza("3"));
    REQUIRE(f.t.run_until([&] { return f.servers.size() == 2 && f.servers[1]->saw("id='3'"); }, 2000));
    CHECK(metrics().local_link_down.get("ready") == down + 1);
}

TEST_CASE("local reconnect: the server's unexpected element ends the stream with a stream error") {
    Fixture f;
    f.driven->deliver(stanza("1"));
    REQUIRE(f.t.run_until([&] { return f.state() == "ready"; }));
    f.servers[0]->stream->send("<message to='x@b.test'/>");
    REQUIRE(f.t.run_until([&] { return f.servers[0]->closed; }));
    bool saw_error = false;
    for (auto& e : f.servers[0]->events) saw_error |= e == "stream-error unsupported-stanza-type";
    CHECK(saw_error);
    CHECK(f.state() == "idle");  // nothing waits: the next stanza connects
}

TEST_CASE("local reconnect: shutdown ends the stream, bounces what waits and frees the link") {
    SUBCASE("with a stream open") {
        Fixture f;
        f.driven->deliver(stanza("1"));
        REQUIRE(f.t.run_until([&] { return f.state() == "ready"; }));
        f.driven->shutdown(StreamError::SystemShutdown, "going away");
        CHECK(f.state() == "closing");
        f.driven->deliver(stanza("late"));  // refused while it closes
        CHECK(f.router->counters().bounced == 1);
        REQUIRE(f.t.run_until([&] { return f.ctx->connections.empty(); }));
        bool saw_error = false;
        for (auto& e : f.servers[0]->events) saw_error |= e == "stream-error system-shutdown";
        CHECK(saw_error);
    }
    SUBCASE("waiting to try again") {
        Fixture f;
        f.server_up = false;
        f.driven->deliver(stanza("1"));
        REQUIRE(f.t.run_until([&] { return f.state() == "backoff"; }));
        f.driven->shutdown(StreamError::SystemShutdown, "going away");
        CHECK(f.router->counters().bounced == 1);  // at once: no stream to close
        REQUIRE(f.t.run_until([&] { return f.ctx->connections.empty(); }));
    }
}
