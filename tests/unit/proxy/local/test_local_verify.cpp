// Checking a key with the local server (LocalVerifier, LocalVerify) against a scripted local
// server in one loop.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>

#include "proxy/local/local_verify.h"
#include "proxy/routing/router.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;
using test::Peer;

namespace {

struct Fixture {
    test::TestLoop t;  // the local server
    Config config;
    std::unique_ptr<DialbackKeys> keys;
    std::unique_ptr<PolicyRules> policy;
    OutboundSettings outbound;
    std::unique_ptr<StaticResolver> resolver;
    std::unique_ptr<ProxyRouter> router;
    std::unique_ptr<ProxyContext> ctx;
    LocalVerifySettings settings;
    std::unique_ptr<LocalVerifier> verifier;
    std::vector<Peer*> server_sides;
    std::function<void(Peer&)> on_server_side;
    // What the verification reported.
    int calls = 0;
    Router::Verdict verdict = Router::Verdict::Failed;
    std::string why;

    Fixture() {
        config.hosts = {"a.test"};
        t.listen([this](uv_stream_t* l) {
            Peer& p = t.new_peer();
            server_sides.push_back(&p);
            if (on_server_side) on_server_side(p);
            p.stream = Stream::create(t.loop(), p, {}, 900 + server_sides.size());
            REQUIRE(uv_accept(l, p.stream->handle()) == 0);
            p.stream->start();
        });
        keys = std::make_unique<DialbackKeys>("secret");
        policy = std::make_unique<PolicyRules>(config, false);
        resolver = std::make_unique<StaticResolver>(t.loop(), config);
        router = std::make_unique<ProxyRouter>(outbound, *resolver);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), *keys, *policy, *router, {}, 0});
        std::memcpy(&settings.server, t.address(), sizeof(sockaddr_in));
        settings.server_text = "test local server";
        settings.state_timeout_ms = 300;
        verifier = std::make_unique<LocalVerifier>(*ctx, settings);
    }
    ~Fixture() {
        for (Connection* c : std::vector<Connection*>(ctx->connections.begin(), ctx->connections.end()))
            c->shutdown(StreamError::SystemShutdown, "test over");
        t.shutdown([this] { return ctx->connections.empty(); });
    }
    uint64_t ask(const std::string& key = "the-key") {
        return verifier->verify("a.test", "b.test", "our-id", key, [this](Router::Verdict v, const std::string& w) {
            ++calls;
            verdict = v;
            why = w;
        });
    }
};

// A local server that sends `header_version` in its header (none: pre-1.0, no features) and
// answers each db:verify with `answer` (formatted with the request's id).
void play(Peer& p, bool version_1, std::function<std::string(const std::string& id, const std::string& key)> answer) {
    p.on_open_hook = [version_1](Peer& me) {
        me.stream->send(std::string("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                                    "xmlns:db='jabber:server:dialback' from='a.test' id='server-id'") +
                        (version_1 ? " version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                                     "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>"
                                   : ">"));
    };
    p.on_stanza_hook = [answer](Peer& me) {
        if (me.events.back() != "stanza verify") return;
        auto d = xml::parse_element(me.last());
        REQUIRE(d);
        me.stream->send(answer(std::string(d->root().attr("id").value_or("")), d->root().text()));
    };
}

std::string verdict_answer(const std::string& id, const std::string& key) {
    return "<db:verify from='a.test' to='b.test' id='" + id + "' type='" + (key == "the-key" ? "valid" : "invalid") + "'/>";
}

}  // namespace

TEST_CASE("local verify: the local server's answer decides, asked as XEP-0220 says, and the link closes") {
    Fixture f;
    bool v1 = true;
    SUBCASE("version 1.0: after the features") { v1 = true; }
    SUBCASE("no version: after the header") { v1 = false; }
    f.on_server_side = [&](Peer& p) { play(p, v1, verdict_answer); };
    REQUIRE(f.ask() != 0);
    CHECK(f.calls == 0);  // never inside verify()
    CHECK(f.verifier->under_way() == 1);
    REQUIRE(f.t.run_until([&] { return f.calls == 1; }));
    CHECK(f.verdict == Router::Verdict::Valid);
    Peer& server = *f.server_sides[0];
    CHECK(server.events[0] == "open from=b.test");
    CHECK(server.stanzas[0] == "<db:verify from='b.test' to='a.test' id='our-id'>the-key</db:verify>");
    CHECK_FALSE(server.saw("starttls"));
    REQUIRE(f.t.run_until([&] { return server.closed && f.ctx->connections.empty(); }));
    CHECK(f.verifier->under_way() == 0);

    REQUIRE(f.ask("not-the-key") != 0);
    REQUIRE(f.t.run_until([&] { return f.calls == 2; }));
    CHECK(f.verdict == Router::Verdict::Invalid);
}

TEST_CASE("local verify: an answer that is not for the question, an error or silence is a failure") {
    Fixture f;
    Router::Verdict expected = Router::Verdict::Failed;
    std::string because;
    SUBCASE("another pair") {
        f.on_server_side = [](Peer& p) {
            play(p, true, [](const std::string& id, const std::string&) {
                return "<db:verify from='a.test' to='c.test' id='" + id + "' type='valid'/>";
            });
        };
        because = "not asked";
    }
    SUBCASE("another id") {
        f.on_server_side = [](Peer& p) {
            play(p, true, [](const std::string&, const std::string&) {
                return std::string("<db:verify from='a.test' to='b.test' id='other' type='valid'/>");
            });
        };
        because = "not asked";
    }
    SUBCASE("an error answer") {
        f.on_server_side = [](Peer& p) {
            play(p, true, [](const std::string& id, const std::string&) {
                return "<db:verify from='a.test' to='b.test' id='" + id + "' type='error'><error type='cancel'>"
                       "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>";
            });
        };
        because = "item-not-found";
    }
    SUBCASE("no answer") {
        f.on_server_side = [](Peer& p) { play(p, true, [](const std::string&, const std::string&) { return ""; }); };
        because = "did not answer within 300 ms (awaiting-answer)";
    }
    SUBCASE("TLS required") {
        f.on_server_side = [](Peer& p) {
            p.on_open_hook = [](Peer& me) {
                me.stream->send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                                "id='x' version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
                                "<required/></starttls></stream:features>");
            };
        };
        because = "requires TLS";
    }
    SUBCASE("a stream error") {
        f.on_server_side = [](Peer& p) {
            p.on_open_hook = [](Peer& me) {
                me.stream->send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                                "id='x' version='1.0'><stream:error><host-unknown "
                                "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
            };
        };
        expected = Router::Verdict::Unreachable;
        because = "host-unknown";
    }
    REQUIRE(f.ask() != 0);
    REQUIRE(f.t.run_until([&] { return f.calls == 1; }));
    CHECK(f.verdict == expected);
    INFO(f.why);
    CHECK(f.why.find(because) != std::string::npos);
    CHECK(f.t.run_until([&] { return f.ctx->connections.empty(); }));
    CHECK(f.verifier->under_way() == 0);
}

TEST_CASE("local verify: a local server that cannot be reached is reported, with its address for the log") {
    Fixture f;
    sockaddr_in nowhere{};
    uv_ip4_addr("127.0.0.1", 1, &nowhere);
    std::memcpy(&f.settings.server, &nowhere, sizeof nowhere);
    f.settings.server_text = "127.0.0.1:1";
    REQUIRE(f.ask() != 0);
    REQUIRE(f.t.run_until([&] { return f.calls == 1; }));
    CHECK(f.verdict == Router::Verdict::Unreachable);
    CHECK(f.why.find("cannot connect to the local server at 127.0.0.1:1") == 0);
}

TEST_CASE("local verify: max_verifications bounds what is under way; a cancelled check never reports") {
    Fixture f;
    f.settings.max_verifications = 2;
    f.on_server_side = [](Peer&) {};  // accepts, never answers
    uint64_t first = f.ask(), second = f.ask();
    CHECK(first != 0);
    CHECK(second != 0);
    CHECK(f.ask() == 0);  // refused: nothing started
    REQUIRE(f.t.run_until([&] { return f.server_sides.size() == 2; }));
    f.verifier->cancel(first);
    CHECK(f.verifier->under_way() == 1);
    CHECK(f.ask() != 0);  // room again
    REQUIRE(f.t.run_until([&] { return f.calls == 2; }));  // the two left time out
    CHECK(f.verdict == Router::Verdict::Failed);
    f.t.run_for(50);
    CHECK(f.calls == 2);  // the cancelled one did not report
    CHECK(f.t.run_until([&] { return f.ctx->connections.empty(); }));
}
