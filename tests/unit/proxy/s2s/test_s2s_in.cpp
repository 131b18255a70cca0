// The inbound public stream against scripted remote servers in one loop, with a router that
// records what is delivered and answers dialback verifications as a test tells it to.
#include <doctest/doctest.h>

#include <map>
#include <memory>

#include "proxy/s2s/s2s_in.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/spam_fixture.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;
using test::Peer;

namespace {

std::string header(const std::string& from, const std::string& to, bool version = true) {
    return "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
           "xmlns:db='jabber:server:dialback'" +
           (from.empty() ? "" : " from='" + from + "'") + " to='" + to + "'" + (version ? " version='1.0'" : "") + ">";
}

// Records deliveries and reverse routes; answers each verification `answer_after_ms` later
// with `verdict` (never when `silent`).
struct FakeRouter : Router {
    struct Request {
        std::string receiving, originating, stream_id, key;
        VerifyDone done;
        uint64_t token;
        bool cancelled = false;
    };
    std::vector<std::string> delivered;
    std::vector<std::string> refused;  // "remote->local why"
    std::vector<Request> requests;
    Verdict verdict = Verdict::Valid;
    uint64_t answer_after_ms = 1;
    bool silent = false;
    uint64_t bound_ms = 0;  // verify_timeout_ms()
    std::map<std::string, ReverseRoute*> routes;  // "remote->local"
    int withdrawn = 0;
    uv_timer_t timer{};
    uint64_t next_token = 0;

    explicit FakeRouter(uv_loop_t* loop) {
        uv_timer_init(loop, &timer);
        timer.data = this;
    }
    void close() { uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr); }

    void from_remote(std::string_view remote, std::string_view local, xml::Document& stanza, Stream*) override {
        delivered.push_back(std::string(remote) + "->" + std::string(local) + " " +
                            xml::to_string(stanza.root(), xml::NamespaceScope::server_stream()));
    }
    void refuse_from_remote(std::string_view remote, std::string_view local, xml::Document&, const std::string& why,
                            Stream*) override {
        refused.push_back(std::string(remote) + "->" + std::string(local) + " " + why);
    }
    uint64_t verify_dialback(const std::string& receiving, const std::string& originating, const std::string& sid,
                             const std::string& key, VerifyDone done) override {
        requests.push_back({receiving, originating, sid, key, std::move(done), ++next_token});
        if (!silent)
            uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<FakeRouter*>(t->data)->answer(); }, answer_after_ms, 0);
        return next_token;
    }
    uint64_t verify_timeout_ms() const override { return bound_ms; }
    void offer_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) override {
        routes[remote + "->" + local] = &route;
    }
    void withdraw_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) override {
        auto it = routes.find(remote + "->" + local);
        if (it != routes.end() && it->second == &route) {
            routes.erase(it);
            ++withdrawn;
        }
    }
    // Sends a stanza from `local` to `remote` over the route offered for the pair.
    bool send_back(const std::string& local, const std::string& remote, const std::string& xml) {
        auto it = routes.find(remote + "->" + local);
        if (it == routes.end()) return false;
        auto d = xml::parse_element(xml);
        REQUIRE(d);
        return it->second->send_reverse(local, remote, QueuedStanza::capture(d->root(), xml::NamespaceScope::server_stream()));
    }
    void cancel_verify(uint64_t token) override {
        for (auto& r : requests)
            if (r.token == token) r.cancelled = true;
    }
    void answer() {
        for (auto& r : requests)
            if (!r.cancelled && r.done) {
                auto done = std::move(r.done);
                r.done = nullptr;
                done(verdict, verdict == Verdict::Valid ? "" : "the authoritative server said no");
            }
    }
};

struct Fixture {
    test::TestLoop t;
    Config config;
    std::unique_ptr<DialbackKeys> keys;
    std::unique_ptr<PolicyRules> policy;
    std::unique_ptr<FakeRouter> router;
    std::unique_ptr<ProxyContext> ctx;
    InboundSettings settings;

    explicit Fixture(const std::function<void(Config&)>& tweak = nullptr) {
        config.hosts = {"a.test", "a2.test"};
        if (tweak) tweak(config);
        keys = std::make_unique<DialbackKeys>("test secret");
        policy = std::make_unique<PolicyRules>(config, false);
        router = std::make_unique<FakeRouter>(t.uv());
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), *keys, *policy, *router, {}, 0});
        settings.listener = "listen.s2s.0";
        t.listen([this](uv_stream_t* l) { S2SIn::accept(*ctx, l, settings); });
    }
    ~Fixture() {
        router->close();
        t.shutdown([this] { return ctx->connections.empty(); });
    }
    void use_tls(const char* mode) {
        const test::TestPki& pki = test::TestPki::get();
        REQUIRE_MESSAGE(pki.ok(), pki.error());
        tls::ContextOptions o;
        o.role = tls::Role::Server;
        o.certificate = {pki.a.cert, pki.a.key, "", {}};
        o.cacertfile = pki.ca;
        auto made = tls::Context::create(o);
        REQUIRE_MESSAGE(made, made.error);
        settings.tls = starttls::mode(mode);
        settings.tls_context = made.context;
    }
    static std::shared_ptr<const tls::Context> client_tls(const test::CertFiles& cert) {
        const test::TestPki& pki = test::TestPki::get();
        tls::ContextOptions o;
        o.role = tls::Role::Client;
        o.certificate = {cert.cert, cert.key, "", {}};
        o.cacertfile = pki.ca;
        auto made = tls::Context::create(o);
        REQUIRE_MESSAGE(made, made.error);
        return made.context;
    }
    // A peer that opens a stream from `from` to `to` and runs `on_features` on the features.
    Peer& peer(const std::string& from, const std::string& to, std::function<void(Peer&)> on_features = nullptr) {
        Peer& p = t.new_peer();
        p.on_connect_hook = [=](Peer& me) { me.stream->send(header(from, to)); };
        p.on_stanza_hook = [on_features](Peer& me) {
            if (on_features && me.events.back() == "stanza features") on_features(me);
        };
        t.connect(p);
        return p;
    }
};

// Sends a db:result for b.test -> a.test once the features arrive.
void dialback(Peer& p) { p.stream->send("<db:result from='b.test' to='a.test'>some-key</db:result>"); }

bool has(const Peer& p, const std::string& event) {
    for (auto& e : p.events)
        if (e == event) return true;
    return false;
}

}  // namespace

TEST_CASE("s2s_in: dialback verified by the authoritative server authenticates the pair; stanzas flow") {
    Fixture f;
    Peer& p = f.peer("b.test", "a.test", dialback);
    std::string stream_id;
    p.on_open_hook = [&](Peer& me) { stream_id = std::string(me.stream->peer_header().attr("id").value_or("")); };
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    CHECK(p.saw("<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"));
    REQUIRE(f.router->requests.size() == 1);
    auto& r = f.router->requests[0];
    CHECK(r.receiving == "a.test");
    CHECK(r.originating == "b.test");
    CHECK(r.key == "some-key");
    CHECK(r.stream_id == stream_id);
    CHECK(stream_id.size() == 32);

    p.stream->send("<message from='u@b.test/r' to='v@a.test' id='m1'><body>hi</body></message>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
    CHECK(f.router->delivered[0].find("b.test->a.test <message") == 0);
    CHECK(f.router->delivered[0].find("<body>hi</body>") != std::string::npos);
}

TEST_CASE("s2s_in: an invalid key does not authenticate, and a stanza then ends the stream") {
    Fixture f;
    f.router->verdict = Router::Verdict::Invalid;
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("invalid"); }));
    p.stream->send("<message from='u@b.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stream-error not-authorized"));
    CHECK(f.router->delivered.empty());
}

TEST_CASE("s2s_in: a stanza before authentication is refused with not-authorized") {
    Fixture f;
    Peer& p = f.peer("b.test", "a.test", [](Peer& me) { me.stream->send("<message from='u@b.test' to='v@a.test'/>"); });
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stream-error not-authorized"));
    CHECK(f.router->delivered.empty());
}

TEST_CASE("s2s_in: a spoofed 'from' on an authenticated stream is invalid-from and not forwarded") {
    Fixture f;
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    p.stream->send("<message from='mallory@c.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stream-error invalid-from"));
    CHECK(f.router->delivered.empty());
}

TEST_CASE("s2s_in: stanzas need both addresses, and a 'to' we serve on an authenticated pair") {
    struct Case {
        const char* stanza;
        const char* error;
    };
    for (Case c : {Case{"<message to='v@a.test'/>", "improper-addressing"},
                   Case{"<message from='u@b.test'/>", "improper-addressing"},
                   Case{"<message from='u@@b.test' to='v@a.test'/>", "invalid-from"},
                   Case{"<message from='u@b.test' to='v@elsewhere.test'/>", "host-unknown"},
                   Case{"<message from='u@b.test' to='v@a2.test'/>", "invalid-from"},  // a2.test: not for this pair
                   Case{"<foo xmlns='urn:example'/>", "unsupported-stanza-type"}}) {
        CAPTURE(c.stanza);
        Fixture f;
        Peer& p = f.peer("b.test", "a.test", dialback);
        REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
        p.stream->send(c.stanza);
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(has(p, std::string("stream-error ") + c.error));
        CHECK(f.router->delivered.empty());
    }
}

TEST_CASE("s2s_in: a stanza is forwarded with its domains in canonical form, the form its pair was checked in") {
    Fixture f;
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    // Fullwidth and uppercase spellings of the authenticated pair: accepted, and rewritten.
    p.stream->send("<message from='U@\xef\xbc\xa2.TEST/R\xc3\xa9s' to='V@\xef\xbd\x81.test.' id='m1'><body>hi</body></message>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
    CHECK(f.router->delivered[0] ==
          "b.test->a.test <message from='U@b.test/R\xc3\xa9s' to='V@a.test' id='m1'><body>hi</body></message>");
    // Already canonical: forwarded byte for byte.
    p.stream->send("<message from='u@b.test/r' to='v@a.test' id='m2'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 2; }));
    CHECK(f.router->delivered[1] == "b.test->a.test <message from='u@b.test/r' to='v@a.test' id='m2'/>");
}

TEST_CASE("s2s_in: a domain with a sharp s reaches the local server as its A-label, not as a name it would read as 'ss'") {
    Fixture f;
    Peer& p = f.peer("fa\xc3\x9f.test", "a.test", [](Peer& me) {
        me.stream->send("<db:result from='fa\xc3\x9f.test' to='a.test'>some-key</db:result>");
    });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    REQUIRE(f.router->requests.size() == 1);
    CHECK(f.router->requests[0].originating == "xn--fa-hia.test");
    p.stream->send("<message from='m@fa\xc3\x9f.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
    CHECK(f.router->delivered[0] == "xn--fa-hia.test->a.test <message from='m@xn--fa-hia.test' to='v@a.test'/>");
    // 'fass.test' is another domain: not authenticated here.
    p.stream->send("<message from='m@fass.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stream-error invalid-from"));
    CHECK(f.router->delivered.size() == 1);
}

TEST_CASE("s2s_in: stanza addresses that fail IDNA are refused like any invalid JID") {
    struct Case {
        const char* stanza;
        const char* error;
    };
    for (Case c : {Case{"<message from='u@xn--zz.test' to='v@a.test'/>", "invalid-from"},
                   Case{"<message from='u@b.test' to='v@xn--zz.test'/>", "improper-addressing"},
                   Case{"<message from='u@b\xe2\x80\xae" "c.test' to='v@a.test'/>", "invalid-from"}}) {
        CAPTURE(c.stanza);
        Fixture f;
        Peer& p = f.peer("b.test", "a.test", dialback);
        REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
        p.stream->send(c.stanza);
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(has(p, std::string("stream-error ") + c.error));
        CHECK(f.router->delivered.empty());
    }
}

TEST_CASE("s2s_in: piggybacking: a second local domain is authenticated on its own") {
    Fixture f;
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    p.stream->send("<db:result from='b.test' to='a2.test'>another-key</db:result>");
    REQUIRE(f.t.run_until([&] { return f.router->requests.size() == 2 && p.stanzas.size() >= 3; }));
    p.stream->send("<message from='u@b.test' to='v@a2.test'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
    CHECK(f.router->delivered[0].find("b.test->a2.test") == 0);
}

TEST_CASE("s2s_in: a header for a domain we do not serve is host-unknown") {
    Fixture f;
    Peer& p = f.peer("b.test", "elsewhere.test");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "open from="));  // our header came first, as RFC 6120 §4.9.1.1 asks
    CHECK(has(p, "stream-error host-unknown"));
}

TEST_CASE("s2s_in: a denied host gets a dialback error with policy-violation and nothing is verified") {
    Fixture f([](Config& c) { c.host_policy = {{"b.test", Policy::Deny}}; });
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("policy-violation"); }));
    CHECK(p.saw("type='error'"));
    CHECK(p.saw("denied by s2s.host_policy"));
    CHECK(f.router->requests.empty());
}

TEST_CASE("s2s_in: a spam-listed domain gets a dialback error with policy-violation naming the list; nothing is verified") {
    Fixture f;
    f.policy->set_spam_lists(test::spam_lists("# throwaway servers\ntest\n"));  // b.test is under it
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("policy-violation"); }));
    CHECK(p.saw("<db:result from='a.test' to='b.test' type='error'><error type='cancel'><policy-violation"));
    CHECK(p.saw("b.test is listed as a spam domain (antispam.spam_domains_file)"));
    CHECK(f.router->requests.empty());
    CHECK_FALSE(p.closed);  // the stream stays for the peer's other domains, as for a denied host
}

TEST_CASE("s2s_in: a listed sender's stanzas are refused alone; the stream carries the domain's other users on") {
    Fixture f;
    f.policy->set_spam_lists(test::spam_lists("", "spammer@b.test\n"));
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    p.stream->send("<message from='spammer@b.test/r' to='v@a.test' id='s1'><body>buy</body></message>"
                   "<message from='carol@b.test/r' to='v@a.test' id='c1'><body>hi</body></message>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
    CHECK(f.router->delivered[0].find("id='c1'") != std::string::npos);
    REQUIRE(f.router->refused.size() == 1);
    CHECK(f.router->refused[0].rfind("b.test->a.test spammer@b.test is listed as a spammer", 0) == 0);
    CHECK_FALSE(p.closed);
}

TEST_CASE("s2s_in: db:verify is answered valid only for keys this secret issued") {
    Fixture f;
    std::string good = f.keys->key("b.test", "a.test", "sid-1");
    Peer& p = f.peer("b.test", "a.test", [&](Peer& me) {
        me.stream->send("<db:verify from='b.test' to='a.test' id='sid-1'>" + good + "</db:verify>");
        me.stream->send("<db:verify from='b.test' to='a.test' id='sid-2'>" + good + "</db:verify>");
    });
    REQUIRE(f.t.run_until([&] { return p.stanzas.size() >= 3; }));
    CHECK(p.stanzas[1].find("sid-1") != std::string::npos);
    CHECK(p.stanzas[1].find("valid") != std::string::npos);
    CHECK(p.stanzas[1].find("invalid") == std::string::npos);
    CHECK(p.stanzas[2].find("sid-2") != std::string::npos);
    CHECK(p.stanzas[2].find("invalid") != std::string::npos);
}

TEST_CASE("s2s_in: a peer that stalls in negotiation gets connection-timeout") {
    Fixture f;
    f.settings.state_timeout_ms = 100;
    Peer& p = f.peer("b.test", "a.test");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stream-error connection-timeout"));
}

TEST_CASE("s2s_in: a billion-laughs DTD is restricted-xml, and another link is unaffected") {
    Fixture f;
    Peer& bad = f.t.new_peer();
    bad.on_connect_hook = [](Peer& me) {
        me.stream->send("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;'>]>" +
                        header("b.test", "a.test"));
    };
    f.t.connect(bad);
    Peer& good = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return bad.closed && good.saw("valid"); }));
    CHECK(has(bad, "stream-error restricted-xml"));
    good.stream->send("<message from='u@b.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
}

TEST_CASE("s2s_in: a stanza over max_stanza_size is policy-violation") {
    Fixture f;
    f.settings.parse.limits.max_stanza_size = 1000;
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    p.stream->send("<message from='u@b.test' to='v@a.test'><body>" + std::string(5000, 'x') + "</body></message>");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stream-error policy-violation"));
    CHECK(f.router->delivered.empty());
}

TEST_CASE("s2s_in: STARTTLS then SASL EXTERNAL with a certificate for the domain") {
    Fixture f;
    f.use_tls("starttls");
    auto client = Fixture::client_tls(test::TestPki::get().srv);  // SRV-ID/XmppAddr b.test
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [](Peer& me) { me.stream->send(header("b.test", "a.test")); };
    int features = 0;
    p.on_stanza_hook = [&](Peer& me) {
        const std::string& last = me.stanzas.back();
        if (me.events.back() == "stanza features") {
            ++features;
            if (features == 1) {
                CHECK(last.find("starttls") != std::string::npos);
                CHECK(last.find("EXTERNAL") == std::string::npos);
                me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            } else if (features == 2) {
                CHECK(last.find("starttls") == std::string::npos);
                CHECK(last.find("<mechanism>EXTERNAL</mechanism>") != std::string::npos);
                me.stream->send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
            } else {
                CHECK(last.find("EXTERNAL") == std::string::npos);
                me.stream->send("<message from='u@b.test' to='v@a.test'/>");
            }
        } else if (me.events.back() == "stanza proceed" || me.events.back() == "stanza success") {
            if (me.events.back() == "stanza proceed") me.stream->start_tls(client, {"a.test", nullptr});
            me.stream->reset_parser();
            me.stream->send(header("b.test", "a.test"));
        }
    };
    f.t.connect(p);
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
    CHECK(features == 3);
    CHECK(f.router->requests.empty());  // no dialback was needed
}

TEST_CASE("s2s_in: a certificate for another domain gets no EXTERNAL; dialback still works under optional") {
    Fixture f;
    f.use_tls("starttls");
    auto client = Fixture::client_tls(test::TestPki::get().c);  // c.test, claiming b.test
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [](Peer& me) { me.stream->send(header("b.test", "a.test")); };
    int features = 0;
    p.on_stanza_hook = [&](Peer& me) {
        if (me.events.back() == "stanza features" && ++features == 1) {
            me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        } else if (me.events.back() == "stanza features") {
            CHECK(me.stanzas.back().find("EXTERNAL") == std::string::npos);
            dialback(me);
        } else if (me.events.back() == "stanza proceed") {
            me.stream->start_tls(client, {"a.test", nullptr});
            me.stream->reset_parser();
            me.stream->send(header("b.test", "a.test"));
        }
    };
    f.t.connect(p);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    CHECK(f.router->requests.size() == 1);  // verified with the authoritative server
}

TEST_CASE("s2s_in: where a valid certificate is required, dialback without one is refused") {
    Fixture f([](Config& c) { c.secure_domains = {"b.test"}; });
    f.use_tls("starttls");
    auto client = Fixture::client_tls(test::TestPki::get().c);
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [](Peer& me) { me.stream->send(header("b.test", "a.test")); };
    int features = 0;
    p.on_stanza_hook = [&](Peer& me) {
        if (me.events.back() == "stanza features" && ++features == 1)
            me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        else if (me.events.back() == "stanza features")
            dialback(me);
        else if (me.events.back() == "stanza proceed") {
            me.stream->start_tls(client, {"a.test", nullptr});
            me.stream->reset_parser();
            me.stream->send(header("b.test", "a.test"));
        }
    };
    f.t.connect(p);
    REQUIRE(f.t.run_until([&] { return p.saw("not-authorized"); }));
    CHECK(p.saw("must present a certificate valid for its domain"));
    CHECK(f.router->requests.empty());
}

TEST_CASE("s2s_in: a secure domain's dialback on a plain stream is refused without asking its server; counted") {
    Fixture f([](Config& c) { c.secure_domains = {"b.test"}; });
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [](Peer& me) { me.stream->send(header("b.test", "a.test")); };
    p.on_stanza_hook = [](Peer& me) {
        if (me.events.back() == "stanza features") dialback(me);
    };
    uint64_t refused = metrics().secure_domain_refusals.get("inbound:dialback_without_certificate");
    f.t.connect(p);
    REQUIRE(f.t.run_until([&] { return p.saw("not-authorized"); }));
    CHECK(p.saw("type='error'"));
    CHECK(p.saw("must present a certificate valid for its domain"));
    CHECK(f.router->requests.empty());
    CHECK(metrics().secure_domain_refusals.get("inbound:dialback_without_certificate") == refused + 1);
}

TEST_CASE("s2s_in: with STARTTLS required, dialback before TLS is refused") {
    Fixture f;
    f.use_tls("starttls_required");
    Peer& p = f.peer("b.test", "a.test", [](Peer& me) {
        CHECK(me.stanzas.back().find("<required/>") != std::string::npos);
        CHECK(me.stanzas.back().find("dialback") == std::string::npos);
        dialback(me);
    });
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stream-error policy-violation"));
}

TEST_CASE("s2s_in: a peer that stalls in the TLS handshake gets cut off at the deadline") {
    Fixture f;
    f.use_tls("starttls");
    f.settings.state_timeout_ms = 150;
    Peer& p = f.peer("b.test", "a.test", [](Peer& me) { me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); });
    // It never sends a ClientHello after <proceed/>.
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stanza proceed"));
    CHECK(f.router->delivered.empty());
}

TEST_CASE("s2s_in: plain text on a direct-TLS port fails the handshake, and the process carries on") {
    std::vector<std::string> lines;
    set_log_sink([&](LogLevel, std::string_view line) { lines.emplace_back(line); });
    LogLevel before = log_level();
    set_log_level(LogLevel::info);
    {
        Fixture f;
        f.use_tls("tls");
        Peer& p = f.peer("b.test", "a.test");
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        Peer& q = f.peer("b.test", "a.test");
        REQUIRE(f.t.run_until([&] { return q.closed; }));
    }
    set_log_level(before);
    set_log_sink(nullptr);
    int failures = 0;
    for (auto& l : lines) failures += l.find("closed: TLS handshake failed") != std::string::npos;
    CHECK(failures == 2);
}

TEST_CASE("s2s_in: past max_connections a new stream gets resource-constraint; the others go on") {
    Fixture f;
    f.settings.max_connections = Limit{1, false};
    Peer& first = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return first.saw("type='valid'"); }));
    Peer& second = f.peer("b.test", "a.test");
    REQUIRE(f.t.run_until([&] { return second.closed; }));
    CHECK(has(second, "stream-error resource-constraint"));
    first.stream->send("<message from='u@b.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
}

TEST_CASE("s2s_in: a stream error from the peer ends the stream without an error back") {
    Fixture f;
    Peer& p = f.peer("b.test", "a.test", [](Peer& me) {
        me.stream->send("<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    });
    REQUIRE(f.t.run_until([&] { return p.closed || has(p, "close"); }));
    for (auto& e : p.events) CHECK(e.rfind("stream-error", 0) != 0);
}

// ---- bidi (XEP-0288) -------------------------------------------------------------------------------

namespace {

const char* const kBidi = "<bidi xmlns='urn:xmpp:bidi'/>";
const char* const kBidiFeature = "<bidi xmlns='urn:xmpp:features:bidi'/>";
const char* const kExternal = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>";

// A peer for b.test that does STARTTLS with `cert`, then runs on_tls_features(me, n) on the n-th
// features received over TLS (restarting the stream after <success/> on its own).
Peer& tls_peer(Fixture& f, const test::CertFiles& cert, std::function<void(Peer&, int)> on_tls_features) {
    auto client = Fixture::client_tls(cert);
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [](Peer& me) { me.stream->send(header("b.test", "a.test")); };
    auto n = std::make_shared<int>(0);
    p.on_stanza_hook = [client, n, on_tls_features](Peer& me) {
        const std::string& ev = me.events.back();
        if (ev == "stanza features" && !me.stream->tls()) {
            me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        } else if (ev == "stanza features") {
            on_tls_features(me, ++*n);
        } else if (ev == "stanza proceed" || ev == "stanza success") {
            if (ev == "stanza proceed") me.stream->start_tls(client, {"a.test", nullptr});
            me.stream->reset_parser();
            me.stream->send(header("b.test", "a.test"));
        }
    };
    f.t.connect(p);
    return p;
}

QueuedStanza queued(const std::string& xml) {
    auto d = xml::parse_element(xml);
    REQUIRE(d);
    return QueuedStanza::capture(d->root(), xml::NamespaceScope::server_stream());
}

}  // namespace

TEST_CASE("s2s_in: bidi is offered after TLS; asked for before SASL EXTERNAL, our stanzas go back on the stream") {
    Fixture f;
    f.use_tls("starttls");
    std::vector<std::string> tls_features;
    Peer& p = tls_peer(f, test::TestPki::get().srv, [&](Peer& me, int n) {
        tls_features.push_back(me.stanzas.back());
        if (n == 1) {
            me.stream->send(kBidi);
            me.stream->send(kExternal);
        }
    });
    REQUIRE(f.t.run_until([&] { return f.router->routes.count("b.test->a.test") && tls_features.size() == 2; }));
    CHECK(p.stanzas[0].find("starttls") != std::string::npos);
    CHECK(p.stanzas[0].find("urn:xmpp:features:bidi") == std::string::npos);  // never on a plain stream
    CHECK(tls_features[0].find(kBidiFeature) != std::string::npos);
    CHECK(tls_features[1].find("urn:xmpp:features:bidi") == std::string::npos);  // once, before authentication
    CHECK(f.router->routes.size() == 1);

    // Ours go back on this stream; the peer's keep coming in.
    REQUIRE(f.router->send_back("a.test", "b.test", "<message from='alice@a.test/r' to='bob@b.test' id='back1'><body>back</body></message>"));
    p.stream->send("<message from='bob@b.test/r' to='alice@a.test' id='in1'/>");
    REQUIRE(f.t.run_until([&] { return p.saw("id='back1'") && f.router->delivered.size() == 1; }));
    CHECK(p.saw("<body>back</body>"));
    // Only for the pair it offered.
    ReverseRoute* route = f.router->routes["b.test->a.test"];
    CHECK_FALSE(route->send_reverse("a2.test", "b.test", queued("<message from='alice@a2.test' to='bob@b.test' id='x'/>")));
    CHECK_FALSE(route->send_reverse("a.test", "c.test", queued("<message from='alice@a.test' to='eve@c.test' id='y'/>")));

    // The stream ends: the route is withdrawn before it goes.
    p.stream->send("</stream:stream>");
    REQUIRE(f.t.run_until([&] { return f.router->routes.empty(); }));
    CHECK(f.router->withdrawn == 1);
    CHECK_FALSE(p.saw("id='x'"));
    CHECK_FALSE(p.saw("id='y'"));
}

TEST_CASE("s2s_in: bidi and dialback with a certificate valid for the domain: the pair is offered") {
    Fixture f;
    f.use_tls("starttls");
    Peer& p = tls_peer(f, test::TestPki::get().srv, [](Peer& me, int n) {
        if (n != 1) return;
        me.stream->send(kBidi);
        dialback(me);
    });
    REQUIRE(f.t.run_until([&] { return f.router->routes.count("b.test->a.test") == 1; }));
    CHECK(p.saw("type='valid'"));
    CHECK(f.router->requests.empty());  // the certificate proved it (no call to the authority)
}

TEST_CASE("s2s_in: bidi with dialback only (certificate for another domain): no reverse route") {
    Fixture f;
    f.use_tls("starttls");
    Peer& p = tls_peer(f, test::TestPki::get().c, [](Peer& me, int n) {  // c.test, claiming b.test
        if (n != 1) return;
        CHECK(me.stanzas.back().find(kBidiFeature) != std::string::npos);
        me.stream->send(kBidi);
        dialback(me);
    });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    f.t.run_for(20);
    CHECK(f.router->requests.size() == 1);  // verified with the authoritative server
    CHECK(f.router->routes.empty());        // ...which is not enough to send back on this stream
    p.stream->send("<message from='bob@b.test/r' to='alice@a.test' id='in1'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));  // its own stanzas are fine
}

TEST_CASE("s2s_in: bidi is not offered on a plain stream, and asking for it there is unsupported-stanza-type") {
    for (bool tls_available : {false, true}) {
        CAPTURE(tls_available);
        Fixture f;
        if (tls_available) f.use_tls("starttls");  // offered, but not (yet) used
        Peer& p = f.peer("b.test", "a.test", [](Peer& me) {
            CHECK(me.stanzas.back().find("urn:xmpp:features:bidi") == std::string::npos);
            me.stream->send(kBidi);
        });
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(has(p, "stream-error unsupported-stanza-type"));
        CHECK(p.saw("only over TLS"));
    }
}

TEST_CASE("s2s_in: bidi asked for after authentication, or with s2s.bidi off, is refused") {
    SUBCASE("after SASL EXTERNAL") {
        Fixture f;
        f.use_tls("starttls");
        Peer& p = tls_peer(f, test::TestPki::get().srv, [](Peer& me, int n) {
            me.stream->send(n == 1 ? kExternal : kBidi);
        });
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(has(p, "stream-error unsupported-stanza-type"));
        CHECK(p.saw("before authentication"));
        CHECK(f.router->routes.empty());
    }
    SUBCASE("s2s.bidi = false") {
        Fixture f;
        f.use_tls("starttls");
        f.settings.bidi = false;
        Peer& p = tls_peer(f, test::TestPki::get().srv, [](Peer& me, int) {
            CHECK(me.stanzas.back().find("urn:xmpp:features:bidi") == std::string::npos);
            me.stream->send(kBidi);
        });
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(has(p, "stream-error unsupported-stanza-type"));
        CHECK(p.saw("disabled"));
    }
}

// ---- the negotiation deadline while a verification is under way ---------------------------------

TEST_CASE("s2s_in: a dialback verification slower than state_timeout, within its bound, keeps the stream") {
    Fixture f;
    f.settings.state_timeout_ms = 100;
    f.router->answer_after_ms = 400;  // the authoritative server answers after the negotiation window
    f.router->bound_ms = 2000;        // ...but within what a verification may take
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'") || p.closed; }));
    CHECK_FALSE(p.closed);
    CHECK_FALSE(has(p, "stream-error connection-timeout"));
    p.stream->send("<message from='u@b.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
}

TEST_CASE("s2s_in: without a bound on verifications, the negotiation window alone applies") {
    Fixture f;
    f.settings.state_timeout_ms = 100;
    f.router->answer_after_ms = 400;
    f.router->bound_ms = 0;
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stream-error connection-timeout"));
    CHECK_FALSE(p.saw("type='valid'"));
    CHECK(f.router->requests[0].cancelled);
}

TEST_CASE("s2s_in: a verification past its bound is answered remote-server-timeout; then the window is over") {
    Fixture f;
    f.settings.state_timeout_ms = 100;
    f.router->silent = true;  // the authoritative server never answers
    f.router->bound_ms = 300;
    uint64_t t0 = uv_now(f.t.uv());
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    uint64_t took = uv_now(f.t.uv()) - t0;
    CHECK(took >= 300);
    CHECK(took < 2000);
    CHECK(p.saw("remote-server-timeout"));
    CHECK(p.saw("did not answer within 300 ms"));
    CHECK(has(p, "stream-error connection-timeout"));
    REQUIRE(f.router->requests.size() == 1);
    CHECK(f.router->requests[0].cancelled);
}

TEST_CASE("s2s_in: one stream may have at most 8 dialback verifications under way; more get resource-constraint") {
    Fixture f;
    f.router->silent = true;  // the authoritative servers take their time
    f.router->bound_ms = 5000;
    Peer& p = f.peer("b0.test", "a.test", [](Peer& me) {
        for (int i = 0; i < 9; ++i)
            me.stream->send("<db:result from='b" + std::to_string(i) + ".test' to='a.test'>key</db:result>");
    });
    REQUIRE(f.t.run_until([&] { return p.saw("resource-constraint") || p.closed; }));
    CHECK_FALSE(p.closed);
    CHECK(f.router->requests.size() == 8);
    CHECK(p.saw("from='a.test' to='b8.test' type='error'"));
    CHECK(p.saw("too many dialback verifications are under way; try again later"));
    // once they are answered, another domain may be verified
    f.router->verdict = Router::Verdict::Valid;
    f.router->answer();
    REQUIRE(f.t.run_until([&] { return p.saw("from='a.test' to='b0.test' type='valid'"); }));
    p.stream->send("<db:result from='b8.test' to='a.test'>key</db:result>");
    REQUIRE(f.t.run_until([&] { return f.router->requests.size() == 9; }));
}

TEST_CASE("s2s_in: an authoritative server that cannot be reached is remote-server-not-found, one that is silent remote-server-timeout") {
    for (auto [verdict, condition] : {std::pair{Router::Verdict::Unreachable, "remote-server-not-found"},
                                      std::pair{Router::Verdict::Failed, "remote-server-timeout"}}) {
        Fixture f;
        f.router->verdict = verdict;
        Peer& p = f.peer("b.test", "a.test", dialback);
        REQUIRE(f.t.run_until([&] { return p.saw("type='error'"); }));
        CHECK(p.saw(std::string("<") + condition + " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
        // The peer has not authenticated: it learns the condition, never what we tried or saw.
        CHECK_FALSE(p.saw("said no"));
        CHECK(p.saw(verdict == Router::Verdict::Unreachable
                        ? "the authoritative server for b.test could not be reached"
                        : "the authoritative server for b.test did not answer in time"));
        CHECK_FALSE(p.closed);
    }
}

// ---- PROXY protocol and the per-host cap -----------------------------------------------------------

namespace {

const std::string kProxyV1 = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 5269\r\n";

// A PROXY v1 header for client `ip`:40000.
std::string proxy_v1(const std::string& ip) { return "PROXY TCP4 " + ip + " 127.0.0.1 40000 5269\r\n"; }

// A v2 PROXY header over TCP/IPv4 for 192.0.2.9:40001 -> 127.0.0.1:5269.
std::string proxy_v2() {
    return std::string("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0C", 16) +
           std::string("\xC0\x00\x02\x09\x7F\x00\x00\x01\x9C\x41\x14\x95", 12);
}

// Log lines at info and above while it lives (declare it before the Fixture: closing logs too).
struct LogCapture {
    std::vector<std::string> lines;
    LogLevel before = log_level();
    LogCapture() {
        set_log_level(LogLevel::info);
        set_log_sink([this](LogLevel, std::string_view line) { lines.emplace_back(line); });
    }
    ~LogCapture() {
        set_log_level(before);
        set_log_sink(nullptr);
    }
    // Whether one line holds every one of `parts`.
    bool saw(std::initializer_list<std::string> parts) const {
        for (auto& l : lines) {
            bool all = true;
            for (auto& p : parts) all = all && l.find(p) != std::string::npos;
            if (all) return true;
        }
        return false;
    }
};

// Listens with proxy_protocol, trusting 127.0.0.1 only.
void behind_balancer(Fixture& f) {
    f.settings.proxy_protocol = true;
    REQUIRE(f.settings.proxy_trusted.add("127.0.0.1/32"));
}

// A peer that connects from `from_ip` (a loopback address) and sends `first`, then (unless
// empty) `then`.
Peer& peer_from(Fixture& f, const std::string& from_ip, const std::string& first,
                const std::string& then = header("b.test", "a.test")) {
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [=](Peer& me) { me.stream->send(first + then); };
    p.stream = Stream::create(f.t.loop(), p, {}, 1000);
    sockaddr_in from{};
    uv_ip4_addr(from_ip.c_str(), 0, &from);
    REQUIRE(uv_tcp_bind(reinterpret_cast<uv_tcp_t*>(p.stream->handle()), reinterpret_cast<sockaddr*>(&from), 0) == 0);
    p.stream->connect(f.t.address(), 2000);
    return p;
}

bool served(const Peer& p) { return has(p, "stanza features"); }

}  // namespace

TEST_CASE("s2s_in: PROXY v1 and v2 headers from a trusted sender are served as the client they name") {
    LogCapture log;
    uint64_t accepted = metrics().proxy_headers.get("accepted:proxied");
    Fixture f;
    behind_balancer(f);
    Peer& a = peer_from(f, "127.0.0.1", kProxyV1, header("b.test", "a.test") + "<db:result from='b.test' to='a.test'>k</db:result>");
    Peer& b = peer_from(f, "127.0.0.1", proxy_v2());
    REQUIRE(f.t.run_until([&] { return a.saw("type='valid'") && served(b); }));
    CHECK(metrics().proxy_headers.get("accepted:proxied") == accepted + 2);
    // The client's address is what is logged and counted, with the balancer's beside it.
    CHECK(log.saw({"proxy-header", "PROXY v1 header for client 192.0.2.7:40000", "from 127.0.0.1:"}));
    CHECK(log.saw({"proxy-header", "PROXY v2 header for client 192.0.2.9:40001", "from 127.0.0.1:"}));
    CHECK(f.settings.per_host.at("192.0.2.7") == 1);
    CHECK(f.settings.per_host.at("192.0.2.9") == 1);
    CHECK(f.settings.per_host.count("127.0.0.1") == 0);
    a.stream->send("<message from='u@b.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
}

TEST_CASE("s2s_in: a PROXY header from a sender outside proxy_trusted is refused without an answer") {
    LogCapture log;
    uint64_t refused = metrics().proxy_headers.get("refused:untrusted_sender");
    Fixture f;
    behind_balancer(f);
    Peer& v1 = peer_from(f, "127.0.0.2", kProxyV1);
    Peer& v2 = peer_from(f, "127.0.0.2", proxy_v2());
    REQUIRE(f.t.run_until([&] { return v1.closed && v2.closed; }));
    CHECK(v1.stanzas.empty());
    CHECK(v2.stanzas.empty());
    CHECK_FALSE(has(v1, "open from=a.test"));
    CHECK(metrics().proxy_headers.get("refused:untrusted_sender") == refused + 2);
    CHECK(log.saw({"warning", "proxy-refused", "a PROXY header from a sender outside proxy_trusted", "from 127.0.0.2:"}));
    CHECK(f.settings.per_host.empty());  // never counted
}

TEST_CASE("s2s_in: a sender outside proxy_trusted without a header is served as a direct connection") {
    LogCapture log;
    Fixture f;
    behind_balancer(f);
    Peer& p = peer_from(f, "127.0.0.2", "");
    REQUIRE(f.t.run_until([&] { return served(p); }));
    CHECK(f.settings.per_host.at("127.0.0.2") == 1);
    CHECK(log.saw({"proxy-direct", "127.0.0.2:"}));
}

TEST_CASE("s2s_in: a trusted sender must send a header: XML first, a bad header or silence closes it") {
    LogCapture log;
    uint64_t missing = metrics().proxy_headers.get("refused:missing_header");
    uint64_t bad_port = metrics().proxy_headers.get("refused:v1_bad_port");
    uint64_t timeouts = metrics().proxy_headers.get("refused:timeout");
    Fixture f;
    behind_balancer(f);
    f.settings.proxy_timeout_ms = 200;  // the PROXY header's window (state_timeout is the next stage's)
    Peer& xml = peer_from(f, "127.0.0.1", "<?xml version='1.0'?>");
    Peer& bad = peer_from(f, "127.0.0.1", "PROXY TCP4 192.0.2.7 127.0.0.1 99999 5269\r\n");
    Peer& silent = peer_from(f, "127.0.0.1", "", "");
    REQUIRE(f.t.run_until([&] { return xml.closed && bad.closed && silent.closed; }));
    for (Peer* p : {&xml, &bad, &silent}) CHECK(p->stanzas.empty());
    CHECK(metrics().proxy_headers.get("refused:missing_header") == missing + 1);
    CHECK(metrics().proxy_headers.get("refused:v1_bad_port") == bad_port + 1);
    CHECK(metrics().proxy_headers.get("refused:timeout") == timeouts + 1);
    CHECK(log.saw({"proxy-refused", "no PROXY header from a sender in proxy_trusted"}));
    CHECK(log.saw({"proxy-refused", "PROXY v1 port is not a number"}));
    CHECK(log.saw({"proxy-refused", "no PROXY header within 200 ms"}));
}

TEST_CASE("s2s_in: a PROXY header before a direct TLS ClientHello") {
    LogCapture log;
    Fixture f;
    behind_balancer(f);
    f.use_tls("tls");
    auto client = Fixture::client_tls(test::TestPki::get().srv);
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [&](Peer& me) {
        me.stream->send(kProxyV1);
        me.stream->start_tls(client, {"a.test", nullptr});
    };
    p.on_tls_hook = [](Peer& me) { me.stream->send(header("b.test", "a.test")); };
    f.t.connect(p);
    REQUIRE(f.t.run_until([&] { return served(p); }));
    CHECK(p.saw("<mechanism>EXTERNAL</mechanism>"));
    CHECK(log.saw({"proxy-header", "client 192.0.2.7:40000"}));
}

TEST_CASE("s2s_in: past max_connections_per_host a client gets resource-constraint; others and freed slots are served") {
    uint64_t refused = metrics().connections_refused.get("max_connections_per_host");
    Fixture f;
    behind_balancer(f);
    f.settings.max_connections_per_host = Limit{2, false};
    Peer& one = peer_from(f, "127.0.0.1", proxy_v1("192.0.2.7"));
    Peer& two = peer_from(f, "127.0.0.1", proxy_v1("192.0.2.7"));
    REQUIRE(f.t.run_until([&] { return served(one) && served(two); }));
    Peer& three = peer_from(f, "127.0.0.1", proxy_v1("192.0.2.7"));
    Peer& other = peer_from(f, "127.0.0.1", proxy_v1("192.0.2.8"));
    REQUIRE(f.t.run_until([&] { return three.closed && served(other) && f.settings.per_host.at("192.0.2.7") == 2; }));
    CHECK(has(three, "stream-error resource-constraint"));
    CHECK(three.saw("too many connections from your address"));
    CHECK_FALSE(three.saw("192.0.2.7"));  // addresses go to the log only
    CHECK(metrics().connections_refused.get("max_connections_per_host") == refused + 1);
    CHECK(f.settings.per_host.at("192.0.2.7") == 2);  // the refused one is released
    CHECK(f.settings.per_host.at("192.0.2.8") == 1);

    // A closed stream frees its slot, once.
    one.stream->send("</stream:stream>");
    REQUIRE(f.t.run_until([&] { return one.closed && f.settings.per_host.at("192.0.2.7") == 1; }));
    Peer& again = peer_from(f, "127.0.0.1", proxy_v1("192.0.2.7"));
    REQUIRE(f.t.run_until([&] { return served(again); }));
    CHECK(f.settings.per_host.at("192.0.2.7") == 2);
    CHECK_FALSE(again.closed);
}

TEST_CASE("s2s_in: max_connections_per_host without PROXY protocol counts the TCP peer's address") {
    Fixture f;
    f.settings.max_connections_per_host = Limit{1, false};
    Peer& first = f.peer("b.test", "a.test");
    REQUIRE(f.t.run_until([&] { return served(first); }));
    Peer& second = f.peer("b.test", "a.test");
    REQUIRE(f.t.run_until([&] { return second.closed; }));
    CHECK(has(second, "stream-error resource-constraint"));
    CHECK(second.saw("too many connections from your address"));
    CHECK_FALSE(second.saw("127.0.0.1"));
    CHECK_FALSE(first.closed);
}

TEST_CASE("s2s_in: under selfsigned_peer a self-signed certificate encrypts but proves no domain") {
    Fixture f;
    f.use_tls("starttls");
    {
        const test::TestPki& pki = test::TestPki::get();
        tls::ContextOptions o;
        o.role = tls::Role::Server;
        o.certificate = {pki.a.cert, pki.a.key, "", {}};
        o.cacertfile = pki.ca;
        o.verify_mode = tls::VerifyMode::SelfSignedPeer;
        auto made = tls::Context::create(o);
        REQUIRE_MESSAGE(made, made.error);
        f.settings.tls_context = made.context;
    }
    auto client = Fixture::client_tls(test::TestPki::get().self_signed);  // self.test, made by itself
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [](Peer& me) { me.stream->send(header("self.test", "a.test")); };
    int features = 0;
    p.on_stanza_hook = [&](Peer& me) {
        if (me.events.back() == "stanza features" && ++features == 1) {
            me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        } else if (me.events.back() == "stanza features") {
            CHECK(me.stanzas.back().find("EXTERNAL") == std::string::npos);  // no SASL EXTERNAL on it
            me.stream->send("<db:result from='self.test' to='a.test'>some-key</db:result>");
        } else if (me.events.back() == "stanza proceed") {
            me.stream->start_tls(client, {"a.test", nullptr});
            me.stream->reset_parser();
            me.stream->send(header("self.test", "a.test"));
        }
    };
    f.t.connect(p);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    CHECK(f.router->requests.size() == 1);  // not taken on the certificate's word: asked its authority
    CHECK(f.router->routes.empty());        // and nothing of ours would go back over it
}

// ---- review fixes ------------------------------------------------------------------------------

TEST_CASE("s2s_in: bidi asked for after a pair was authenticated, or while one is being verified, on the same features is refused") {
    SUBCASE("after dialback proved by the certificate") {
        Fixture f;
        f.use_tls("starttls");
        Peer& p = tls_peer(f, test::TestPki::get().srv, [](Peer& me, int n) {
            if (n != 1) return;
            CHECK(me.stanzas.back().find(kBidiFeature) != std::string::npos);
            dialback(me);
        });
        p.on_stanza_hook = [hook = p.on_stanza_hook](Peer& me) {
            hook(me);
            if (me.events.back() == "stanza result" && me.last().find("type='valid'") != std::string::npos)
                me.stream->send(kBidi);  // the features that offered bidi are still the current ones
        };
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(p.saw("type='valid'"));
        CHECK(has(p, "stream-error unsupported-stanza-type"));
        CHECK(p.saw("before authentication"));
        CHECK(f.router->routes.empty());
    }
    SUBCASE("while a dialback verification is under way") {
        Fixture f;
        f.use_tls("starttls");
        f.router->silent = true;
        f.router->bound_ms = 5000;
        Peer& p = tls_peer(f, test::TestPki::get().c, [](Peer& me, int n) {  // c.test, claiming b.test
            if (n != 1) return;
            dialback(me);
            me.stream->send(kBidi);
        });
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(f.router->requests.size() == 1);
        CHECK(has(p, "stream-error unsupported-stanza-type"));
        CHECK(p.saw("before authentication"));
    }
}

TEST_CASE("s2s_in: STARTTLS after a domain was authenticated or a verification started on the plain stream is refused") {
    for (bool verified : {true, false}) {
        CAPTURE(verified);
        LogCapture log;
        Fixture f;
        f.use_tls("starttls");
        f.router->silent = !verified;
        f.router->bound_ms = 5000;
        Peer& p = f.peer("b.test", "a.test", [verified](Peer& me) {
            dialback(me);
            if (!verified) me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        });
        p.on_stanza_hook = [hook = p.on_stanza_hook](Peer& me) {
            hook(me);
            if (me.last().find("type='valid'") != std::string::npos)
                me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        };
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(has(p, "stanza failure"));
        CHECK(p.saw("urn:ietf:params:xml:ns:xmpp-tls"));
        CHECK(has(p, "close"));  // then </stream:stream> (RFC 6120 5.4.2.2)
        CHECK_FALSE(has(p, "stanza proceed"));
        REQUIRE(f.router->requests.size() == 1);
        if (!verified) CHECK(f.t.run_until([&] { return f.router->requests[0].cancelled; }));
        CHECK(log.saw({"starttls-refused", verified ? "after a domain was authenticated on the plain stream"
                                                    : "after a dialback verification was started on the plain stream"}));
    }
}

TEST_CASE("s2s_in: dialback claiming an IP address or one of our own hosts is refused without a verification") {
    struct Case {
        const char* claimed;
        const char* condition;
        const char* text;
    };
    for (Case c : {Case{"10.0.0.5", "not-acceptable", "10.0.0.5 is an IP address"},
                   Case{"[::1]", "not-acceptable", "[::1] is an IP address"},
                   Case{"[0:0::1]", "not-acceptable", "[::1] is an IP address"},
                   Case{"a2.test", "policy-violation", "a2.test is served here"},
                   Case{"A.Test.", "policy-violation", "a.test is served here"}}) {
        CAPTURE(c.claimed);
        Fixture f;
        std::string claimed = c.claimed;
        Peer& p = f.peer("b.test", "a.test", [claimed](Peer& me) {
            me.stream->send("<db:result from='" + claimed + "' to='a.test'>some-key</db:result>");
        });
        REQUIRE(f.t.run_until([&] { return p.saw("type='error'") || p.closed; }));
        CHECK(p.saw(std::string("<") + c.condition + " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
        CHECK(p.saw(c.text));
        f.t.run_for(20);
        CHECK(f.router->requests.empty());
        CHECK_FALSE(p.closed);
        // ...and nothing was authenticated for it.
        p.stream->send("<message from='u@" + claimed + "' to='v@a.test'/>");
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(f.router->delivered.empty());
    }
}

TEST_CASE("s2s_in: an IP address that s2s.host_policy allows by name may still be verified by dialback") {
    Fixture f([](Config& c) { c.host_policy = {{"10.0.0.5", Policy::Allow}}; });
    Peer& p = f.peer("10.0.0.5", "a.test", [](Peer& me) {
        me.stream->send("<db:result from='10.0.0.5' to='a.test'>some-key</db:result>");
    });
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    REQUIRE(f.router->requests.size() == 1);
    CHECK(f.router->requests[0].originating == "10.0.0.5");
}

TEST_CASE("s2s_in: SASL EXTERNAL for one of our own hosts is neither offered nor accepted, even with a certificate valid for it") {
    Fixture f;
    f.use_tls("starttls");
    auto client = Fixture::client_tls(test::TestPki::get().a);  // a.test's own certificate, as a copy of it would be
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [](Peer& me) { me.stream->send(header("a.test", "a.test")); };
    p.on_stanza_hook = [client](Peer& me) {
        const std::string& ev = me.events.back();
        if (ev == "stanza features" && !me.stream->tls()) {
            me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        } else if (ev == "stanza features") {
            CHECK(me.last().find("EXTERNAL") == std::string::npos);
            me.stream->send(kExternal);  // asked for all the same
        } else if (ev == "stanza proceed") {
            me.stream->start_tls(client, {"a.test", nullptr});
            me.stream->reset_parser();
            me.stream->send(header("a.test", "a.test"));
        }
    };
    f.t.connect(p);
    REQUIRE(f.t.run_until([&] { return has(p, "stanza failure") || has(p, "stanza success"); }));
    CHECK_FALSE(has(p, "stanza success"));
    CHECK(p.saw("<not-authorized/>"));
    CHECK(p.saw("a.test is served here"));
    p.stream->send("<message from='u@a.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(f.router->delivered.empty());
}

TEST_CASE("s2s_in: a db:verify with a type is refused; with STARTTLS required none is answered before TLS") {
    SUBCASE("typed") {
        Fixture f;
        std::string good = f.keys->key("b.test", "a.test", "sid-1");
        Peer& p = f.peer("b.test", "a.test", [&](Peer& me) {
            me.stream->send("<db:verify from='b.test' to='a.test' id='sid-1' type='valid'>" + good + "</db:verify>");
        });
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(has(p, "stream-error unsupported-stanza-type"));
        CHECK_FALSE(has(p, "stanza verify"));
    }
    SUBCASE("STARTTLS required") {
        Fixture f;
        f.use_tls("starttls_required");
        std::string good = f.keys->key("b.test", "a.test", "sid-1");
        Peer& p = f.peer("b.test", "a.test", [&](Peer& me) {
            me.stream->send("<db:verify from='b.test' to='a.test' id='sid-1'>" + good + "</db:verify>");
        });
        REQUIRE(f.t.run_until([&] { return p.closed; }));
        CHECK(has(p, "stream-error policy-violation"));
        CHECK_FALSE(has(p, "stanza verify"));
    }
}

TEST_CASE("s2s_in: a stanza on a bidi route that aborts the stream (output over the hard limit) is not counted as sent") {
    Fixture f;
    f.use_tls("starttls");
    Peer& p = tls_peer(f, test::TestPki::get().srv, [](Peer& me, int n) {
        if (n != 1) return;
        me.stream->send(kBidi);
        me.stream->send(kExternal);
    });
    REQUIRE(f.t.run_until([&] { return f.router->routes.count("b.test->a.test") == 1 && has(p, "stanza success"); }));
    f.t.run_for(20);
    ReverseRoute* route = f.router->routes["b.test->a.test"];
    QueuedStanza big = queued("<message from='alice@a.test/r' to='bob@b.test' id='big'/>");
    big.bytes = "<message from='alice@a.test/r' to='bob@b.test' id='big'><body>" + std::string(Stream::kHardLimit, 'x') +
                "</body></message>";
    CHECK_FALSE(route->send_reverse("a.test", "b.test", big));
    REQUIRE(f.t.run_until([&] { return p.closed && f.router->routes.empty(); }));
    CHECK_FALSE(p.saw("id='big'"));
}

// ---- caps on what a peer that has not authenticated may make us hold ------------------------------

namespace {

// Sends db:result claims for b<first>.test .. b<first+n-1>.test to a.test.
void claim(Peer& p, int first, int n) {
    for (int i = first; i < first + n; ++i)
        p.stream->send("<db:result from='b" + std::to_string(i) + ".test' to='a.test'>key</db:result>");
}

}  // namespace

TEST_CASE("s2s_in: past s2s.max_domain_pairs (counting those being verified) a claim is policy-violation") {
    uint64_t refused = metrics().limits_reached.get("max_domain_pairs");
    Fixture f([](Config& c) { c.max_domain_pairs = 3; });
    Peer& p = f.peer("b0.test", "a.test", [](Peer& me) { claim(me, 0, 5); });
    REQUIRE(f.t.run_until([&] { return p.saw("to='b2.test' type='valid'") && p.saw("to='b4.test' type='error'"); }));
    CHECK(p.saw("from='a.test' to='b3.test' type='error'"));
    CHECK(p.saw("this stream may authenticate at most 3 domain pairs"));
    CHECK(p.saw("<policy-violation"));
    CHECK(f.router->requests.size() == 3);
    CHECK(metrics().limits_reached.get("max_domain_pairs") == refused + 2);
    // The authenticated pairs work; an authenticated pair may be claimed again.
    p.stream->send("<message from='u@b2.test' to='v@a.test'/>");
    claim(p, 0, 1);
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1 && p.stanzas.size() >= 7; }));
    CHECK(f.router->requests.size() == 3);
    CHECK_FALSE(p.closed);
}

TEST_CASE("s2s_in: thousands of pairs on one stream, when the operator allows them, are claimed and used") {
    Fixture f([](Config& c) {
        c.max_domain_pairs = 100000;
        c.max_verifications_per_stream = 64;
        c.max_verifications_per_host = 1000;
    });
    const int n = 3000;
    Peer& p = f.peer("b0.test", "a.test", [](Peer& me) { claim(me, 0, 60); });
    int sent = 60;
    REQUIRE(f.t.run_until([&] {
        // keep 60 verifications under way until n are claimed
        int answered = static_cast<int>(p.stanzas.size()) - 1;
        if (answered + 60 > sent && sent < n) {
            claim(p, sent, 1);
            ++sent;
        }
        return answered >= n;
    }, 20000));
    CHECK_FALSE(p.saw("type='error'"));
    for (int i = 0; i < n; ++i) p.stream->send("<message from='u@b" + std::to_string(i) + ".test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == static_cast<size_t>(n); }, 20000));
}

TEST_CASE("s2s_in: verifications under way are bounded per client address and in total; refusals are counted") {
    uint64_t per_host = metrics().limits_reached.get("max_verifications_per_host");
    Fixture f([](Config& c) { c.max_verifications_per_host = 3; });
    f.router->silent = true;
    f.router->bound_ms = 5000;
    Peer& one = f.peer("b0.test", "a.test", [](Peer& me) { claim(me, 0, 2); });
    REQUIRE(f.t.run_until([&] { return f.router->requests.size() == 2; }));
    Peer& two = f.peer("b10.test", "a.test", [](Peer& me) { claim(me, 10, 2); });  // same address, 127.0.0.1
    REQUIRE(f.t.run_until([&] { return two.saw("resource-constraint"); }));
    CHECK(f.router->requests.size() == 3);
    CHECK(two.saw("from='a.test' to='b11.test' type='error'"));
    CHECK(two.saw("too many dialback verifications are under way; try again later"));
    CHECK_FALSE(two.saw("127.0.0.1"));
    CHECK(f.ctx->verifications.total() == 3);
    CHECK(metrics().limits_reached.get("max_verifications_per_host") == per_host + 1);
    // A closed stream gives its units back.
    one.stream->send("</stream:stream>");
    REQUIRE(f.t.run_until([&] { return one.closed && f.ctx->verifications.total() == 1; }));
    claim(two, 11, 1);
    REQUIRE(f.t.run_until([&] { return f.router->requests.size() == 4; }));
    CHECK(f.ctx->verifications.of("127.0.0.1") == 2);
}

TEST_CASE("s2s_in: s2s.max_verifications bounds verifications for all addresses together") {
    uint64_t total = metrics().limits_reached.get("max_verifications");
    Fixture f([](Config& c) { c.max_verifications = 2; });
    f.router->silent = true;
    f.router->bound_ms = 5000;
    Peer& p = f.peer("b0.test", "a.test", [](Peer& me) { claim(me, 0, 3); });
    REQUIRE(f.t.run_until([&] { return p.saw("resource-constraint"); }));
    CHECK(f.router->requests.size() == 2);
    CHECK(metrics().limits_reached.get("max_verifications") == total + 1);
    // Answered verifications give their units back.
    f.router->answer();
    REQUIRE(f.t.run_until([&] { return f.ctx->verifications.total() == 0; }));
}

TEST_CASE("s2s_in: a stream that only asks db:verify keeps the negotiation deadline, not the idle timeout") {
    Fixture f;
    f.settings.state_timeout_ms = 200;
    f.settings.idle_timeout_ms = 600000;
    std::string good = f.keys->key("b.test", "a.test", "sid-1");
    int asked = 0;
    Peer& p = f.peer("b.test", "a.test", [&](Peer& me) {
        me.stream->send("<db:verify from='b.test' to='a.test' id='sid-1'>" + good + "</db:verify>");
        ++asked;
    });
    // Requests within the window each restart it...
    uint64_t t0 = uv_now(f.t.uv());
    while (uv_now(f.t.uv()) - t0 < 500) {
        REQUIRE(f.t.run_until([&] { return static_cast<int>(p.stanzas.size()) > asked; }));
        REQUIRE_FALSE(p.closed);
        f.t.run_until([] { return false; }, 100);
        p.stream->send("<db:verify from='b.test' to='a.test' id='sid-1'>" + good + "</db:verify>");
        ++asked;
    }
    // ...and without one the stream ends after state_timeout.
    uint64_t t1 = uv_now(f.t.uv());
    REQUIRE(f.t.run_until([&] { return p.closed; }, 3000));
    uint64_t took = uv_now(f.t.uv()) - t1;
    CHECK(took >= 150);
    CHECK(took < 1500);
    CHECK(has(p, "stream-error connection-timeout"));
}

// The listener's access rule (MongooseIM [access] + [acl]) for remote domains.
void deny_b_test(Config& c) {
    c.acl["bad"] = {AclPattern{"", "b.test"}};
    c.access["s2s"] = {AccessClause{"bad", "deny"}, AccessClause{"all", "allow"}};
}

TEST_CASE("s2s_in: a remote domain the listener's access rule denies gets a dialback error; another is verified") {
    Fixture f(deny_b_test);
    f.settings.access = "s2s";
    Peer& p = f.peer("b.test", "a.test", [](Peer& me) {
        me.stream->send("<db:result from='b.test' to='a.test'>k1</db:result>");
        me.stream->send("<db:result from='c.test' to='a.test'>k2</db:result>");  // piggybacked
    });
    REQUIRE(f.t.run_until([&] { return p.saw("from='a.test' to='c.test' type='valid'"); }));
    CHECK(p.saw("<db:result from='a.test' to='b.test' type='error'>"));
    CHECK(p.saw("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"));
    REQUIRE(f.router->requests.size() == 1);  // b.test was never verified
    CHECK(f.router->requests[0].originating == "c.test");
    p.stream->send("<message from='u@c.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
    p.stream->send("<message from='u@b.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(f.router->delivered.size() == 1);
}

TEST_CASE("s2s_in: a stream that keeps claiming what it is refused gets every answer, but only the first refusals are logged") {
    LogCapture log;
    Fixture f(deny_b_test);
    f.settings.access = "s2s";
    Peer& p = f.peer("b.test", "a.test", [](Peer& me) {
        for (int i = 0; i < 40; ++i) me.stream->send("<db:result from='b.test' to='a.test'>k</db:result>");
    });
    auto answers = [&p] {
        size_t n = 0;
        for (const auto& s : p.stanzas) n += s.find("<db:result from='a.test' to='b.test' type='error'>") == 0;
        return n;
    };
    REQUIRE(f.t.run_until([&] { return answers() == 40; }));
    CHECK_FALSE(p.closed);
    size_t logged = 0;
    for (const auto& l : log.lines) logged += l.find("is not admitted by access rule s2s") != std::string::npos;
    CHECK(logged == 16);
    CHECK(f.router->requests.empty());
}

TEST_CASE("s2s_in: SASL EXTERNAL for a domain the listener's access rule denies is not-authorized") {
    Fixture f(deny_b_test);
    f.settings.access = "s2s";
    f.use_tls("starttls");
    auto client = Fixture::client_tls(test::TestPki::get().srv);  // SRV-ID/XmppAddr b.test
    Peer& p = f.t.new_peer();
    p.on_connect_hook = [](Peer& me) { me.stream->send(header("b.test", "a.test")); };
    int features = 0;
    p.on_stanza_hook = [&](Peer& me) {
        if (me.events.back() == "stanza features") {
            if (++features == 1) me.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            else me.stream->send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
        } else if (me.events.back() == "stanza proceed") {
            me.stream->start_tls(client, {"a.test", nullptr});
            me.stream->reset_parser();
            me.stream->send(header("b.test", "a.test"));
        }
    };
    f.t.connect(p);
    REQUIRE(f.t.run_until([&] { return p.saw("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"); }));
    CHECK(p.saw("<not-authorized/>"));
    CHECK(p.saw("not admitted by this listener's access rule"));
    CHECK(!p.saw("<success"));
}

TEST_CASE("s2s_in: after a reload denies an authenticated domain, its next stanza ends the stream unrouted") {
    Fixture f;
    f.settings.access = "s2s";
    f.config.access["s2s"] = {AccessClause{"all", "allow"}};
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    deny_b_test(f.config);
    p.stream->send("<message from='u@b.test' to='v@a.test'/>");
    REQUIRE(f.t.run_until([&] { return p.closed; }));
    CHECK(has(p, "stream-error policy-violation"));
    CHECK(f.router->delivered.empty());
}

// ---- stream limits (XEP-0478) --------------------------------------------------------------------

TEST_CASE("s2s_in: the features list our limits: the listener's max_stanza_size and the idle timeout") {
    Fixture f;
    f.settings.parse.limits.max_stanza_size = 1000;
    f.settings.idle_timeout_ms = 3000;
    SUBCASE("s2s.stream_limits on (the default)") {
        Peer& p = f.peer("b.test", "a.test");
        REQUIRE(f.t.run_until([&] { return has(p, "stanza features"); }));
        CHECK(p.saw("<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>1000</max-bytes>"
                    "<idle-seconds>3</idle-seconds></limits>"));
    }
    SUBCASE("no idle timeout: max-bytes alone") {
        f.settings.idle_timeout_ms = 0;
        Peer& p = f.peer("b.test", "a.test");
        REQUIRE(f.t.run_until([&] { return has(p, "stanza features"); }));
        CHECK(p.saw("<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>1000</max-bytes></limits>"));
    }
    SUBCASE("s2s.stream_limits off") {
        f.settings.stream_limits = false;
        Peer& p = f.peer("b.test", "a.test");
        REQUIRE(f.t.run_until([&] { return has(p, "stanza features"); }));
        CHECK_FALSE(p.saw("stream-limits"));
        CHECK(p.saw("urn:xmpp:features:dialback"));
    }
}

TEST_CASE("s2s_in: whitespace from the peer is traffic: it keeps an idle stream open; silence closes it") {
    Fixture f;
    f.settings.idle_timeout_ms = 400;
    Peer& p = f.peer("b.test", "a.test", dialback);
    REQUIRE(f.t.run_until([&] { return p.saw("type='valid'"); }));
    uint64_t t0 = uv_now(f.t.uv());
    while (uv_now(f.t.uv()) - t0 < 1200) {  // three idle timeouts, a space every 150 ms
        f.t.run_for(150);
        REQUIRE_FALSE(p.closed);
        p.stream->send(" ");
    }
    p.stream->send("<message from='u@b.test' to='v@a.test' id='m1'/>");
    REQUIRE(f.t.run_until([&] { return f.router->delivered.size() == 1; }));
    uint64_t t1 = uv_now(f.t.uv());
    REQUIRE(f.t.run_until([&] { return p.closed; }, 3000));
    CHECK(uv_now(f.t.uv()) - t1 >= 350);
    CHECK(has(p, "close"));  // our </stream:stream>, no stream error
    CHECK_FALSE(p.saw("connection-timeout"));
}
