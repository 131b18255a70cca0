// The local link both ways against a scripted local server in one loop.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/xml_stream.h"
#include "proxy/local_in.h"
#include "proxy/local_link.h"
#include "proxy/router.h"
#include "tests/unit/loop_harness.h"

using namespace s2s;
using test::Peer;

namespace {

QueuedStanza stanza(const std::string& xml) {
    auto d = xml::parse_element(xml);
    REQUIRE(d);
    return QueuedStanza::capture(d->root(), xml::NamespaceScope::server_stream());
}

std::string server_header(const std::string& from, const std::string& to, const std::string& id) {
    return "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
           "xmlns:db='jabber:server:dialback' from='" + from + "' to='" + to + "' version='1.0' id='" + id + "'>";
}

// The proxy's services with the local server played by peers: `local_server` is what LocalOut
// connects to; LocalIn listens on its own port for peers that play the local server's outgoing s2s.
struct Fixture {
    test::TestLoop t;      // local.server
    test::TestLoop* self = &t;
    Config config;
    std::unique_ptr<DialbackKeys> keys;
    std::unique_ptr<PolicyRules> policy;
    OutboundSettings outbound;
    LocalSettings local_settings;
    LocalInSettings in_settings;
    std::unique_ptr<StaticResolver> resolver;
    std::unique_ptr<ProxyRouter> router;
    std::unique_ptr<ProxyContext> ctx;
    std::unique_ptr<LocalLink> link;
    std::vector<Peer*> server_sides;  // one per connection LocalOut made
    std::function<void(Peer&)> on_server_side;
    uv_tcp_t in_listener{};
    sockaddr_in in_addr{};

    Fixture() {
        config.hosts = {"a.test"};
        t.listen([this](uv_stream_t* l) {
            Peer& p = t.new_peer();
            server_sides.push_back(&p);
            if (on_server_side) on_server_side(p);
            p.stream = Stream::create(t.loop(), p, {}, 500 + server_sides.size());
            REQUIRE(uv_accept(l, p.stream->handle()) == 0);
            p.stream->start();
        });
        std::memcpy(&local_settings.server, t.address(), sizeof(sockaddr_in));
        local_settings.server_text = "test local server";
        local_settings.state_timeout_ms = 2000;
        keys = std::make_unique<DialbackKeys>("secret");
        policy = std::make_unique<PolicyRules>(config);
        resolver = std::make_unique<StaticResolver>(t.loop(), config);
        router = std::make_unique<ProxyRouter>(outbound, *resolver);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), *keys, *policy, *router, {}, 0});
        link = std::make_unique<LocalLink>(*ctx, local_settings, *router);
        router->attach(*ctx, *link);
        // [[listen.local]]
        uv_tcp_init(t.uv(), &in_listener);
        in_listener.data = this;
        uv_ip4_addr("127.0.0.1", 0, &in_addr);
        REQUIRE(uv_tcp_bind(&in_listener, reinterpret_cast<sockaddr*>(&in_addr), 0) == 0);
        int len = sizeof in_addr;
        uv_tcp_getsockname(&in_listener, reinterpret_cast<sockaddr*>(&in_addr), &len);
        REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&in_listener), 16, [](uv_stream_t* l, int) {
                    auto* f = static_cast<Fixture*>(l->data);
                    LocalIn::accept(*f->ctx, *f->router, l, f->in_settings);
                }) == 0);
    }
    ~Fixture() {
        uv_close(reinterpret_cast<uv_handle_t*>(&in_listener), nullptr);
        link->shutdown(StreamError::SystemShutdown, "test over");
        for (Connection* c : std::vector<Connection*>(ctx->connections.begin(), ctx->connections.end()))
            c->shutdown(StreamError::SystemShutdown, "test over");
        t.shutdown([this] { return ctx->connections.empty(); });
    }
    // A peer playing the local server's outgoing s2s, connected to LocalIn.
    Peer& outgoing_from_local_server(std::function<void(Peer&)> on_features) {
        Peer& p = t.new_peer();
        p.on_connect_hook = [](Peer& me) {
            me.stream->send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                            "xmlns:db='jabber:server:dialback' from='a.test' to='b.test' version='1.0'>");
        };
        p.on_stanza_hook = [on_features](Peer& me) {
            if (me.events.back() == "stanza features") on_features(me);
        };
        p.stream = Stream::create(t.loop(), p, {}, 700);
        p.stream->connect(reinterpret_cast<sockaddr*>(&in_addr), 2000);
        return p;
    }
};

// The local server: answers LocalOut's header with features offering STARTTLS (as Prosody does)
// and dialback, and accepts every db:result whose key is the one s2s-proxy issues.
void play_local_server(Fixture& f, Peer& p, const std::string& id = "local-sid") {
    p.on_open_hook = [id](Peer& me) {
        me.stream->send(server_header("a.test", "b.test", id) +
                        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                        "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    };
    p.on_stanza_hook = [&f, id](Peer& me) {
        if (me.events.back() != "stanza result") return;
        bool valid = me.last().find(f.keys->key("a.test", "b.test", id)) != std::string::npos;
        me.stream->send(std::string("<db:result from='a.test' to='b.test' type='") + (valid ? "valid" : "invalid") + "'/>");
    };
}

}  // namespace

TEST_CASE("local link: toward the local server, s2s-proxy vouches for the remote domain by dialback") {
    Fixture f;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='x'><body>hello</body></message>"));
    REQUIRE(f.t.run_until([&] { return !f.server_sides.empty() && f.server_sides[0]->saw("<body>hello</body>"); }));
    Peer& server = *f.server_sides[0];
    CHECK(server.events[0] == "open from=b.test");
    CHECK_FALSE(server.saw("starttls"));  // the offered STARTTLS is ignored on loopback
    CHECK(server.saw("<db:result from='b.test' to='a.test'>" + f.keys->key("a.test", "b.test", "local-sid")));
}

TEST_CASE("local link: the local server restarting loses nothing") {
    Fixture f;
    int connections = 0;
    f.on_server_side = [&](Peer& p) {
        ++connections;
        play_local_server(f, p, "sid" + std::to_string(connections));
        if (connections == 1) {
            // The first local server goes away right after accepting, before any dialback.
            p.on_open_hook = [](Peer& me) { me.stream->abort("local server restarting"); };
        }
    };
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='1'/>"));
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='2'/>"));
    REQUIRE(f.t.run_until([&] { return f.server_sides.size() >= 2 && f.server_sides[1]->saw("id='2'"); }));
    CHECK(f.server_sides[1]->saw("id='1'"));
    CHECK(f.router->counters().bounced == 0);
    CHECK(f.router->counters().delivered_local == 2);
}

TEST_CASE("local link: an unreachable local server makes queued stanzas bounce after local.queue_timeout") {
    Fixture f;
    sockaddr_in nowhere{};
    uv_ip4_addr("127.0.0.1", 1, &nowhere);
    std::memcpy(&f.local_settings.server, &nowhere, sizeof nowhere);
    f.local_settings.queue_timeout_ms = 300;
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='lost'/>"));
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
}

TEST_CASE("local link: from the local server, a domain of ours is accepted and its stanzas routed") {
    Fixture f;
    Peer& p = f.outgoing_from_local_server([](Peer& me) {
        me.stream->send("<db:result from='a.test' to='b.test'>whatever-the-local-server-made</db:result>");
    });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    CHECK(p.events[1] == "open from=b.test");  // s2s-proxy answers as the remote domain
    CHECK(p.saw("urn:xmpp:features:dialback"));
    p.stream->send("<message from='alice@a.test' to='bob@b.test' id='out'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().to_remote == 1; }));
}

TEST_CASE("local link: db:verify is confirmed only for keys s2s-proxy issued") {
    Fixture f;
    std::string key = f.keys->key("a.test", "b.test", "sid-7");
    Peer& p = f.outgoing_from_local_server([&](Peer& me) {
        me.stream->send("<db:verify from='a.test' to='b.test' id='sid-7'>" + key + "</db:verify>"
                        "<db:verify from='a.test' to='b.test' id='sid-8'>" + key + "</db:verify>");
    });
    REQUIRE(f.t.run_until([&] { return p.stanzas.size() >= 3; }));
    CHECK(p.stanzas[1] == "<db:verify from='b.test' to='a.test' id='sid-7' type='valid'/>");
    CHECK(p.stanzas[2] == "<db:verify from='b.test' to='a.test' id='sid-8' type='invalid'/>");
}

TEST_CASE("local link: a domain that is not ours is refused; a stanza for our own domain is a loop") {
    Fixture f;
    Peer& stranger = f.outgoing_from_local_server(
        [](Peer& me) { me.stream->send("<db:result from='evil.test' to='b.test'>k</db:result>"); });
    REQUIRE(f.t.run_until([&] { return stranger.closed; }));
    CHECK(std::find(stranger.events.begin(), stranger.events.end(), "stream-error invalid-from") != stranger.events.end());

    Peer& p = f.outgoing_from_local_server([](Peer& me) { me.stream->send("<db:result from='a.test' to='b.test'>k</db:result>"); });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    p.stream->send("<message from='alice@a.test' to='carol@a.test' id='loop'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
    CHECK(f.router->counters().to_remote == 0);
}

TEST_CASE("local link: another spelling of our own domain is still our domain (a loop), of the remote one still that remote") {
    Fixture f;
    Peer& p = f.outgoing_from_local_server([](Peer& me) { me.stream->send("<db:result from='a.test' to='b.test'>k</db:result>"); });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    p.stream->send("<message from='alice@a.test' to='carol@\xef\xbd\x81.TEST.' id='loop'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
    CHECK(f.router->counters().to_remote == 0);
    p.stream->send("<message from='alice@A.test' to='bob@\xef\xbd\x82.test' id='out'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().to_remote == 1; }));
    CHECK_FALSE(p.closed);
}
