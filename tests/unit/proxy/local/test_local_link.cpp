// The local link both ways against a scripted local server in one loop.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/xmpp/xml_stream.h"
#include "proxy/local/local_in.h"
#include "proxy/local/local_link.h"
#include "proxy/local/local_verify.h"
#include "proxy/ops/metrics.h"
#include "proxy/routing/router.h"
#include "proxy/app/tls_setup.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/tls_test_ca.h"

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
    LocalVerifySettings verify_settings;
    std::unique_ptr<StaticResolver> resolver;
    std::unique_ptr<ProxyRouter> router;
    std::unique_ptr<ProxyContext> ctx;
    std::unique_ptr<LocalLink> link;
    std::unique_ptr<LocalVerifier> verifier;
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
        policy = std::make_unique<PolicyRules>(config, false);
        resolver = std::make_unique<StaticResolver>(t.loop(), config);
        router = std::make_unique<ProxyRouter>(outbound, *resolver);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), *keys, *policy, *router, {}, 0});
        link = std::make_unique<LocalLink>(*ctx, local_settings, *router);
        router->attach(*ctx, *link);
        std::memcpy(&verify_settings.server, t.address(), sizeof(sockaddr_in));
        verify_settings.server_text = "test local server";
        verify_settings.state_timeout_ms = 2000;
        verifier = std::make_unique<LocalVerifier>(*ctx, verify_settings);
        // [[listen.local]]
        uv_tcp_init(t.uv(), &in_listener);
        in_listener.data = this;
        uv_ip4_addr("127.0.0.1", 0, &in_addr);
        REQUIRE(uv_tcp_bind(&in_listener, reinterpret_cast<sockaddr*>(&in_addr), 0) == 0);
        int len = sizeof in_addr;
        uv_tcp_getsockname(&in_listener, reinterpret_cast<sockaddr*>(&in_addr), &len);
        REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&in_listener), 16, [](uv_stream_t* l, int) {
                    auto* f = static_cast<Fixture*>(l->data);
                    LocalIn::accept(*f->ctx, *f->router, *f->verifier, l, f->in_settings);
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
    // The same, as a server of the dialback era (jabberd2 2.7 without a certificate) opens it: a
    // pre-1.0 header with no to, from or version; `on_open` runs when s2s-proxy's header arrives.
    Peer& legacy_outgoing_from_local_server(std::function<void(Peer&)> on_open) {
        Peer& p = t.new_peer();
        p.on_connect_hook = [](Peer& me) {
            me.stream->send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                            "xmlns:db='jabber:server:dialback'>");
        };
        p.on_open_hook = std::move(on_open);
        p.stream = Stream::create(t.loop(), p, {}, 700);
        p.stream->connect(reinterpret_cast<sockaddr*>(&in_addr), 2000);
        return p;
    }
};

// The key the scripted local server issues on its outgoing s2s for stream id `id` (it is the
// authority for a.test: only it knows which keys it made).
std::string local_server_key(const std::string& id) { return "key-of-the-local-server-" + id; }

// The local server: answers a stream to it with features offering STARTTLS (as Prosody does) and
// dialback; accepts every db:result whose key is the one s2s-proxy issues (LocalOut), and
// confirms a db:verify (a verify-only connection from s2s-proxy) for the keys it issued itself.
void play_local_server(Fixture& f, Peer& p, const std::string& id = "local-sid", bool offer_starttls = true) {
    p.on_open_hook = [id, offer_starttls](Peer& me) {
        me.stream->send(server_header("a.test", "b.test", id) + "<stream:features>" +
                        (offer_starttls ? "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" : "") +
                        "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    };
    p.on_stanza_hook = [&f, id](Peer& me) {
        auto d = xml::parse_element(me.last());
        REQUIRE(d);
        xml::Element e = d->root();
        if (me.events.back() == "stanza verify") {
            std::string sid(e.attr("id").value_or(""));
            bool valid = e.text() == local_server_key(sid) && e.attr("from") == "b.test" && e.attr("to") == "a.test";
            me.stream->send("<db:verify from='a.test' to='b.test' id='" + sid + "' type='" +
                            (valid ? "valid" : "invalid") + "'/>");
            return;
        }
        if (me.events.back() != "stanza result") return;
        bool valid = me.last().find(f.keys->key("a.test", "b.test", id)) != std::string::npos;
        me.stream->send(std::string("<db:result from='a.test' to='b.test' type='") + (valid ? "valid" : "invalid") + "'/>");
    };
}

// What the local server's outgoing s2s sends once it has s2s-proxy's features: a db:result with
// the key it issued for the stream id s2s-proxy sent.
void send_local_key(Peer& me, const std::string& to = "b.test") {
    std::string id(me.stream->peer_header().attr("id").value_or(""));
    me.stream->send("<db:result from='a.test' to='" + to + "'>" + local_server_key(id) + "</db:result>");
}

bool has_event(const Peer& p, const std::string& e) { return std::find(p.events.begin(), p.events.end(), e) != p.events.end(); }

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
    uint64_t down = metrics().local_link_down.get("connecting");
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='lost'/>"));
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
    CHECK(metrics().local_link_down.get("connecting") > down);  // each attempt counted for /metrics
}

TEST_CASE("local link: from the local server, a domain of ours is accepted once the local server confirms its key") {
    Fixture f;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    Peer& p = f.outgoing_from_local_server([](Peer& me) { send_local_key(me); });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    CHECK(p.events[1] == "open from=b.test");  // s2s-proxy answers as the remote domain
    CHECK(p.saw("urn:xmpp:features:dialback"));
    // s2s-proxy asked the local server, on a connection of its own, with the id it sent.
    REQUIRE(f.server_sides.size() == 1);
    Peer& verify = *f.server_sides[0];
    CHECK(verify.events[0] == "open from=b.test");
    std::string id(p.stream->peer_header().attr("id").value_or(""));
    REQUIRE(id.size() == 32);
    CHECK(verify.saw("<db:verify from='b.test' to='a.test' id='" + id + "'>" + local_server_key(id) + "</db:verify>"));
    CHECK(f.t.run_until([&] { return verify.closed; }));  // and closed it after the answer
    CHECK(metrics().dialback.get("local_receiving:valid") >= 1);
    p.stream->send("<message from='alice@a.test' to='bob@b.test' id='out'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().to_remote == 1; }));
}

TEST_CASE("local link: a key the local server did not issue is invalid, and nothing is forwarded") {
    Fixture f;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    uint64_t invalid_before = metrics().dialback.get("local_receiving:invalid");
    Peer& p = f.outgoing_from_local_server([](Peer& me) {
        me.stream->send("<db:result from='a.test' to='b.test'>junk</db:result>");
    });
    REQUIRE(f.t.run_until([&] { return p.saw("type='invalid'"); }));
    CHECK(p.last() == "<db:result from='b.test' to='a.test' type='invalid'/>");
    CHECK(metrics().dialback.get("local_receiving:invalid") == invalid_before + 1);
    // Before the answer, too, the pair is not accepted: a stanza for it ends the stream.
    p.stream->send("<message from='alice@a.test' to='bob@b.test' id='forged'><body>forged</body></message>");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has_event(p, "stream-error invalid-from"));
    CHECK(f.router->counters().to_remote == 0);
}

TEST_CASE("local link: refused keys do not keep a stream open past its negotiation window") {
    Fixture f;
    f.in_settings.state_timeout_ms = 400;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    int answers = 0;
    Peer& p = f.outgoing_from_local_server([](Peer&) {});
    // A made-up key after the features, and another one as soon as each is refused.
    p.on_stanza_hook = [&answers](Peer& me) {
        if (me.events.back() == "stanza result") ++answers;
        else if (me.events.back() != "stanza features") return;
        me.stream->send("<db:result from='a.test' to='b.test'>junk-" + std::to_string(answers) + "</db:result>");
    };
    REQUIRE(f.t.run_until([&] { return p.closed; }, 3000));
    CHECK(has_event(p, "stream-error connection-timeout"));
    CHECK(answers >= 2);
    CHECK(f.router->counters().to_remote == 0);
}

TEST_CASE("local link: a stanza sent while the key is being checked is refused") {
    Fixture f;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    Peer& p = f.outgoing_from_local_server([](Peer& me) {
        send_local_key(me);
        me.stream->send("<message from='alice@a.test' to='bob@b.test' id='early'/>");
    });
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has_event(p, "stream-error invalid-from"));
    CHECK(f.router->counters().to_remote == 0);
}

TEST_CASE("local link: a local server that cannot be reached or does not answer makes the db:result an error") {
    Fixture f;
    SUBCASE("unreachable") {
        sockaddr_in nowhere{};
        uv_ip4_addr("127.0.0.1", 1, &nowhere);
        std::memcpy(&f.verify_settings.server, &nowhere, sizeof nowhere);
        Peer& p = f.outgoing_from_local_server([](Peer& me) { send_local_key(me); });
        REQUIRE(f.t.run_until([&] { return p.saw("type='error'"); }));
        INFO(p.last());
        CHECK(p.saw("<remote-server-not-found"));
        CHECK(p.saw("the local server could not be asked to confirm the key"));
        CHECK_FALSE(p.saw("127.0.0.1"));  // addresses go to the log only
    }
    SUBCASE("silent") {
        f.verify_settings.state_timeout_ms = 200;
        f.on_server_side = [](Peer&) {};  // accepts, never answers
        Peer& p = f.outgoing_from_local_server([](Peer& me) { send_local_key(me); });
        REQUIRE(f.t.run_until([&] { return p.saw("type='error'"); }));
        CHECK(p.saw("<remote-server-timeout"));
        CHECK(f.verifier->under_way() == 0);
    }
    CHECK(f.router->counters().to_remote == 0);
}

TEST_CASE("local link: verifications under way are bounded per stream and in total") {
    Fixture f;
    f.on_server_side = [](Peer&) {};  // accepts, never answers: every check stays under way
    SUBCASE("per stream") {
        Peer& p = f.outgoing_from_local_server([](Peer& me) {
            for (size_t i = 0; i <= LocalIn::kMaxPendingVerifications; ++i) send_local_key(me, "r" + std::to_string(i) + ".test");
        });
        REQUIRE(f.t.run_until([&] { return p.saw("type='error'"); }));
        CHECK(p.saw("<db:result from='r8.test' to='a.test' type='error'"));
        CHECK(p.saw("<resource-constraint"));
        CHECK(f.verifier->under_way() == LocalIn::kMaxPendingVerifications);
        CHECK(metrics().dialback.get("local_receiving:refused_stream_limit") >= 1);
    }
    SUBCASE("in total") {
        f.verify_settings.max_verifications = 2;
        Peer& p = f.outgoing_from_local_server([](Peer& me) {
            for (int i = 0; i < 3; ++i) send_local_key(me, "r" + std::to_string(i) + ".test");
        });
        REQUIRE(f.t.run_until([&] { return p.saw("type='error'"); }));
        CHECK(p.saw("<db:result from='r2.test' to='a.test' type='error'"));
        CHECK(f.verifier->under_way() == 2);
        CHECK(metrics().dialback.get("local_receiving:refused_total_limit") >= 1);
    }
    // A stream that goes away cancels its checks.
    REQUIRE(f.t.run_until([&] { return f.server_sides.size() >= 2; }));
    for (Connection* c : std::vector<Connection*>(f.ctx->connections.begin(), f.ctx->connections.end()))
        if (std::string(c->kind()) == "local_in") c->shutdown(StreamError::SystemShutdown, "test");
    REQUIRE(f.t.run_until([&] { return f.verifier->under_way() == 0; }));
}

TEST_CASE("local link: with local.verify_dialback = false any key is taken (the check is off)") {
    Fixture f;
    f.in_settings.verify_dialback = false;
    Peer& p = f.outgoing_from_local_server([](Peer& me) {
        me.stream->send("<db:result from='a.test' to='b.test'>junk</db:result>");
    });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    CHECK(f.server_sides.empty());  // nobody was asked
    p.stream->send("<message from='alice@a.test' to='bob@b.test' id='out'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().to_remote == 1; }));
}

TEST_CASE("local link: max_connections bounds the streams open on [[listen.local]]") {
    Fixture f;
    f.in_settings.max_connections = Limit{1, false};
    uint64_t refused = metrics().connections_refused.get("local_max_connections");
    Peer& first = f.outgoing_from_local_server([](Peer&) {});
    REQUIRE(f.t.run_until([&] { return first.saw("urn:xmpp:features:dialback"); }));
    Peer& second = f.outgoing_from_local_server([](Peer&) {});
    REQUIRE(f.t.run_until([&] { return second.closed; }));
    CHECK(has_event(second, "stream-error resource-constraint"));
    CHECK(metrics().connections_refused.get("local_max_connections") == refused + 1);
    CHECK_FALSE(first.closed);
    CHECK(f.in_settings.active == 1);
}

TEST_CASE("local link: db:verify is confirmed only for keys s2s-proxy issued") {
    Fixture f;
    std::string key = f.keys->key("a.test", "b.test", "sid-7");
    // A key of ours for another pair: asked by a domain that is not ours, or about one of ours.
    std::string reversed = f.keys->key("b.test", "a.test", "sid-7");
    f.config.hosts = {"a.test", "c.test"};
    std::string about_ours = f.keys->key("a.test", "c.test", "sid-7");
    Peer& p = f.outgoing_from_local_server([&](Peer& me) {
        me.stream->send("<db:verify from='a.test' to='b.test' id='sid-7'>" + key + "</db:verify>"
                        "<db:verify from='a.test' to='b.test' id='sid-8'>" + key + "</db:verify>"
                        "<db:verify from='b.test' to='a.test' id='sid-7'>" + reversed + "</db:verify>"
                        "<db:verify from='a.test' to='c.test' id='sid-7'>" + about_ours + "</db:verify>");
    });
    REQUIRE(f.t.run_until([&] { return p.stanzas.size() >= 5; }));
    CHECK(p.stanzas[1] == "<db:verify from='b.test' to='a.test' id='sid-7' type='valid'/>");
    CHECK(p.stanzas[2] == "<db:verify from='b.test' to='a.test' id='sid-8' type='invalid'/>");
    CHECK(p.stanzas[3] == "<db:verify from='a.test' to='b.test' id='sid-7' type='invalid'/>");
    CHECK(p.stanzas[4] == "<db:verify from='c.test' to='a.test' id='sid-7' type='invalid'/>");
}

TEST_CASE("local link: a domain that is not ours is refused; a stanza for our own domain is a loop") {
    Fixture f;
    Peer& stranger = f.outgoing_from_local_server(
        [](Peer& me) { me.stream->send("<db:result from='evil.test' to='b.test'>k</db:result>"); });
    REQUIRE(f.t.run_until([&] { return stranger.closed; }));
    CHECK(std::find(stranger.events.begin(), stranger.events.end(), "stream-error invalid-from") != stranger.events.end());

    f.on_server_side = [&f](Peer& server) { play_local_server(f, server); };
    Peer& p = f.outgoing_from_local_server([](Peer& me) { send_local_key(me); });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    p.stream->send("<message from='alice@a.test' to='carol@a.test' id='loop'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
    CHECK(f.router->counters().to_remote == 0);
}

TEST_CASE("local link: a stream from one of s2s-proxy's own outgoing links is refused; the stanza bounces once") {
    Fixture f;
    SocketAddressSet own;  // the local ends of outgoing sockets, shared as the server shares them
    f.outbound.own_outgoing = &own;
    f.in_settings.own_outgoing = &own;
    // b.test leads to [[listen.local]] itself, and nothing else stops it (no own_listeners, no
    // denied networks): only the listener's check can keep the stanza from circling.
    f.config.outgoing.address = {{"b.test", "127.0.0.1", ntohs(f.in_addr.sin_port)}};
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    uint64_t refused = metrics().local_loops_refused;
    f.router->to_remote("a.test", "b.test",
                        stanza("<message from='alice@a.test/r' to='bob@b.test' id='circle'><body>x</body></message>"));
    REQUIRE(f.t.run_until([&] { return !f.server_sides.empty() && f.server_sides[0]->saw("id='circle'"); }));
    Peer& server = *f.server_sides[0];
    CHECK(server.saw("type='error'"));
    CHECK(server.saw("remote-server-not-found"));
    CHECK(server.saw("routing loop"));
    CHECK(metrics().local_loops_refused == refused + 1);
    CHECK(f.router->counters().to_remote == 1);  // it went out once and never came back in
    CHECK(f.router->counters().bounced == 1);
    REQUIRE(f.t.run_until([&] { return f.router->links() == 0; }));
    CHECK(own.size() == 0);  // a closed link's end is forgotten
}

TEST_CASE("local link: another spelling of our own domain is still our domain (a loop), of the remote one still that remote") {
    Fixture f;
    f.in_settings.verify_dialback = false;  // the key check is not what this is about
    Peer& p = f.outgoing_from_local_server([](Peer& me) { me.stream->send("<db:result from='a.test' to='b.test'>k</db:result>"); });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    p.stream->send("<message from='alice@a.test' to='carol@\xef\xbd\x81.TEST.' id='loop'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
    CHECK(f.router->counters().to_remote == 0);
    p.stream->send("<message from='alice@A.test' to='bob@\xef\xbd\x82.test' id='out'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().to_remote == 1; }));
    CHECK_FALSE(p.closed);
}

// ---- TLS on the local link ------------------------------------------------------------------------

namespace {

const test::TestPki& pki() {
    const test::TestPki& p = test::TestPki::get();
    REQUIRE_MESSAGE(p.ok(), p.error());
    return p;
}

std::shared_ptr<const tls::Context> server_context(const test::CertFiles& cert) {
    tls::ContextOptions o;
    o.role = tls::Role::Server;
    o.certificate = {cert.cert, cert.key, "", {}};
    o.cacertfile = pki().ca;
    auto made = tls::Context::create(o);
    REQUIRE_MESSAGE(made, made.error);
    return made.context;
}

// local.tls as the config gives it: `mode`, the test CA, the name checked (verify_mode peer).
void use_local_tls(Fixture& f, const char* mode) {
    f.config.local_tls.mode = mode;
    f.config.local_tls.cacertfile = pki().ca;
    std::string error;
    auto ctx = make_local_client_context(f.config, &error);
    REQUIRE_MESSAGE(static_cast<bool>(ctx), error);
    for (LocalTlsSettings* t : {&f.local_settings.tls, &f.verify_settings.tls}) {
        t->mode = local_client_tls_mode(f.config);
        t->context = ctx;
    }
}

// The local server of play_local_server() requiring STARTTLS first (s2s_require_encryption), with
// `cert`; inside TLS it offers dialback only.
void play_local_server_requiring_tls(Fixture& f, Peer& p, const test::CertFiles& cert) {
    play_local_server(f, p);
    auto ctx = server_context(cert);
    auto inner_open = p.on_open_hook;
    auto inner_stanza = p.on_stanza_hook;
    p.on_open_hook = [inner_open](Peer& me) {
        if (me.stream->tls_open()) {
            me.stream->send(server_header("a.test", "b.test", "local-sid") +
                            "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
            return;
        }
        me.stream->send(server_header("a.test", "b.test", "plain-sid") +
                        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                        "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    };
    p.on_stanza_hook = [inner_stanza, ctx](Peer& me) {
        if (me.events.back() == "stanza starttls") {
            me.stream->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            me.stream->start_tls(ctx);
            me.stream->reset_parser();
            return;
        }
        if (!me.stream->tls_open()) {
            me.stream->send("<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                            "</stream:error></stream:stream>");
            me.stream->close("TLS required");
            return;
        }
        inner_stanza(me);
    };
}

}  // namespace

TEST_CASE("local link: with local.tls = starttls the stream to the local server is encrypted before dialback") {
    Fixture f;
    use_local_tls(f, "starttls");
    f.on_server_side = [&f](Peer& p) { play_local_server_requiring_tls(f, p, pki().a); };
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='x'><body>hi</body></message>"));
    REQUIRE(f.t.run_until([&] { return !f.server_sides.empty() && f.server_sides[0]->saw("<body>hi</body>"); }));
    Peer& server = *f.server_sides[0];
    CHECK(server.stream->tls_open());
    CHECK(server.events[0] == "open from=b.test");
    CHECK(server.events[1] == "stanza starttls");
    CHECK(server.events[2] == "tls");
    CHECK(server.events[3] == "open from=b.test");  // the restarted stream, inside TLS
    // The key is bound to the stream id the server gave inside TLS.
    CHECK(server.saw("<db:result from='b.test' to='a.test'>" + f.keys->key("a.test", "b.test", "local-sid")));
    CHECK(f.router->counters().bounced == 0);
}

TEST_CASE("local link: a local server whose certificate is for another name or from another CA is not used") {
    for (const test::CertFiles* cert : {&pki().c, &pki().foreign}) {
        Fixture f;
        use_local_tls(f, "starttls");
        f.local_settings.queue_timeout_ms = 500;
        f.on_server_side = [&f, cert](Peer& p) { play_local_server_requiring_tls(f, p, *cert); };
        f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='lost'/>"));
        REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
        for (Peer* server : f.server_sides) CHECK_FALSE(server->saw("db:result"));
        CHECK(f.router->counters().delivered_local == 0);
    }
}

TEST_CASE("local link: without local.tls a local server that requires TLS is reported, and stanzas bounce") {
    Fixture f;
    f.local_settings.queue_timeout_ms = 500;
    f.on_server_side = [&f](Peer& p) { play_local_server_requiring_tls(f, p, pki().a); };
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='lost'/>"));
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
    for (Peer* server : f.server_sides) CHECK_FALSE(server->saw("starttls"));
}

TEST_CASE("local link: local.tls = starttls with a certificate to check does not go on in plain text when no STARTTLS is offered") {
    // A server (or an attacker stripping the offer) that lists no <starttls/>: the stream must not
    // carry the dialback key or stanzas in the clear.
    Fixture f;
    use_local_tls(f, "starttls");
    f.local_settings.queue_timeout_ms = 500;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p, "local-sid", false); };
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='lost'><body>x</body></message>"));
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
    for (Peer* server : f.server_sides) {
        CHECK_FALSE(server->saw("db:result"));
        CHECK_FALSE(server->saw("<body>x</body>"));
    }
    CHECK(f.router->counters().delivered_local == 0);
}

TEST_CASE("local link: local.tls = starttls with verify_mode none goes on in plain text when no STARTTLS is offered") {
    Fixture f;
    use_local_tls(f, "starttls");
    for (LocalTlsSettings* t : {&f.local_settings.tls, &f.verify_settings.tls}) t->check_name = false;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p, "local-sid", false); };
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='x'><body>hi</body></message>"));
    REQUIRE(f.t.run_until([&] { return !f.server_sides.empty() && f.server_sides[0]->saw("<body>hi</body>"); }));
    CHECK_FALSE(f.server_sides[0]->stream->tls_open());
}

TEST_CASE("local link: local.tls verify_mode selfsigned_peer takes a self-signed certificate only when it names the server") {
    for (bool named : {true, false}) {
        CAPTURE(named);
        Fixture f;
        f.config.local_tls.verify_mode = VerifyMode::SelfsignedPeer;
        use_local_tls(f, "starttls");
        if (named)
            for (LocalTlsSettings* t : {&f.local_settings.tls, &f.verify_settings.tls}) t->server_name = "self.test";
        f.local_settings.queue_timeout_ms = 500;
        f.on_server_side = [&f](Peer& p) { play_local_server_requiring_tls(f, p, pki().self_signed); };
        f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='x'><body>hi</body></message>"));
        if (named) {
            REQUIRE(f.t.run_until([&] { return !f.server_sides.empty() && f.server_sides[0]->saw("<body>hi</body>"); }));
        } else {
            REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
            for (Peer* server : f.server_sides) CHECK_FALSE(server->saw("db:result"));
        }
    }
}

TEST_CASE("local link: key checks with the local server go through local.tls too") {
    Fixture f;
    use_local_tls(f, "starttls_required");
    f.on_server_side = [&f](Peer& p) { play_local_server_requiring_tls(f, p, pki().a); };
    Peer& out = f.outgoing_from_local_server([](Peer& me) { send_local_key(me); });
    REQUIRE(f.t.run_until([&] { return out.saw("type='valid'"); }));
    REQUIRE(f.server_sides.size() == 1);
    CHECK(has_event(*f.server_sides[0], "tls"));
    CHECK(f.server_sides[0]->saw("<db:verify from='b.test' to='a.test'"));
}

TEST_CASE("local link: [[listen.local]] with STARTTLS required refuses a db:result before it") {
    Fixture f;
    f.in_settings.tls = starttls::mode("starttls_required");
    f.in_settings.tls_context = server_context(pki().a);
    std::string features;
    Peer& out = f.outgoing_from_local_server([&features](Peer& me) {
        features = me.last();
        send_local_key(me);
    });
    REQUIRE(f.t.run_until([&] { return out.closed; }));
    CHECK(features.find("<required/>") != std::string::npos);
    CHECK(features.find("dialback") == std::string::npos);
    CHECK(out.saw("<policy-violation"));
    CHECK_FALSE(out.saw("db:result"));
    CHECK(f.server_sides.empty());  // nothing was asked of the local server
}

TEST_CASE("local link: a pre-1.0 stream from the local server names its domains in db:result and is served without features") {
    Fixture f;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    Peer& p = f.legacy_outgoing_from_local_server([](Peer& me) { send_local_key(me); });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    CHECK(p.last() == "<db:result from='b.test' to='a.test' type='valid'/>");
    CHECK_FALSE(p.stream->peer_header().attr("version"));  // answered in kind: no version,
    CHECK_FALSE(p.saw("stream:features"));                 // so no features (RFC 6120 4.7.5)
    CHECK_FALSE(p.stream->peer_header().attr("from"));
    REQUIRE(f.server_sides.size() == 1);  // the key was checked with the local server all the same
    std::string id(p.stream->peer_header().attr("id").value_or(""));
    CHECK(f.server_sides[0]->saw("<db:verify from='b.test' to='a.test' id='" + id + "'>" + local_server_key(id)));
    p.stream->send("<message from='alice@a.test' to='bob@b.test' id='out'/>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().to_remote == 1; }));
    // and a pair it did not authenticate is still refused
    p.stream->send("<message from='alice@a.test' to='carol@c.test' id='other'/>");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(f.router->counters().to_remote == 1);
}

TEST_CASE("local link: a pre-1.0 stream gets invalid, not a dialback error it was never offered") {
    Fixture f;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    Peer& p = f.legacy_outgoing_from_local_server([](Peer& me) { send_local_key(me, "a.test"); });  // to ourselves
    REQUIRE(f.t.run_until([&] { return p.saw("type='invalid'"); }));
    CHECK(p.last() == "<db:result from='a.test' to='a.test' type='invalid'/>");
    CHECK_FALSE(p.saw("item-not-found"));
}

TEST_CASE("local link: a pre-1.0 stream is refused where [[listen.local]] requires STARTTLS") {
    Fixture f;
    f.in_settings.tls = starttls::mode("starttls_required");
    f.in_settings.tls_context = server_context(pki().a);
    Peer& p = f.legacy_outgoing_from_local_server([](Peer& me) { send_local_key(me); });
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(p.saw("<policy-violation"));
    CHECK(p.saw("cannot negotiate it"));
    CHECK_FALSE(p.saw("db:result"));
    CHECK(f.server_sides.empty());
}

namespace {

LocalOut* local_out_of(Fixture& f) {
    for (Connection* c : f.ctx->connections)
        if (std::string_view(c->kind()) == "local_out") return static_cast<LocalOut*>(c);
    return nullptr;
}

size_t count_of(const Peer& p, const std::string& needle) {
    size_t n = 0;
    for (const std::string& e : p.stanzas)
        for (size_t at = e.find(needle); at != std::string::npos; at = e.find(needle, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("local link: a remote domain idle for local.remote_idle_timeout is forgotten, and vouched for again when it sends") {
    Fixture f;
    f.local_settings.remote_idle_ms = 1000;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    const uint64_t sent_at = f.t.loop().now_ms();  // the loop's time while it is not running
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='first'/>"));
    REQUIRE(f.t.run_until([&] { return !f.server_sides.empty() && f.server_sides[0]->saw("id='first'"); }));
    LocalOut* out = local_out_of(f);
    REQUIRE(out);
    CHECK(out->remotes() == 1);
    out->trim_idle(sent_at + 999, 10000);  // used within the timeout: kept
    CHECK(out->remotes() == 1);
    out->trim_idle(sent_at + 1000, 10000);
    CHECK(out->remotes() == 0);
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='second'/>"));
    REQUIRE(f.t.run_until([&] { return f.server_sides[0]->saw("id='second'"); }));
    // The same stream, a second dialback for the domain before its stanza.
    CHECK(f.server_sides.size() == 1);
    CHECK(count_of(*f.server_sides[0], "<db:result from='b.test' to='a.test'>") == 2);
    CHECK(f.router->counters().delivered_local == 2);
}

TEST_CASE("local link: a stanza written to a congested stream toward the local server holds the stream it came from") {
    Fixture f;
    f.on_server_side = [&f](Peer& p) { play_local_server(f, p); };
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='first'/>"));
    REQUIRE(f.t.run_until([&] { return !f.server_sides.empty() && f.server_sides[0]->saw("id='first'"); }));
    f.server_sides[0]->stream->pause_reading();  // the local server stops reading
    Peer& src = f.t.new_peer();                  // the stream the stanzas are read from
    src.stream = Stream::create(f.t.loop(), src, {}, 900);
    const std::string body(64 * 1024, 'x');
    for (int i = 0; i < 400 && !src.stream->reading_stopped(); ++i) {
        QueuedStanza s = stanza("<message from='bob@b.test' to='alice@a.test'><body>" + body + "</body></message>");
        s.source = src.stream;
        f.link->deliver("b.test", "a.test", std::move(s));
        f.t.run_for(1);
    }
    CHECK(src.stream->reading_stopped());
    f.server_sides[0]->stream->resume_reading();  // it drains: the source reads again
    REQUIRE(f.t.run_until([&] { return !src.stream->reading_stopped(); }));
}

TEST_CASE("local link: a remote domain with stanzas waiting for the local server is not forgotten") {
    Fixture f;
    f.local_settings.remote_idle_ms = 1000;
    sockaddr_in nowhere{};
    uv_ip4_addr("127.0.0.1", 1, &nowhere);  // nothing listens: the stanza waits
    std::memcpy(&f.local_settings.server, &nowhere, sizeof nowhere);
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='waits'/>"));
    LocalOut* out = local_out_of(f);
    REQUIRE(out);
    out->trim_idle(f.t.loop().now_ms() + 5000, 10000);
    CHECK(out->remotes() == 1);
    CHECK(out->queued_stanzas() == 1);
}

TEST_CASE("local link: past LocalOut::kMaxRemotes remote domains the least recently used idle one makes room") {
    Fixture f;
    // Ten thousand dialbacks in one burst: on a loaded machine the scripted server may take longer
    // than the fixture's 2 s to answer them all, and the stream would end for that.
    f.local_settings.state_timeout_ms = 60000;
    // The local server takes b.test's dialback and refuses every other domain's.
    f.on_server_side = [&f](Peer& p) {
        play_local_server(f, p);
        p.on_stanza_hook = [&f](Peer& me) {
            if (me.events.back() != "stanza result") return;
            auto d = xml::parse_element(me.last());
            REQUIRE(d);
            std::string from(d->root().attr("from").value_or(""));
            bool valid = from == "b.test" && me.last().find(f.keys->key("a.test", "b.test", "local-sid")) != std::string::npos;
            me.stream->send("<db:result from='a.test' to='" + from + "' type='" + (valid ? "valid" : "invalid") + "'/>");
        };
    };
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='b'/>"));
    REQUIRE(f.t.run_until([&] { return !f.server_sides.empty() && f.server_sides[0]->saw("id='b'"); }));
    LocalOut* out = local_out_of(f);
    REQUIRE(out);
    // Every other domain's dialback is refused: its stanza bounces and the domain is idle.
    for (size_t i = 1; i < LocalOut::kMaxRemotes; ++i)
        f.link->deliver("r" + std::to_string(i) + ".test", "a.test",
                        stanza("<message from='x@r" + std::to_string(i) + ".test' to='alice@a.test'/>"));
    bool all = f.t.run_until([&] { return f.router->counters().bounced == LocalOut::kMaxRemotes - 1; }, 20000);
    INFO("bounced " << f.router->counters().bounced << ", remotes " << out->remotes() << ", server saw " << f.server_sides[0]->stanzas.size());
    REQUIRE(all);
    CHECK(out->remotes() == LocalOut::kMaxRemotes);
    f.link->deliver("one-more.test", "a.test", stanza("<message from='x@one-more.test' to='alice@a.test'/>"));
    CHECK(out->remotes() == LocalOut::kMaxRemotes);
    // b.test was the least recently used: its next stanza needs a new dialback.
    f.link->deliver("b.test", "a.test", stanza("<message from='bob@b.test' to='alice@a.test' id='b2'/>"));
    REQUIRE(f.t.run_until([&] { return f.server_sides[0]->saw("id='b2'"); }, 20000));
    CHECK(f.server_sides.size() == 1);
    CHECK(count_of(*f.server_sides[0], "<db:result from='b.test' to='a.test'>") == 2);
}

TEST_CASE("local link: past kMaxRemotes a busy least recently used domain is passed over for an idle one") {
    Fixture f;
    f.local_settings.state_timeout_ms = 60000;
    // The local server never answers stuck.test's dialback and refuses every other domain's.
    f.on_server_side = [&f](Peer& p) {
        play_local_server(f, p);
        p.on_stanza_hook = [](Peer& me) {
            if (me.events.back() != "stanza result") return;
            auto d = xml::parse_element(me.last());
            REQUIRE(d);
            std::string from(d->root().attr("from").value_or(""));
            if (from == "stuck.test") return;
            me.stream->send("<db:result from='a.test' to='" + from + "' type='invalid'/>");
        };
    };
    f.link->deliver("stuck.test", "a.test", stanza("<message from='x@stuck.test' to='alice@a.test'/>"));
    for (size_t i = 1; i < LocalOut::kMaxRemotes; ++i)
        f.link->deliver("r" + std::to_string(i) + ".test", "a.test",
                        stanza("<message from='x@r" + std::to_string(i) + ".test' to='alice@a.test'/>"));
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == LocalOut::kMaxRemotes - 1; }, 20000));
    LocalOut* out = local_out_of(f);
    REQUIRE(out);
    CHECK(out->remotes() == LocalOut::kMaxRemotes);
    for (int i = 0; i < 3; ++i) {
        f.link->deliver("new" + std::to_string(i) + ".test", "a.test",
                        stanza("<message from='x@new" + std::to_string(i) + ".test' to='alice@a.test'/>"));
        CHECK(out->remotes() == LocalOut::kMaxRemotes);
    }
    CHECK(out->queued_stanzas() >= 1);  // stuck.test's stanza still waits: it was not forgotten
}
