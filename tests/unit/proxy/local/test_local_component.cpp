// The local link in component mode (XEP-0114) against a component listener played by a peer on
// a real loopback socket in the same loop.
#include <doctest/doctest.h>

#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <cstring>
#include <memory>

#include "common/base/log.h"
#include "common/xmpp/xml_stream.h"
#include "proxy/local/local_component.h"
#include "proxy/local/local_link.h"
#include "proxy/ops/metrics.h"
#include "proxy/routing/router.h"
#include "proxy/app/tls_setup.h"
#include "tests/unit/support/local_world.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/test_support.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;
using test::LogCapture;
using test::Peer;

namespace {

const char* const kComponent = "s2s-proxy.a.test";
const char* const kSecret = "the-component-secret";

QueuedStanza stanza(const std::string& xml) {
    auto d = xml::parse_element(xml);
    REQUIRE(d);
    return QueuedStanza::capture(d->root(), xml::NamespaceScope::server_stream());
}

// SHA-1 in hex straight from mbedTLS: what the component server expects.
std::string sha1_hex(const std::string& s) {
    unsigned char d[20];
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
#else
    mbedtls_sha1_ret(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
#endif
    std::string out;
    char buf[3];
    for (unsigned char b : d) {
        std::snprintf(buf, sizeof buf, "%02x", b);
        out += buf;
    }
    return out;
}

// One component listener connection, scripted: it answers the header with a stream id, checks
// the handshake against SHA-1(id + its secret) and says <handshake/> or not-authorized.
struct ComponentServer {
    Peer* peer = nullptr;
    std::string id;
    std::string header_to;       // the `to` of s2s-proxy's header
    std::string handshake;       // the value s2s-proxy sent
    bool hold_success = false;   // do not answer a right handshake yet
    bool answered = false;
};

struct Fixture : test::LocalWorld {
    std::deque<ComponentServer> servers;  // one per connection made to local.server
    std::string server_secret = kSecret;
    std::function<void(ComponentServer&)> on_server;  // before the connection is served
    std::shared_ptr<const tls::Context> server_tls;   // the component listener speaks direct TLS

    Fixture() {
        t.listen([this](uv_stream_t* l) {
            Peer& p = t.new_peer();
            servers.push_back({});
            ComponentServer& s = servers.back();
            s.peer = &p;
            s.id = "sid-" + std::to_string(servers.size());
            if (on_server) on_server(s);
            if (!p.on_open_hook) p.on_open_hook = [&s](Peer& me) {
                s.header_to = std::string(me.stream->peer_header().attr("to").value_or(""));
                me.stream->send("<stream:stream xmlns='jabber:component:accept' "
                                "xmlns:stream='http://etherx.jabber.org/streams' id='" + s.id + "' from='" +
                                s.header_to + "'>");
            };
            if (!p.on_stanza_hook) p.on_stanza_hook = [this, &s](Peer& me) {
                if (me.events.back() != "stanza handshake") return;
                const std::string& last = me.last();
                s.handshake = last.substr(last.find('>') + 1, last.rfind('<') - last.find('>') - 1);
                if (s.handshake != sha1_hex(s.id + server_secret)) {
                    me.stream->send("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                    "</stream:error></stream:stream>");
                    me.stream->close("wrong handshake");
                } else if (!s.hold_success) {
                    answer(s);
                }
            };
            xml::StreamOptions o;
            o.content_namespaces = {std::string(xml::ns::component_accept)};
            p.stream = Stream::create(t.loop(), p, o, 500 + servers.size());
            p.stream->scope().set_default_ns(xml::ns::component_accept);
            REQUIRE(uv_accept(l, p.stream->handle()) == 0);
            p.stream->start();
            if (server_tls) p.stream->start_tls(server_tls);
        });
        std::memcpy(&settings.server, t.address(), sizeof(sockaddr_in));
        settings.server_text = "test component listener";
        settings.state_timeout_ms = 2000;
        settings.mode = LocalMode::Component;
        settings.component_name = kComponent;
        settings.password = kSecret;
    }
    ~Fixture() { shutdown(); }  // before the servers go: the peers' hooks use them
    static void answer(ComponentServer& s) {
        s.answered = true;
        s.peer->stream->send("<handshake/>");
    }
    // The component connection, or null.
    const Connection* component() const {
        for (const Connection* c : ctx->connections)
            if (std::string(c->kind()) == "local_component") return c;
        return nullptr;
    }
    [[nodiscard]] std::string component_state() const {
        const Connection* c = component();
        return c ? c->state_label() : "none";
    }
    void from_bob(const std::string& id, const std::string& body = "") {
        link->deliver("b.test", "a.test",
                      stanza("<message from='bob@b.test/r' to='alice@a.test' id='" + id + "'>" +
                             (body.empty() ? "" : "<body>" + body + "</body>") + "</message>"));
    }
};

}  // namespace

TEST_CASE("local component: the handshake is the lowercase hex SHA-1 of stream id + secret") {
    CHECK(component_handshake("ab", "c") == "a9993e364706816aba3e25717850c26c9cd0d89d");  // SHA-1("abc")
    CHECK(component_handshake("", "") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK(component_handshake("3BF96D32", "Calli0pe") == sha1_hex("3BF96D32Calli0pe"));
    CHECK(component_handshake("3BF96D32", "Calli0pe") != component_handshake("3BF96D33", "Calli0pe"));
}

TEST_CASE("local component: stanzas queued while connecting flow once the server says <handshake/>") {
    Fixture f;
    f.on_server = [](ComponentServer& s) { s.hold_success = true; };
    f.from_bob("m1", "first");
    f.from_bob("m2", "second");
    REQUIRE(f.t.run_until([&] { return !f.servers.empty() && !f.servers[0].handshake.empty(); }));
    ComponentServer& s = f.servers[0];
    CHECK(s.header_to == kComponent);
    CHECK(s.handshake == sha1_hex("sid-1" + std::string(kSecret)));
    REQUIRE(f.component_state() == "awaiting-handshake");
    CHECK(f.component()->queued_stanzas() == 2);
    f.t.run_for(100);
    CHECK(s.peer->events.size() == 2);  // open, handshake: nothing else before success
    CHECK(f.router->counters().delivered_local == 0);

    Fixture::answer(s);
    REQUIRE(f.t.run_until([&] { return s.peer->saw("<body>second</body>"); }));
    CHECK(f.component_state() == "ready");
    CHECK(f.component()->queued_stanzas() == 0);
    REQUIRE(s.peer->stanzas.size() == 3);
    // Written as they came, in the component stream's namespace (the server's parser accepted
    // them as jabber:component:accept: no xmlns of their own).
    CHECK(s.peer->stanzas[1] == "<message from='bob@b.test/r' to='alice@a.test' id='m1'><body>first</body></message>");
    CHECK(s.peer->stanzas[2].find("id='m2'") != std::string::npos);

    // Once ready, a stanza goes straight through.
    f.from_bob("m3", "third");
    REQUIRE(f.t.run_until([&] { return s.peer->saw("<body>third</body>"); }));
    CHECK(f.router->counters().delivered_local == 3);
    CHECK(f.router->counters().bounced == 0);
    CHECK(f.servers.size() == 1);  // one connection for everything
}

TEST_CASE("local component: stanzas for several local domains share the one component stream") {
    Fixture f;
    f.config.hosts = {"a.test", "c.test"};
    f.from_bob("to-a");
    f.link->deliver("b.test", "c.test", stanza("<message from='bob@b.test' to='carol@c.test' id='to-c'/>"));
    REQUIRE(f.t.run_until([&] { return !f.servers.empty() && f.servers[0].peer->saw("id='to-c'"); }));
    CHECK(f.servers[0].peer->saw("id='to-a'"));
    CHECK(f.servers.size() == 1);
}

TEST_CASE("local component: content in the dialback or streams namespace keeps the stream well-formed") {
    // Captured in the jabber:server scope, such children are written with the db: and stream:
    // prefixes; the component stream's header declares both.
    Fixture f;
    f.link->deliver("b.test", "a.test",
                    stanza("<message from='bob@b.test' to='alice@a.test' id='odd'><x xmlns='jabber:server:dialback'/>"
                           "<y xmlns='http://etherx.jabber.org/streams'/><body>still fine</body></message>"));
    f.from_bob("after");
    REQUIRE(f.t.run_until([&] { return !f.servers.empty() && f.servers[0].peer->saw("id='after'"); }));
    Peer& server = *f.servers[0].peer;
    CHECK(server.saw("<body>still fine</body>"));
    CHECK(std::find(server.events.begin(), server.events.end(), "stanza message") != server.events.end());
    for (auto& e : server.events) CHECK(e.find("parse-error") == std::string::npos);
}

TEST_CASE("local component: a wrong secret means backoff, then the queued stanzas bounce saying why") {
    LogCapture log;
    Fixture f;
    f.server_secret = "not-what-s2s-proxy-has";
    f.settings.queue_timeout_ms = 600;
    f.from_bob("lost", "hello");
    REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
    CHECK(f.servers.size() >= 2);  // tried again after a delay
    CHECK(f.servers.size() <= 4);  // ...but not in a tight loop
    for (auto& s : f.servers) CHECK(s.handshake == sha1_hex(s.id + kSecret));
    CHECK(f.router->counters().delivered_local == 0);
    REQUIRE(f.component_state() == "idle");
    CHECK(f.component()->queued_stanzas() == 0);
    // The log and the bounce say what went wrong; neither shows the secret.
    CHECK(log.has("local-link-down", "refused the component handshake (not-authorized)"));
    CHECK(log.has("bounced", "message lost: the local server is unreachable: the local server refused the "
                             "component handshake (not-authorized)"));
    CHECK(log.has("bounced", "local.password"));
    for (auto& l : log.lines) {
        CHECK(l.find(kSecret) == std::string::npos);
        CHECK(l.find(kComponent) == std::string::npos);
    }
}

TEST_CASE("local component: a server that drops the link is connected again for the next stanza") {
    Fixture f;
    f.on_server = [&f](ComponentServer& s) {
        if (f.servers.size() != 1) return;
        // The first server takes one stanza, then goes away.
        s.peer->on_stanza_hook = [&s](Peer& me) {
            if (me.events.back() == "stanza handshake") Fixture::answer(s);
            else if (me.events.back() == "stanza message") me.stream->abort("server restarting");
        };
    };
    uint64_t down = metrics().local_link_down.get("ready");
    f.from_bob("one", "one");
    REQUIRE(f.t.run_until([&] { return !f.servers.empty() && f.servers[0].peer->closed && f.component_state() == "idle"; }));
    CHECK(f.servers[0].peer->saw("id='one'"));
    CHECK(metrics().local_link_down.get("ready") == down + 1);  // counted for /metrics

    f.from_bob("two", "two");
    REQUIRE(f.t.run_until([&] { return f.servers.size() == 2 && f.servers[1].peer->saw("id='two'"); }));
    CHECK(f.component_state() == "ready");
    CHECK(f.router->counters().delivered_local == 2);
    CHECK(f.router->counters().bounced == 0);
}

TEST_CASE("local component: stanzas waiting while the server restarts are delivered after the retry") {
    Fixture f;
    f.on_server = [&f](ComponentServer& s) {
        if (f.servers.size() == 1)
            s.peer->on_open_hook = [](Peer& me) { me.stream->abort("server restarting"); };
    };
    f.from_bob("1");
    f.from_bob("2");
    REQUIRE(f.t.run_until([&] { return f.servers.size() == 2 && f.servers[1].peer->saw("id='2'"); }));
    CHECK(f.servers[1].peer->saw("id='1'"));
    CHECK(f.router->counters().delivered_local == 2);
    CHECK(f.router->counters().bounced == 0);
}

TEST_CASE("local component: a server that never answers the handshake is given up on at the deadline") {
    Fixture f;
    f.settings.state_timeout_ms = 150;
    f.on_server = [](ComponentServer& s) { s.hold_success = true; };
    f.from_bob("slow");
    REQUIRE(f.t.run_until([&] { return f.servers.size() >= 2; }));
    CHECK(f.servers[0].peer->closed);
    CHECK_FALSE(f.servers[0].peer->saw("id='slow'"));
}

TEST_CASE("local component: what the server sends to the component's address is answered or dropped") {
    Fixture f;
    f.from_bob("hello");
    REQUIRE(f.t.run_until([&] { return !f.servers.empty() && f.servers[0].peer->saw("id='hello'"); }));
    Peer& server = *f.servers[0].peer;
    server.stream->send(
        "<iq type='get' id='ping1' from='a.test' to='s2s-proxy.a.test'><ping xmlns='urn:xmpp:ping'/></iq>"
        "<message from='alice@a.test/x' to='s2s-proxy.a.test'><body>anyone?</body></message>"
        "<presence from='alice@a.test/x' to='s2s-proxy.a.test'/>"
        "<iq type='result' id='r1' from='a.test' to='s2s-proxy.a.test'/>"
        "<iq type='set' id='set1' from='a.test' to='s2s-proxy.a.test'><query xmlns='jabber:iq:register'/></iq>");
    REQUIRE(f.t.run_until([&] { return f.router->counters().dropped_to_component == 5; }));
    REQUIRE(f.t.run_until([&] { return server.stanzas.size() == 4; }));
    CHECK(server.stanzas[2].find("<iq type='error' from='s2s-proxy.a.test' to='a.test' id='ping1'>") == 0);
    CHECK(server.stanzas[2].find("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>") !=
          std::string::npos);
    CHECK(server.stanzas[3].find("id='set1'") != std::string::npos);
    CHECK(server.stanzas[3].find("type='error'") != std::string::npos);
    f.t.run_for(50);
    CHECK(server.stanzas.size() == 4);  // nothing for the message, presence or result
    CHECK(f.component_state() == "ready");
    CHECK(f.router->counters().bounced == 0);
}

TEST_CASE("local component: anything that is not a stanza ends the stream; the next stanza reconnects") {
    Fixture f;
    f.from_bob("a");
    REQUIRE(f.t.run_until([&] { return !f.servers.empty() && f.servers[0].peer->saw("id='a'"); }));
    f.servers[0].peer->stream->send("<db:result xmlns:db='jabber:server:dialback' from='a.test' to='b.test'>k</db:result>");
    REQUIRE(f.t.run_until([&] { return f.servers[0].peer->closed; }));
    CHECK(std::find(f.servers[0].peer->events.begin(), f.servers[0].peer->events.end(),
                    "stream-error unsupported-stanza-type") != f.servers[0].peer->events.end());
    REQUIRE(f.t.run_until([&] { return f.component_state() == "idle"; }));
    f.from_bob("b");
    REQUIRE(f.t.run_until([&] { return f.servers.size() == 2 && f.servers[1].peer->saw("id='b'"); }));
}

TEST_CASE("local component: in s2s mode the local link makes no component connection") {
    Fixture f;
    f.settings.mode = LocalMode::S2S;
    f.from_bob("s2s");
    REQUIRE(f.t.run_until([&] { return !f.servers.empty() && !f.servers[0].peer->events.empty(); }));
    CHECK(f.component() == nullptr);
    bool local_out = false;
    for (const Connection* c : f.ctx->connections) local_out |= std::string(c->kind()) == "local_out";
    CHECK(local_out);
}

namespace {

// local.tls.mode = "tls" toward a component listener with `cert` (direct TLS); s2s-proxy trusts
// the test CA and checks the name (the first of general.hosts: a.test).
void use_tls(Fixture& f, const test::CertFiles& cert) {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    tls::ContextOptions o;
    o.role = tls::Role::Server;
    o.certificate = {cert.cert, cert.key, "", {}};
    auto made = tls::Context::create(o);
    REQUIRE_MESSAGE(made, made.error);
    f.server_tls = made.context;
    f.config.local_tls.mode = "tls";
    f.config.local_tls.cacertfile = pki.ca;
    std::string error;
    f.settings.tls.mode = starttls::mode("tls");
    f.settings.tls.context = make_local_client_context(f.config, &error);
    REQUIRE_MESSAGE(static_cast<bool>(f.settings.tls.context), error);
}

}  // namespace

TEST_CASE("local component: with local.tls the component stream is direct TLS to a server whose certificate checks out") {
    LogCapture log;
    Fixture f;
    use_tls(f, test::TestPki::get().a);
    f.from_bob("m1", "over TLS");
    REQUIRE(f.t.run_until([&] { return !f.servers.empty() && f.servers[0].peer->saw("<body>over TLS</body>"); }));
    CHECK(f.servers[0].peer->stream->tls_open());
    CHECK(f.servers[0].header_to == kComponent);
    CHECK(f.component_state() == "ready");
    CHECK(log.has("local-tls", "peer certificate: valid"));
}

TEST_CASE("local component: a certificate from another CA or for another name stops the link; stanzas bounce") {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    for (const test::CertFiles* cert : {&pki.foreign, &pki.c}) {
        LogCapture log;
        Fixture f;
        use_tls(f, *cert);
        f.settings.queue_timeout_ms = 600;
        f.from_bob("lost", "hello");
        REQUIRE(f.t.run_until([&] { return f.router->counters().bounced == 1; }));
        CHECK(f.router->counters().delivered_local == 0);
        for (auto& s : f.servers) CHECK(s.header_to.empty());  // nothing of XMPP reached it
        if (cert == &pki.foreign)
            CHECK(log.has("local-tls-failed", "TLS handshake failed"));
        else
            CHECK(log.has("local-tls-refused", "the local server's certificate is not valid for a.test"));
    }
}
