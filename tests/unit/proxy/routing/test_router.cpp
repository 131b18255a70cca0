// The router with the streams it joins: reverse routes (XEP-0288) over inbound bidi streams, the
// fallback to outbound links, and dialback verifications asked for by inbound streams. Real
// S2SIn and S2SOut objects against scripted peers in one loop.
#include <doctest/doctest.h>

#include <memory>

#include "common/xmpp/xml_stream.h"
#include "proxy/routing/router.h"
#include "proxy/s2s/s2s_in.h"
#include "proxy/s2s/s2s_out.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/test_support.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;
using test::Peer;

namespace {

struct RecordingLocal : LocalSide {
    std::vector<QueuedStanza> got;
    void deliver(const std::string&, const std::string&, QueuedStanza s) override { got.push_back(std::move(s)); }
};

// A reverse route that records what it is given (or refuses it, like a stream restarting).
struct FakeRoute : ReverseRoute {
    std::vector<QueuedStanza> sent;
    bool accept = true;
    bool send_reverse(const std::string&, const std::string&, const QueuedStanza& s) override {
        if (accept) sent.push_back(s);
        return accept;
    }
};

QueuedStanza stanza(const std::string& xml) {
    auto d = xml::parse_element(xml);
    REQUIRE(d);
    return QueuedStanza::capture(d->root(), xml::NamespaceScope::server_stream());
}

std::string header(const std::string& from, const std::string& to, const std::string& id = "") {
    return "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
           "xmlns:db='jabber:server:dialback' from='" + from + "' to='" + to + "' version='1.0'" +
           (id.empty() ? "" : " id='" + id + "'") + ">";
}

std::string attr(const std::string& xml, const std::string& name) {
    size_t at = xml.find(" " + name + "='");
    if (at == std::string::npos) return "";
    at += name.size() + 3;
    return xml.substr(at, xml.find('\'', at) - at);
}

bool has(const Peer& p, const std::string& event) {
    for (auto& e : p.events)
        if (e == event) return true;
    return false;
}

// A listener on 127.0.0.1 besides the TestLoop's: the remote domain's server (b.test), which
// outbound links reach through s2s.outgoing.address.
struct RemoteListener {
    uv_tcp_t tcp{};
    sockaddr_in addr{};
    std::function<void(uv_stream_t*)> on_accept;
    bool open = false;

    RemoteListener(uv_loop_t* loop, std::function<void(uv_stream_t*)> f) : on_accept(std::move(f)) {
        uv_tcp_init(loop, &tcp);
        tcp.data = this;
        open = true;
        uv_ip4_addr("127.0.0.1", 0, &addr);
        REQUIRE(uv_tcp_bind(&tcp, reinterpret_cast<sockaddr*>(&addr), 0) == 0);
        int len = sizeof addr;
        uv_tcp_getsockname(&tcp, reinterpret_cast<sockaddr*>(&addr), &len);
        REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&tcp), 16, [](uv_stream_t* l, int status) {
                    if (status == 0) static_cast<RemoteListener*>(l->data)->on_accept(l);
                }) == 0);
    }
    void close() {
        if (open) uv_close(reinterpret_cast<uv_handle_t*>(&tcp), nullptr);
        open = false;
    }
    [[nodiscard]] int port() const { return ntohs(addr.sin_port); }
};

// a.test is ours. Inbound streams arrive on the TestLoop's listener (S2SIn, settings `inbound`);
// outbound links to b.test reach `remote` on its own listener.
struct Fixture {
    test::TestLoop t;
    Config config;
    std::unique_ptr<DialbackKeys> keys;
    std::unique_ptr<PolicyRules> policy;
    OutboundSettings outbound;
    InboundSettings inbound;
    std::unique_ptr<StaticResolver> resolver;
    std::unique_ptr<ProxyRouter> router;
    std::unique_ptr<ProxyContext> ctx;
    RecordingLocal local;
    Peer& remote;  // b.test's server, as outbound links meet it
    int accepted = 0;
    std::unique_ptr<RemoteListener> remote_listener;
    uv_timer_t delay{};  // send_later()
    bool delay_open = false;
    Peer* delayed_peer = nullptr;
    std::string delayed_bytes;

    Fixture() : remote(t.new_peer()) {
        config.hosts = {"a.test"};
        remote_listener = std::make_unique<RemoteListener>(t.uv(), [this](uv_stream_t* l) {
            ++accepted;
            remote.stream = Stream::create(t.loop(), remote, {}, 99);
            REQUIRE(uv_accept(l, remote.stream->handle()) == 0);
            remote.stream->start();
        });
        config.outgoing.address = {{"b.test", "127.0.0.1", remote_listener->port()}};
        keys = std::make_unique<DialbackKeys>("secret");
        policy = std::make_unique<PolicyRules>(config, false);
        outbound.state_timeout_ms = 2000;
        resolver = std::make_unique<StaticResolver>(t.loop(), config);
        router = std::make_unique<ProxyRouter>(outbound, *resolver);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), *keys, *policy, *router, {}, 0});
        router->attach(*ctx, local);
        inbound.listener = "listen.s2s.0";
        t.listen([this](uv_stream_t* l) { S2SIn::accept(*ctx, l, inbound); });
    }
    ~Fixture() {
        remote_listener->close();
        if (delay_open) uv_close(reinterpret_cast<uv_handle_t*>(&delay), nullptr);
        t.shutdown();
        for (Connection* c : std::vector<Connection*>(ctx->connections.begin(), ctx->connections.end()))
            c->shutdown(StreamError::SystemShutdown, "test over");
        CHECK(t.run_until([this] { return ctx->connections.empty(); }));
    }

    // Sends `bytes` to `p`'s peer `ms` from now.
    void send_later(Peer& p, std::string bytes, uint64_t ms) {
        if (!delay_open) uv_timer_init(t.uv(), &delay);
        delay_open = true;
        delay.data = this;
        delayed_peer = &p;
        delayed_bytes = std::move(bytes);
        uv_timer_start(&delay, [](uv_timer_t* h) {
            auto* self = static_cast<Fixture*>(h->data);
            if (self->delayed_peer->stream) self->delayed_peer->stream->send(self->delayed_bytes);
        }, ms, 0);
    }

    // b.test's server answers our header and accepts our dialback.
    void remote_speaks_dialback() {
        remote.on_open_hook = [](Peer& p) {
            p.stream->send(header("b.test", "a.test", "sid") +
                           "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
        };
        remote.on_stanza_hook = [](Peer& p) {
            if (p.events.back() == "stanza result") p.stream->send("<db:result from='b.test' to='a.test' type='valid'/>");
        };
    }

    void use_inbound_tls() {
        const test::TestPki& pki = test::TestPki::get();
        REQUIRE_MESSAGE(pki.ok(), pki.error());
        tls::ContextOptions o;
        o.role = tls::Role::Server;
        o.certificate = {pki.a.cert, pki.a.key, "", {}};
        o.cacertfile = pki.ca;
        auto made = tls::Context::create(o);
        REQUIRE_MESSAGE(made, made.error);
        inbound.tls = starttls::mode("starttls");
        inbound.tls_context = made.context;
    }

    // A b.test server connecting to us: STARTTLS with its certificate, <bidi/>, SASL EXTERNAL.
    Peer& bidi_peer() {
        const test::TestPki& pki = test::TestPki::get();
        tls::ContextOptions o;
        o.role = tls::Role::Client;
        o.certificate = {pki.srv.cert, pki.srv.key, "", {}};
        o.cacertfile = pki.ca;
        auto made = tls::Context::create(o);
        REQUIRE_MESSAGE(made, made.error);
        auto client = made.context;
        Peer& p = t.new_peer();
        p.on_connect_hook = [](Peer& me) { me.stream->send(header("b.test", "a.test")); };
        p.on_stanza_hook = [client](Peer& me) {
            const std::string& ev = me.events.back();
            if (ev == "stanza features" && !me.stream->tls()) {
                me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            } else if (ev == "stanza features" && me.stanzas.back().find("EXTERNAL") != std::string::npos) {
                me.stream->send("<bidi xmlns='urn:xmpp:bidi'/>");
                me.stream->send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
            } else if (ev == "stanza proceed" || ev == "stanza success") {
                if (ev == "stanza proceed") me.stream->start_tls(client, {"a.test", nullptr});
                me.stream->reset_parser();
                me.stream->send(header("b.test", "a.test"));
            }
        };
        t.connect(p);
        return p;
    }
};

const char* const kMessage = "<message from='alice@a.test/r' to='bob@b.test' id='m1'><body>hi</body></message>";

}  // namespace

TEST_CASE("router: a reverse route carries the pair's stanzas instead of a new link; withdrawn, a link is made") {
    Fixture f;
    f.remote_speaks_dialback();
    FakeRoute route;
    f.router->offer_reverse_route("b.test", "a.test", route);
    CHECK(f.router->reverse_routes() == 1);
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(route.sent.size() == 1);
    CHECK(route.sent[0].id == "m1");
    CHECK(f.router->links() == 0);
    CHECK(f.router->counters().delivered_remote == 1);
    CHECK(f.router->counters().delivered_bidi == 1);

    f.router->withdraw_reverse_route("b.test", "a.test", route);
    CHECK(f.router->reverse_routes() == 0);
    f.router->to_remote("a.test", "b.test", stanza("<message from='alice@a.test' to='bob@b.test' id='m2'/>"));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("id='m2'"); }));
    CHECK(route.sent.size() == 1);
    CHECK(f.accepted == 1);
    CHECK(f.router->counters().delivered_remote == 2);
    CHECK(f.router->counters().delivered_bidi == 1);
}

TEST_CASE("router: a route only for its pair; one that cannot take a stanza now leaves it to a link") {
    Fixture f;
    f.remote_speaks_dialback();
    FakeRoute route;
    f.router->offer_reverse_route("c.test", "a.test", route);  // another remote domain
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("id='m1'"); }));
    CHECK(route.sent.empty());

    FakeRoute restarting;
    restarting.accept = false;
    f.router->offer_reverse_route("b.test", "a.test", restarting);
    f.router->to_remote("a.test", "b.test", stanza("<message from='alice@a.test' to='bob@b.test' id='m2'/>"));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("id='m2'"); }));
    CHECK(f.router->counters().delivered_bidi == 0);
    f.router->withdraw_reverse_route("b.test", "a.test", restarting);
    f.router->withdraw_reverse_route("c.test", "a.test", route);
}

TEST_CASE("router: an outbound link already carrying the pair keeps it, so the pair's stanzas stay in order") {
    Fixture f;
    f.remote_speaks_dialback();
    f.router->to_remote("a.test", "b.test", stanza(kMessage));  // queued while the link is made
    FakeRoute route;
    f.router->offer_reverse_route("b.test", "a.test", route);
    f.router->to_remote("a.test", "b.test", stanza("<message from='alice@a.test' to='bob@b.test' id='m2'/>"));
    CHECK(route.sent.empty());
    REQUIRE(f.t.run_until([&] { return f.remote.saw("id='m2'"); }));
    size_t first = 0, second = 0;
    for (size_t i = 0; i < f.remote.stanzas.size(); ++i) {
        if (f.remote.stanzas[i].find("id='m1'") != std::string::npos) first = i;
        if (f.remote.stanzas[i].find("id='m2'") != std::string::npos) second = i;
    }
    CHECK(first < second);
    f.router->withdraw_reverse_route("b.test", "a.test", route);
}

TEST_CASE("router: a bounce to a remote sender goes back on its bidi stream") {
    Fixture f;
    FakeRoute route;
    f.router->offer_reverse_route("b.test", "a.test", route);
    f.router->bounce(stanza("<message from='bob@b.test/r' to='alice@a.test' id='in1'/>"), StanzaError::ServiceUnavailable,
                     "the local server is unreachable");
    REQUIRE(route.sent.size() == 1);
    CHECK(route.sent[0].type == "error");
    CHECK(route.sent[0].to == "bob@b.test/r");
    CHECK(route.sent[0].bytes.find("service-unavailable") != std::string::npos);
    CHECK(f.router->links() == 0);
    f.router->withdraw_reverse_route("b.test", "a.test", route);
}

TEST_CASE("router: the error reply of a bounce is counted apart, so received = delivered + bounced + dropped") {
    Fixture f;
    FakeRoute route;
    f.router->offer_reverse_route("b.test", "a.test", route);
    // a remote sender's stanza bounced: the reply written back on its stream is not a delivery
    f.router->bounce(stanza("<message from='bob@b.test/r' to='alice@a.test' id='in1'/>"), StanzaError::ServiceUnavailable,
                     "the local server is unreachable");
    REQUIRE(route.sent.size() == 1);
    CHECK(route.sent[0].reply);
    const RouterCounters& c = f.router->counters();
    CHECK(c.bounced == 1);
    CHECK(c.replies_delivered == 1);
    CHECK(c.delivered_remote == 0);
    CHECK(c.delivered_bidi == 0);
    // a local sender's stanza bounced; its reply, undeliverable in its turn, is dropped without
    // an answer and counted as a reply dropped, not as a stanza dropped
    f.router->bounce(stanza("<message from='alice@a.test/r' to='bob@b.test' id='out1'/>"), StanzaError::RemoteServerNotFound,
                     "s2s to b.test failed");
    REQUIRE(f.local.got.size() == 1);
    CHECK(f.local.got[0].reply);
    CHECK(f.local.got[0].type == "error");
    f.router->bounce(f.local.got[0], StanzaError::ServiceUnavailable, "the local server is unreachable");
    CHECK(c.bounced == 2);
    CHECK(c.replies_dropped == 1);
    CHECK(c.dropped_error == 0);
    CHECK(f.local.got.size() == 1);
    // an error stanza from a peer is still a stanza: dropped with its reason when undeliverable
    f.router->bounce(stanza("<message from='bob@b.test/r' to='alice@a.test' id='e1' type='error'/>"),
                     StanzaError::ServiceUnavailable, "the local server is unreachable");
    CHECK(c.dropped_error == 1);
    CHECK(c.replies_dropped == 1);
    f.router->withdraw_reverse_route("b.test", "a.test", route);
}

TEST_CASE("router: a listed sender's stanza is answered with policy-violation (cancel); its errors and presence are dropped") {
    Fixture f;
    FakeRoute route;
    f.router->offer_reverse_route("b.test", "a.test", route);
    const RouterCounters& c = f.router->counters();
    auto refuse = [&](const char* xml) {
        auto d = xml::parse_element(xml);
        REQUIRE(d);
        f.router->refuse_from_remote("b.test", "a.test", *d, "spammer@b.test is listed", nullptr);
    };
    refuse("<message from='spammer@b.test/r' to='alice@a.test' id='s1'><body>buy</body></message>");
    REQUIRE(route.sent.size() == 1);
    CHECK(route.sent[0].to == "spammer@b.test/r");
    CHECK(route.sent[0].bytes ==
          "<message from='alice@a.test' to='spammer@b.test/r' type='error' id='s1'><error type='cancel'>"
          "<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>"
          "spammer@b.test is listed</text></error></message>");
    refuse("<message from='spammer@b.test/r' to='alice@a.test' id='e1' type='error'/>");
    refuse("<presence from='spammer@b.test/r' to='alice@a.test' type='subscribe'/>");
    CHECK(route.sent.size() == 1);  // an error is never answered with an error; presence is not bounced
    CHECK(c.from_remote == 3);
    CHECK(c.bounced == 1);
    CHECK(c.dropped_error == 1);
    CHECK(c.dropped_presence == 1);
    CHECK(f.local.got.empty());
    f.router->withdraw_reverse_route("b.test", "a.test", route);
}

TEST_CASE("router: refusals of a listed sender are logged at most ten a second; the next line says how many were held") {
    Fixture f;
    FakeRoute route;
    f.router->offer_reverse_route("b.test", "a.test", route);
    test::LogCapture log;
    for (int i = 0; i < 25; ++i) {
        auto d = xml::parse_element("<presence from='spammer@b.test/r' to='alice@a.test'/>");
        REQUIRE(d);
        f.router->refuse_from_remote("b.test", "a.test", *d, "listed", nullptr);
    }
    CHECK(log.count(" notice ", "refused: presence - from spammer@b.test/r dropped: listed") == 10);
    CHECK(log.count(" debug ", "refused: presence") == 15);
    f.t.run_for(1100);
    auto d = xml::parse_element("<presence from='spammer@b.test/r' to='alice@a.test'/>");
    REQUIRE(d);
    f.router->refuse_from_remote("b.test", "a.test", *d, "listed", nullptr);
    CHECK(log.has(" notice ", "dropped: listed (15 more held back)"));
    f.router->withdraw_reverse_route("b.test", "a.test", route);
}

TEST_CASE("router: a real inbound bidi stream carries our stanzas; once it closes, an outbound link takes over") {
    Fixture f;
    f.use_inbound_tls();
    f.remote_speaks_dialback();
    Peer& peer = f.bidi_peer();
    REQUIRE(f.t.run_until([&] { return f.router->reverse_routes() == 1; }));
    // Its stanzas reach the local side; ours go back on the same connection.
    peer.stream->send("<message from='bob@b.test/r' to='alice@a.test' id='in1'/>");
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return peer.saw("id='m1'") && f.local.got.size() == 1; }));
    CHECK(f.local.got[0].id == "in1");
    CHECK(f.router->counters().from_remote == 1);
    CHECK(f.router->counters().delivered_bidi == 1);
    CHECK(f.router->links() == 0);
    CHECK(f.accepted == 0);

    // The peer ends its stream: the route goes, and the next stanza opens a link of ours.
    peer.stream->send("</stream:stream>");
    REQUIRE(f.t.run_until([&] { return f.router->reverse_routes() == 0; }));
    f.router->to_remote("a.test", "b.test", stanza("<message from='alice@a.test' to='bob@b.test' id='m2'/>"));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("id='m2'"); }));
    CHECK(f.accepted == 1);
    CHECK_FALSE(peer.saw("id='m2'"));
    CHECK(f.router->counters().delivered_bidi == 1);
    CHECK(f.local.got.size() == 1);  // nothing bounced
}

TEST_CASE("router: an inbound stream waits for a dialback verification slower than its state_timeout") {
    // The authoritative server (b.test, reached by an outbound link) answers db:verify after
    // 600 ms; the inbound stream's negotiation window is 200 ms; the outbound link's own bound
    // (state_timeout 2 s per step) covers the wait.
    Fixture f;
    f.inbound.state_timeout_ms = 200;
    f.remote.on_open_hook = [](Peer& p) {
        p.stream->send(header("b.test", "a.test", "auth-sid") +
                       "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    };
    uint64_t asked = 0;
    f.remote.on_stanza_hook = [&](Peer& p) {
        if (p.events.back() != "stanza verify") return;
        asked = uv_now(f.t.uv());
        f.send_later(p, "<db:verify from='b.test' to='a.test' id='" + attr(p.last(), "id") + "' type='valid'/>", 600);
    };
    Peer& in = f.t.new_peer();
    in.on_connect_hook = [](Peer& me) { me.stream->send(header("b.test", "a.test")); };
    in.on_stanza_hook = [](Peer& me) {
        if (me.events.back() == "stanza features") me.stream->send("<db:result from='b.test' to='a.test'>k</db:result>");
    };
    f.t.connect(in);
    REQUIRE(f.t.run_until([&] { return in.saw("type='valid'") || in.closed; }));
    REQUIRE(asked != 0);
    CHECK(uv_now(f.t.uv()) - asked >= 600);
    CHECK_FALSE(has(in, "stream-error connection-timeout"));
    REQUIRE_FALSE(in.closed);
    in.stream->send("<message from='bob@b.test' to='alice@a.test' id='in1'/>");
    REQUIRE(f.t.run_until([&] { return f.local.got.size() == 1; }));
}

TEST_CASE("router: the backoff table holds at most s2s.outgoing.max_hosts_in_backoff hosts; evictions are counted") {
    Fixture f;
    f.config.outgoing.max_hosts_in_backoff = 50;
    uint64_t before = metrics().limits_reached.get("max_hosts_in_backoff");
    for (int i = 0; i < 300; ++i) (void)f.router->link_failed("h" + std::to_string(i) + ".test", "nxdomain", false);
    CHECK(f.router->backoff_entries() == 50);
    CHECK(f.router->hosts_in_backoff() == 50);
    CHECK(metrics().limits_reached.get("max_hosts_in_backoff") == before + 250);
    CHECK(f.router->backoff_ms("h299.test") > 0);
    CHECK(f.router->backoff_ms("h0.test") == 0);  // forgotten first
    // A host whose link worked is forgotten at once.
    (void)f.router->link_failed("h299.test", "", true);
    CHECK(f.router->backoff_entries() == 49);
}
