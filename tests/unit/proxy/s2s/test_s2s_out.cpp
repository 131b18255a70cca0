// Outbound links through the router, against scripted remote servers in one loop.
#include <doctest/doctest.h>

#include <optional>

#include <memory>
#include <unistd.h>

#include "common/xmpp/xml_stream.h"
#include "proxy/ops/metrics.h"
#include "proxy/routing/router.h"
#include "proxy/s2s/s2s_out.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;
using test::Peer;

namespace {

// What the router hands to the local server: bounces and inbound stanzas.
struct RecordingLocal : LocalSide {
    std::vector<QueuedStanza> got;
    void deliver(const std::string&, const std::string&, QueuedStanza s) override { got.push_back(std::move(s)); }
};

QueuedStanza stanza(const std::string& xml) {
    auto d = xml::parse_element(xml);
    REQUIRE(d);
    return QueuedStanza::capture(d->root(), xml::NamespaceScope::server_stream());
}

const char* const kMessage = "<message from='alice@a.test/r' to='bob@b.test' id='m1'><body>hi</body></message>";

std::string remote_header(const std::string& id) {
    return "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
           "xmlns:db='jabber:server:dialback' from='b.test' to='a.test' version='1.0' id='" + id + "'>";
}

// s2s.outgoing.address answers, passed on as if DNS had given them (not the operator's word).
class AsIfFromDns : public Resolver {
public:
    AsIfFromDns(EventLoop& loop, const Config& config) : inner_(loop, config) {}
    uint64_t resolve(const std::string& domain, Done done) override {
        return inner_.resolve(domain, [done = std::move(done)](std::vector<Candidate> found, const std::string& error) {
            for (auto& c : found) c.configured = false;
            done(std::move(found), error);
        });
    }
    void cancel(uint64_t token) override { inner_.cancel(token); }

private:
    StaticResolver inner_;
};

struct Fixture {
    test::TestLoop t;
    Config config;
    std::unique_ptr<DialbackKeys> keys;
    std::unique_ptr<PolicyRules> policy;
    OutboundSettings settings;
    std::unique_ptr<Resolver> resolver;
    std::unique_ptr<ProxyRouter> router;
    std::unique_ptr<ProxyContext> ctx;
    RecordingLocal local;
    Peer& remote;  // the remote server's side of the accepted connection
    int accepted = 0;
    int remote_rcvbuf = 0;  // the remote's kernel receive buffer, when set (small: it fills soon)

    // from_dns: the candidates come as if from DNS (checked against s2s.outgoing.denied_networks).
    explicit Fixture(const std::function<void(Config&)>& tweak = nullptr, bool from_dns = false) : remote(t.new_peer()) {
        config.hosts = {"a.test"};
        t.listen([this](uv_stream_t* l) {
            ++accepted;
            remote.stream = Stream::create(t.loop(), remote, {}, 99);
            REQUIRE(uv_accept(l, remote.stream->handle()) == 0);
            if (remote_rcvbuf > 0)
                (void)uv_recv_buffer_size(reinterpret_cast<uv_handle_t*>(remote.stream->handle()), &remote_rcvbuf);
            remote.stream->start();
        });
        const auto* sin = reinterpret_cast<const sockaddr_in*>(t.address());
        config.outgoing.address = {{"b.test", "127.0.0.1", ntohs(sin->sin_port)}};
        if (tweak) tweak(config);
        keys = std::make_unique<DialbackKeys>("secret");
        policy = std::make_unique<PolicyRules>(config, false);
        settings.state_timeout_ms = 2000;
        if (from_dns) resolver = std::make_unique<AsIfFromDns>(t.loop(), config);
        else resolver = std::make_unique<StaticResolver>(t.loop(), config);
        router = std::make_unique<ProxyRouter>(settings, *resolver);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), *keys, *policy, *router, {}, 0});
        router->attach(*ctx, local);
    }
    ~Fixture() {
        t.shutdown();
        for (Connection* c : std::vector<Connection*>(ctx->connections.begin(), ctx->connections.end()))
            c->shutdown(StreamError::SystemShutdown, "test over");
        CHECK(t.run_until([this] { return ctx->connections.empty(); }));
    }
    // The remote answers our header with its own (id "sid") and features with dialback.
    void remote_speaks_dialback(const char* verdict = "valid") {
        remote.on_open_hook = [](Peer& p) {
            p.stream->send(remote_header("sid") +
                           "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
        };
        remote.on_stanza_hook = [this, verdict](Peer& p) {
            if (p.events.back() == "stanza result")
                p.stream->send(std::string("<db:result from='b.test' to='a.test' type='") + verdict + "'/>");
        };
    }

    // The remote over TLS (remote_speaks_tls): what it offers, and what it does once it has
    // accepted a.test (its dialback answer or SASL success sent).
    struct TlsScript {
        bool offer_bidi = true;
        bool external = false;            // offer SASL EXTERNAL (and we present a.test's certificate)
        bool sasl_done = false;
        std::function<void(Peer&)> on_accepted;
    } script;
    // STARTTLS with `cert` as the remote's certificate, then features per `script`; dialback
    // answered valid, SASL EXTERNAL accepted.
    void remote_speaks_tls(const test::CertFiles& cert) {
        const test::TestPki& pki = test::TestPki::get();
        REQUIRE_MESSAGE(pki.ok(), pki.error());
        tls::ContextOptions so;
        so.role = tls::Role::Server;
        so.certificate = {cert.cert, cert.key, "", {}};
        so.cacertfile = pki.ca;
        auto server = tls::Context::create(so);
        REQUIRE_MESSAGE(server, server.error);
        tls::ContextOptions co;
        co.role = tls::Role::Client;
        co.cacertfile = pki.ca;
        if (script.external) co.certificate = {pki.a.cert, pki.a.key, "", {}};
        auto client = tls::Context::create(co);
        REQUIRE_MESSAGE(client, client.error);
        settings.tls = starttls::mode("starttls");
        settings.tls_context = client.context;
        settings.have_certificate = script.external;
        remote.on_open_hook = [this](Peer& p) {
            std::string f = "<stream:features>";
            if (!p.stream->tls_open()) {
                f += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
            } else if (!script.sasl_done) {
                if (script.offer_bidi) f += "<bidi xmlns='urn:xmpp:features:bidi'/>";
                if (script.external)
                    f += "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>";
            }
            f += "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>";
            p.stream->send(remote_header(script.sasl_done ? "sid3" : p.stream->tls_open() ? "sid2" : "sid") + f);
            if (script.sasl_done && script.on_accepted) script.on_accepted(p);
        };
        auto server_ctx = server.context;
        remote.on_stanza_hook = [this, server_ctx](Peer& p) {
            const std::string& ev = p.events.back();
            if (ev == "stanza starttls") {
                p.stream->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
                p.stream->start_tls(server_ctx);
                p.stream->reset_parser();
            } else if (ev == "stanza auth") {
                p.stream->send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
                p.stream->reset_parser();
                script.sasl_done = true;
            } else if (ev == "stanza result") {
                p.stream->send("<db:result from='b.test' to='a.test' type='valid'/>");
                if (script.on_accepted) script.on_accepted(p);
            }
        };
    }
};

size_t index_of(const Peer& p, const std::string& event) {
    for (size_t i = 0; i < p.events.size(); ++i)
        if (p.events[i] == event) return i;
    return p.events.size();
}

bool has(const Peer& p, const std::string& event) { return index_of(p, event) < p.events.size(); }

bool got_id(const RecordingLocal& local, const std::string& id) {
    for (auto& s : local.got)
        if (s.id == id) return true;
    return false;
}

}  // namespace

TEST_CASE("s2s_out: dialback with the key XEP-0185 gives, then the queued stanza is delivered") {
    Fixture f;
    f.remote_speaks_dialback();
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
    CHECK(f.remote.events[0] == "open from=a.test");
    std::string expected_key = f.keys->key("b.test", "a.test", "sid");
    CHECK(f.remote.saw("<db:result from='a.test' to='b.test'>" + expected_key + "</db:result>"));
    CHECK(f.local.got.empty());
    // A second stanza reuses the authenticated link.
    f.router->to_remote("a.test", "b.test", stanza("<message from='alice@a.test' to='bob@b.test' id='m2'/>"));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("id='m2'"); }));
    CHECK(f.accepted == 1);
    CHECK(f.router->links() == 1);
    // Every stanza accepted ends in exactly one outcome: both were delivered, none bounced.
    CHECK(f.router->counters().to_remote == 2);
    CHECK(f.router->counters().delivered_remote == 2);
    CHECK(f.router->counters().bounced == 0);
}

TEST_CASE("s2s_out: a refused dialback bounces the stanza with the reason") {
    Fixture f;
    f.remote_speaks_dialback("invalid");
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
    const QueuedStanza& b = f.local.got[0];
    CHECK(b.type == "error");
    CHECK(b.to == "alice@a.test/r");
    CHECK(b.from == "bob@b.test");
    CHECK(b.bytes.find("remote-server-not-found") != std::string::npos);
    CHECK(b.bytes.find("s2s to b.test failed: b.test refused dialback for a.test (invalid key)") != std::string::npos);
    CHECK_FALSE(f.remote.saw("<body>hi</body>"));
}

TEST_CASE("s2s_out: a remote that stops reading ends the link at the send deadline; what waits bounces with remote-server-timeout") {
    Fixture f([](Config& c) { c.hosts = {"a.test", "a2.test"}; });
    f.settings.parse.send_timeout_ms = 200;
    f.remote_rcvbuf = 8192;
    f.remote_speaks_dialback();
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
    f.remote.stream->pause_reading();  // from now on the remote takes nothing
    const uint64_t before = metrics().send_timeouts[static_cast<int>(Side::Public)];
    const std::string body(60000, 'x');
    // 6.6 MB: more than the kernel's send buffer takes (tcp_wmem's 4 MiB at most), less than the
    // stream's 8 MiB limit.
    for (int i = 0; i < 110; ++i)
        f.router->to_remote("a.test", "b.test",
                            stanza("<message from='alice@a.test/r' to='bob@b.test' id='big" + std::to_string(i) +
                                   "'><body>" + body + "</body></message>"));
    // A second local domain: its stanza waits for dialback, which the remote never reads.
    f.router->to_remote("a2.test", "b.test",
                        stanza("<message from='carol@a2.test/r' to='bob@b.test' id='q1'><body>waits</body></message>"));
    REQUIRE(f.t.run_until([&] { return got_id(f.local, "q1"); }, 1500));  // well before state_timeout (2 s)
    const QueuedStanza& b = f.local.got.back();
    CHECK(b.type == "error");
    CHECK(b.to == "carol@a2.test/r");
    CHECK(b.bytes.find("remote-server-timeout") != std::string::npos);
    CHECK(b.bytes.find("s2s to b.test failed: b.test stopped reading: the peer left more than 262144 bytes of our "
                       "output waiting for 200 ms") != std::string::npos);
    CHECK(metrics().send_timeouts[static_cast<int>(Side::Public)] == before + 1);
    CHECK(f.router->links() == 0);  // the next stanza takes a new link
    CHECK(f.router->counters().bounced == 1);
}

TEST_CASE("s2s_out: nothing listening: the bounce says the connection failed") {
    Fixture f([](Config& c) { c.outgoing.address = {{"b.test", "127.0.0.1", 1}}; });
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
    CHECK(f.local.got[0].bytes.find("s2s to b.test failed: could not connect: b.test (127.0.0.1 port 1): connection refused") !=
          std::string::npos);
    REQUIRE(f.t.run_until([&] { return f.router->links() == 0; }));
}

TEST_CASE("s2s_out: a link that fails before it is ready is counted by the state it was in") {
    uint64_t connecting = metrics().outgoing_failures.get("connecting");
    uint64_t awaiting = metrics().outgoing_failures.get("awaiting-header");
    {
        Fixture f([](Config& c) { c.outgoing.address = {{"b.test", "127.0.0.1", 1}}; });
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
        CHECK(metrics().outgoing_failures.get("connecting") == connecting + 1);
    }
    {
        Fixture f;
        f.settings.state_timeout_ms = 100;
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
        CHECK(metrics().outgoing_failures.get("awaiting-header") == awaiting + 1);
    }
    // A link shut down while it connects (stop, drain) is not a failure to reach the remote.
    {
        Fixture f;
        f.settings.state_timeout_ms = 5000;
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.ctx->connections.size() == 1);
        uint64_t before = 0, after = 0;
        for (const auto& [state, n] : metrics().outgoing_failures.values()) before += n;
        (*f.ctx->connections.begin())->shutdown(StreamError::SystemShutdown, "s2s-proxy is shutting down");
        REQUIRE(f.t.run_until([&] { return f.ctx->connections.empty(); }));
        for (const auto& [state, n] : metrics().outgoing_failures.values()) after += n;
        CHECK(after == before);
    }
    // A link that had been ready and then failed is not a failure to reach the remote.
    Fixture f;
    f.remote_speaks_dialback("invalid");
    uint64_t before = 0;
    for (const auto& [state, n] : metrics().outgoing_failures.values()) before += n;
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
    uint64_t after = 0;
    for (const auto& [state, n] : metrics().outgoing_failures.values()) after += n;
    CHECK(after == before);
}

TEST_CASE("s2s_out: waiting for <proceed/> is its own state, counted and labelled as awaiting-features") {
    CHECK(std::string(S2SOut::state_name(S2SOut::State::AwaitingProceed)) == "awaiting-features");
    uint64_t awaiting = metrics().outgoing_failures.get("awaiting-features");
    Fixture f;
    f.settings.tls = starttls::mode("starttls");
    f.settings.state_timeout_ms = 300;
    f.remote.on_open_hook = [](Peer& p) {  // offers STARTTLS, then never answers <starttls/>
        p.stream->send(remote_header("sid") +
                       "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>");
    };
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.ctx->connections.size() == 1);
    auto* link = dynamic_cast<S2SOut*>(*f.ctx->connections.begin());
    REQUIRE(link);
    REQUIRE(f.t.run_until([&] { return has(f.remote, "stanza starttls"); }));
    f.t.run_until([&] { return link->state() == S2SOut::State::AwaitingProceed; });
    CHECK(link->state() == S2SOut::State::AwaitingProceed);
    CHECK(std::string(link->state_label()) == "awaiting-features");
    REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
    CHECK(metrics().outgoing_failures.get("awaiting-features") == awaiting + 1);
}

TEST_CASE("s2s_out: a domain with no address bounces at once") {
    Fixture f;
    f.router->to_remote("a.test", "c.test", stanza("<iq from='alice@a.test/r' to='c.test' type='get' id='p1'/>"));
    REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
    CHECK(f.local.got[0].bytes.find("no address for c.test") != std::string::npos);
    CHECK(f.accepted == 0);
}

TEST_CASE("s2s_out: a remote that never answers our header times out into a bounce") {
    Fixture f;
    f.settings.state_timeout_ms = 100;
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
    CHECK(f.local.got[0].bytes.find("remote-server-timeout") != std::string::npos);
    CHECK(f.local.got[0].bytes.find("no answer from b.test within 100 ms (awaiting-header)") != std::string::npos);
}

TEST_CASE("s2s_out: verifying a dialback key with the authoritative server") {
    Fixture f;
    f.remote.on_open_hook = [](Peer& p) {
        p.stream->send(remote_header("other") +
                       "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    };
    f.remote.on_stanza_hook = [](Peer& p) {
        if (p.events.back() == "stanza verify")
            p.stream->send("<db:verify from='b.test' to='a.test' id='in-42' type='valid'/>");
    };
    Router::Verdict verdict = Router::Verdict::Failed;
    bool answered = false;
    f.router->verify_dialback("a.test", "b.test", "in-42", "the-key", [&](Router::Verdict v, const std::string&) {
        verdict = v;
        answered = true;
    });
    REQUIRE(f.t.run_until([&] { return answered; }));
    CHECK(verdict == Router::Verdict::Valid);
    CHECK(f.remote.saw("<db:verify from='a.test' to='b.test' id='in-42'>the-key</db:verify>"));
    CHECK_FALSE(f.remote.saw("db:result"));  // verifying needs no authentication of our own
}

TEST_CASE("s2s_out: verifying with an authoritative server that cannot be reached or is silent") {
    SUBCASE("nothing listening: unreachable") {
        Fixture f([](Config& c) { c.outgoing.address = {{"b.test", "127.0.0.1", 1}}; });
        std::optional<Router::Verdict> verdict;
        std::string why;
        f.router->verify_dialback("a.test", "b.test", "in-1", "k", [&](Router::Verdict v, const std::string& w) {
            verdict = v;
            why = w;
        });
        REQUIRE(f.t.run_until([&] { return verdict.has_value(); }));
        CHECK(*verdict == Router::Verdict::Unreachable);
        CHECK(why.find("connection refused") != std::string::npos);
    }
    SUBCASE("no answer to our header: failed (a timeout)") {
        Fixture f;
        f.settings.state_timeout_ms = 100;
        std::optional<Router::Verdict> verdict;
        f.router->verify_dialback("a.test", "b.test", "in-2", "k",
                                  [&](Router::Verdict v, const std::string&) { verdict = v; });
        REQUIRE(f.t.run_until([&] { return verdict.has_value(); }));
        CHECK(*verdict == Router::Verdict::Failed);
    }
}

TEST_CASE("s2s_out: STARTTLS required but not offered fails the link") {
    Fixture f;
    f.settings.tls = starttls::mode("starttls_required");
    f.remote_speaks_dialback();
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
    CHECK(f.local.got[0].bytes.find("does not offer STARTTLS, which is required here") != std::string::npos);
}

namespace {

// A client context trusting the test CA, as the server builds it for a secure domain.
std::shared_ptr<const tls::Context> client_context() {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    tls::ContextOptions co;
    co.role = tls::Role::Client;
    co.cacertfile = pki.ca;
    auto made = tls::Context::create(co);
    REQUIRE_MESSAGE(made, made.error);
    return made.context;
}

void secure_b(Config& c) { c.secure_domains = {"b.test"}; }

}  // namespace

TEST_CASE("s2s_out: a secure domain that offers no TLS fails the link before anything is sent, whatever the mode") {
    for (const char* mode : {"false", "starttls"}) {
        CAPTURE(mode);
        Fixture f(secure_b);
        f.settings.tls = starttls::mode(mode);
        f.settings.tls_context = client_context();
        f.remote_speaks_dialback();
        uint64_t refused = metrics().secure_domain_refusals.get("outbound:no_tls");
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
        const QueuedStanza& bounce = f.local.got[0];
        CHECK(bounce.type == "error");
        CHECK(bounce.bytes.find("<remote-server-not-found") != std::string::npos);
        CHECK(bounce.bytes.find("s2s to b.test failed: b.test is a secure domain (s2s.secure_domains) and offered no TLS") !=
              std::string::npos);
        CHECK(metrics().secure_domain_refusals.get("outbound:no_tls") == refused + 1);
        CHECK_FALSE(f.remote.saw("db:result"));
        CHECK_FALSE(f.remote.saw("<body>hi</body>"));
    }
}

TEST_CASE("s2s_out: a dialback key is not sent for verification to a secure domain that offers no TLS") {
    Fixture f(secure_b);
    f.settings.tls_context = client_context();
    f.remote.on_open_hook = [](Peer& p) {
        p.stream->send(remote_header("other") +
                       "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    };
    std::optional<Router::Verdict> verdict;
    std::string why;
    f.router->verify_dialback("a.test", "b.test", "in-42", "the-key", [&](Router::Verdict v, const std::string& w) {
        verdict = v;
        why = w;
    });
    REQUIRE(f.t.run_until([&] { return verdict.has_value(); }));
    CHECK(*verdict == Router::Verdict::Unreachable);
    CHECK(why.find("b.test is a secure domain (s2s.secure_domains) and offered no TLS") != std::string::npos);
    CHECK_FALSE(f.remote.saw("db:verify"));
}

TEST_CASE("s2s_out: a secure domain gets STARTTLS with TLS off; its certificate must be valid for it") {
    SUBCASE("a certificate for another name: the link fails, nothing is sent") {
        Fixture f(secure_b);
        f.remote_speaks_tls(test::TestPki::get().c);  // DNS:c.test
        f.settings.tls = starttls::plain();
        uint64_t refused = metrics().secure_domain_refusals.get("outbound:certificate");
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
        CHECK(has(f.remote, "stanza starttls"));
        CHECK(f.local.got[0].bytes.find("s2s to b.test failed: the certificate of b.test is not valid for it "
                                        "(certificate for another name: it is for c.test)") != std::string::npos);
        CHECK(metrics().secure_domain_refusals.get("outbound:certificate") == refused + 1);
        CHECK_FALSE(has(f.remote, "stanza result"));
        CHECK_FALSE(f.remote.saw("<body>hi</body>"));
    }
    SUBCASE("a certificate for b.test: delivered over TLS") {
        Fixture f(secure_b);
        f.remote_speaks_tls(test::TestPki::get().srv);  // SRV-ID and XmppAddr b.test
        f.settings.tls = starttls::plain();
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
        CHECK(index_of(f.remote, "stanza starttls") < index_of(f.remote, "stanza result"));
        CHECK(f.local.got.empty());
    }
    SUBCASE("without the rule, TLS off means no STARTTLS (and dialback in the clear)") {
        Fixture f;
        f.remote_speaks_tls(test::TestPki::get().c);
        f.settings.tls = starttls::plain();
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
        CHECK_FALSE(has(f.remote, "stanza starttls"));
    }
}

TEST_CASE("s2s_out: a denied domain is bounced with policy-violation without connecting") {
    Fixture f([](Config& c) { c.host_policy = {{"b.test", Policy::Deny}}; });
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.local.got.size() == 1);
    CHECK(f.local.got[0].bytes.find("policy-violation") != std::string::npos);
    CHECK(f.local.got[0].bytes.find("denied by s2s.host_policy") != std::string::npos);
    f.t.run_for(20);
    CHECK(f.accepted == 0);
}

TEST_CASE("s2s_out: presence and errors are never bounced, only counted") {
    Fixture f([](Config& c) { c.host_policy = {{"b.test", Policy::Deny}}; });
    f.router->to_remote("a.test", "b.test", stanza("<presence from='alice@a.test' to='bob@b.test'/>"));
    f.router->to_remote("a.test", "b.test", stanza("<message from='alice@a.test' to='bob@b.test' type='error'/>"));
    CHECK(f.local.got.empty());
    CHECK(f.router->counters().dropped_presence == 1);
    CHECK(f.router->counters().dropped_error == 1);
}

TEST_CASE("s2s_out: a full queue answers resource-constraint") {
    Fixture f;
    f.settings.state_timeout_ms = 5000;
    f.settings.queue_max_stanzas = 3;  // s2s.outgoing.queue_max_stanzas
    f.router->to_remote("a.test", "b.test", stanza(kMessage));  // the link is being made: it queues
    REQUIRE(f.ctx->connections.size() == 1);
    const Connection* link = *f.ctx->connections.begin();
    CHECK(link->queue_fill() == doctest::Approx(1.0 / 3));  // for /metrics: s2s_proxy_queue_fill_ratio
    for (size_t i = 0; i < 3; ++i) f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.local.got.size() == 1);
    CHECK(f.local.got[0].bytes.find("resource-constraint") != std::string::npos);
    CHECK(link->queue_fill() == 1);
}

TEST_CASE("s2s_out: after a failure the host is in backoff: stanzas bounce at once, saying when the next try is") {
    Fixture f([](Config& c) { c.outgoing.address = {{"b.test", "127.0.0.1", 1}}; });
    f.settings.max_retry_delay_ms = 1500;
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.local.got.size() == 1 && f.router->links() == 0; }));
    CHECK(f.local.got[0].bytes.find("; next attempt in 2 s") != std::string::npos);  // 1 s + jitter, rounded up
    uint64_t first = f.router->backoff_ms("b.test");
    CHECK(first > 700);
    CHECK(first <= 1200);
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.local.got.size() == 2);  // at once, no new attempt
    CHECK(f.router->counters().backoff_bounces == 1);
    CHECK(f.local.got[1].bytes.find("s2s to b.test failed: could not connect") != std::string::npos);
    CHECK(f.local.got[1].bytes.find("next attempt in") != std::string::npos);

    // Once the wait is over, the next stanza tries again; a second failure doubles the wait, up
    // to max_retry_delay.
    REQUIRE(f.t.run_until([&] { return f.router->backoff_ms("b.test") == 0; }, 3000));
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.local.got.size() == 3 && f.router->links() == 0; }));
    CHECK(f.router->backoff_ms("b.test") > 1200);
    CHECK(f.router->backoff_ms("b.test") <= 1500);
    CHECK(f.router->hosts_in_backoff() == 1);
}

TEST_CASE("s2s_out: a link that works clears the host's backoff") {
    Fixture f;
    f.remote_speaks_dialback();
    CHECK(f.router->link_failed("b.test", "test failure", false).find("next attempt in") != std::string::npos);
    CHECK(f.router->backoff_ms("b.test") > 0);
    REQUIRE(f.t.run_until([&] { return f.router->backoff_ms("b.test") == 0; }, 3000));
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
    CHECK(f.router->hosts_in_backoff() == 0);
    CHECK(f.router->link_failed("b.test", "closed after working", true).empty());  // no backoff then
    // The doubling starts over: the next failure waits about a second again, not two.
    // (1 s plus up to 20% jitter, rounded up: "2 s", or "1 s" when the jitter is 0)
    std::string next = f.router->link_failed("b.test", "fails again", false);
    CHECK((next == "; next attempt in 2 s" || next == "; next attempt in 1 s"));
    CHECK(f.router->backoff_ms("b.test") <= 1200);
}

TEST_CASE("s2s_out: a server that never accepts (full backlog) hits connection_timeout") {
    // A listener with a backlog of 0 whose queue is filled and never drained: further SYNs are
    // dropped, so a connect neither succeeds nor fails until the timeout.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd, 0) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    std::vector<int> fillers;
    for (int i = 0; i < 4; ++i) {  // more than the queue holds; extra ones just stay pending
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        fillers.push_back(c);
    }
    int port = ntohs(addr.sin_port);
    {
        Fixture f([port](Config& c) { c.outgoing.address = {{"b.test", "127.0.0.1", port}}; });
        f.settings.connect_timeout_ms = 200;
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }, 3000));
        CHECK(f.local.got[0].bytes.find("could not connect: b.test (127.0.0.1 port " + std::to_string(port) +
                                        "): timed out") != std::string::npos);
    }
    for (int c : fillers) close(c);
    close(fd);
}

TEST_CASE("s2s_out: an error for a remote sender whose host is in backoff opens no link; it is counted") {
    Fixture f;
    (void)f.router->link_failed("b.test", "test failure", false);
    f.router->bounce(stanza("<message from='bob@b.test/r' to='alice@a.test' id='in1'/>"), StanzaError::ServiceUnavailable,
                     "the local server is unreachable");
    f.t.run_for(20);
    CHECK(f.router->links() == 0);
    CHECK(f.accepted == 0);
    CHECK(f.router->counters().bounces_undeliverable == 1);
}

// ---- bidi (XEP-0288) -------------------------------------------------------------------------------

namespace {

const char* const kBack = "<message from='bob@b.test/r' to='alice@a.test/r' id='r1'><body>back</body></message>";

}  // namespace

TEST_CASE("s2s_out: bidi asked for over TLS when the remote's certificate proves it; its stanzas come back (dialback)") {
    Fixture f;
    f.settings.limits = limits_feature(524288, 600000);
    f.script.on_accepted = [](Peer& p) { p.stream->send(kBack); };
    f.remote_speaks_tls(test::TestPki::get().srv);  // SRV-ID and XmppAddr b.test
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>") && got_id(f.local, "r1"); }));
    // <bidi/> before authenticating (XEP-0288 §2.2)
    REQUIRE(has(f.remote, "stanza bidi"));
    CHECK(index_of(f.remote, "stanza bidi") < index_of(f.remote, "stanza result"));
    // with what we accept on the link in it (XEP-0478 §2.2)
    CHECK(f.remote.saw("<bidi xmlns='urn:xmpp:bidi'><limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>524288"
                       "</max-bytes><idle-seconds>600</idle-seconds></limits></bidi>"));
    const QueuedStanza& back = f.local.got[0];
    CHECK(back.type.empty());
    CHECK(back.from == "bob@b.test/r");
    CHECK(back.bytes.find("<body>back</body>") != std::string::npos);
    // counted like a stanza from an inbound stream; one connection for both directions
    CHECK(f.router->counters().from_remote == 1);
    CHECK(f.router->counters().delivered_remote == 1);
    CHECK(f.accepted == 1);
}

TEST_CASE("s2s_out: bidi with SASL EXTERNAL: the remote may send to the domain our stream is from at once") {
    Fixture f;
    f.script.external = true;
    f.script.on_accepted = [](Peer& p) { p.stream->send(kBack); };
    f.remote_speaks_tls(test::TestPki::get().srv);
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>") && got_id(f.local, "r1"); }));
    CHECK(index_of(f.remote, "stanza bidi") < index_of(f.remote, "stanza auth"));
    CHECK_FALSE(f.remote.saw("db:result"));
    CHECK(f.router->counters().from_remote == 1);
}

TEST_CASE("s2s_out: stanzas back on a bidi link pass the inbound checks; anything else ends the link") {
    struct Case {
        const char* stanza;
        const char* error;
    };
    for (Case c : {Case{"<message from='mallory@c.test' to='alice@a.test' id='r1'/>", "invalid-from"},          // spoofed
                   Case{"<message from='bob@b.test' to='alice@a2.test' id='r1'/>", "invalid-from"},            // a2.test not authenticated here
                   Case{"<message from='bob@b.test' to='x@elsewhere.test' id='r1'/>", "host-unknown"},
                   Case{"<message to='alice@a.test' id='r1'/>", "improper-addressing"},
                   Case{"<message from='bob@b.test' to='alice@@a.test' id='r1'/>", "improper-addressing"}}) {
        CAPTURE(c.stanza);
        Fixture f([](Config& cfg) { cfg.hosts = {"a.test", "a2.test"}; });
        std::string bad = c.stanza;
        f.script.on_accepted = [bad](Peer& p) { p.stream->send(bad); };
        f.remote_speaks_tls(test::TestPki::get().srv);
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return has(f.remote, std::string("stream-error ") + c.error); }));
        CHECK_FALSE(got_id(f.local, "r1"));
        CHECK(f.router->counters().from_remote == 0);
        REQUIRE(f.t.run_until([&] { return f.router->links() == 0; }));
    }
}

TEST_CASE("s2s_out: a denied remote's stanza back on a bidi link is policy-violation") {
    // The link is up, then the policy denies the remote (as a reload would): what it sends back
    // is refused too.
    Fixture f;
    f.script.on_accepted = [](Peer& p) { p.stream->send(kBack); };
    f.remote_speaks_tls(test::TestPki::get().srv);
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return got_id(f.local, "r1"); }));
    f.config.host_policy = {{"b.test", Policy::Deny}};
    *f.policy = PolicyRules(f.config, false);  // the rules the context refers to (as a reload would)
    f.remote.stream->send("<message from='bob@b.test' to='alice@a.test' id='r2'/>");
    REQUIRE(f.t.run_until([&] { return has(f.remote, "stream-error policy-violation"); }));
    CHECK_FALSE(got_id(f.local, "r2"));
}

TEST_CASE("s2s_out: no bidi with a remote no [[listen.s2s]] access rule admits; after a reload denies it, its stanzas back end the link") {
    // The listener's access rule denies b.test: it must not reach local users through a link we
    // opened either.
    auto deny_b = [](Config& cfg) {
        cfg.listen_s2s.resize(1);
        cfg.listen_s2s[0].access = "s2s";
        cfg.acl["b"] = {AclPattern{"", "b.test"}};
        cfg.access["s2s"] = {AccessClause{"b", "deny"}, AccessClause{"all", "allow"}};
    };
    SUBCASE("denied from the start: bidi is not asked for") {
        Fixture f(deny_b);
        f.script.on_accepted = [](Peer& p) { p.stream->send(kBack); };
        f.remote_speaks_tls(test::TestPki::get().srv);
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return has(f.remote, "stream-error not-authorized"); }));
        CHECK(f.remote.saw("<body>hi</body>"));
        CHECK_FALSE(has(f.remote, "stanza bidi"));
        CHECK_FALSE(got_id(f.local, "r1"));
    }
    SUBCASE("denied by a reload once bidi is up") {
        Fixture f;
        f.script.on_accepted = [](Peer& p) { p.stream->send(kBack); };
        f.remote_speaks_tls(test::TestPki::get().srv);
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return got_id(f.local, "r1"); }));
        deny_b(f.config);
        f.remote.stream->send("<message from='bob@b.test' to='alice@a.test' id='r2'/>");
        REQUIRE(f.t.run_until([&] { return has(f.remote, "stream-error policy-violation"); }));
        CHECK_FALSE(got_id(f.local, "r2"));
    }
}

TEST_CASE("s2s_out: no bidi on a plain stream, even when offered; a stanza from the remote there is not-authorized") {
    Fixture f;
    f.remote.on_open_hook = [](Peer& p) {
        p.stream->send(remote_header("sid") +
                       "<stream:features><bidi xmlns='urn:xmpp:features:bidi'/>"
                       "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    };
    f.remote.on_stanza_hook = [](Peer& p) {
        if (p.events.back() != "stanza result") return;
        p.stream->send("<db:result from='b.test' to='a.test' type='valid'/>");
        p.stream->send(kBack);
    };
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return has(f.remote, "stream-error not-authorized"); }));
    CHECK_FALSE(has(f.remote, "stanza bidi"));
    CHECK_FALSE(got_id(f.local, "r1"));
}

TEST_CASE("s2s_out: no bidi when the remote's certificate does not prove it, or with s2s.bidi off") {
    SUBCASE("certificate for another domain") {
        Fixture f;
        f.script.on_accepted = [](Peer& p) { p.stream->send(kBack); };
        f.remote_speaks_tls(test::TestPki::get().c);  // c.test
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return has(f.remote, "stream-error not-authorized"); }));
        CHECK(f.remote.saw("<body>hi</body>"));  // dialback worked; only bidi was not asked for
        CHECK_FALSE(has(f.remote, "stanza bidi"));
        CHECK_FALSE(got_id(f.local, "r1"));
    }
    SUBCASE("s2s.bidi = false") {
        Fixture f;
        f.settings.bidi = false;
        f.script.on_accepted = [](Peer& p) { p.stream->send(kBack); };
        f.remote_speaks_tls(test::TestPki::get().srv);
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return has(f.remote, "stream-error not-authorized"); }));
        CHECK_FALSE(has(f.remote, "stanza bidi"));
        CHECK_FALSE(got_id(f.local, "r1"));
    }
}

TEST_CASE("s2s_out: on a bidi link the remote may ask us to verify keys; its own dialback requests are refused") {
    Fixture f;
    std::string key = f.keys->key("b.test", "a.test", "their-sid");
    f.script.on_accepted = [key](Peer& p) {
        p.stream->send("<db:verify from='b.test' to='a.test' id='their-sid'>" + key + "</db:verify>");
        p.stream->send("<db:verify from='b.test' to='a.test' id='other-sid'>" + key + "</db:verify>");
        p.stream->send("<db:result from='b2.test' to='a.test'>some-key</db:result>");
        p.stream->send(kBack);
    };
    f.remote_speaks_tls(test::TestPki::get().srv);
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return got_id(f.local, "r1"); }));
    std::vector<std::string> answers;
    for (auto& s : f.remote.stanzas)
        if (s.find("type='") != std::string::npos && (s.find("verify") != std::string::npos || s.find("result") != std::string::npos))
            answers.push_back(s);
    REQUIRE(answers.size() == 3);
    CHECK(answers[0].find("their-sid") != std::string::npos);
    CHECK(answers[0].find("type='valid'") != std::string::npos);
    CHECK(answers[1].find("other-sid") != std::string::npos);
    CHECK(answers[1].find("type='invalid'") != std::string::npos);
    CHECK(answers[2].find("to='b2.test'") != std::string::npos);
    CHECK(answers[2].find("type='error'") != std::string::npos);
    CHECK(answers[2].find("policy-violation") != std::string::npos);
    CHECK(f.router->counters().from_remote == 1);  // the link is still up and working
}

TEST_CASE("s2s_out: a burst read from a stream while the link negotiates waits in TCP; nothing is bounced") {
    Fixture f;
    // The stream the burst comes from (as from the local server): each stanza read goes to the router.
    struct Source {
        uv_tcp_t listener{};
        Fixture* f = nullptr;
        Peer* side = nullptr;
    } src;
    src.f = &f;
    src.side = &f.t.new_peer();
    src.side->on_stanza_hook = [&f](Peer& me) {
        QueuedStanza s = stanza(me.last());
        s.source = me.stream;
        f.router->to_remote("a.test", "b.test", std::move(s));
    };
    uv_tcp_init(f.t.uv(), &src.listener);
    src.listener.data = &src;
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    REQUIRE(uv_tcp_bind(&src.listener, reinterpret_cast<sockaddr*>(&addr), 0) == 0);
    int len = sizeof addr;
    uv_tcp_getsockname(&src.listener, reinterpret_cast<sockaddr*>(&addr), &len);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&src.listener), 4, [](uv_stream_t* l, int) {
                auto* s = static_cast<Source*>(l->data);
                s->side->stream = Stream::create(s->f->t.loop(), *s->side, {}, 77);
                REQUIRE(uv_accept(l, s->side->stream->handle()) == 0);
                s->side->stream->start();
            }) == 0);
    // Three times what the link's queue holds. (Holding takes effect at the next read: the stanzas
    // of one 64 KB read, here about 240, are all queued.)
    constexpr int kBurst = 3000;
    Peer& sender = f.t.new_peer();
    sender.on_connect_hook = [](Peer& me) {
        me.stream->send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                        "from='a.test' to='b.test' version='1.0'>");
        for (int i = 0; i < kBurst; ++i)
            me.stream->send("<message from='alice@a.test/r' to='bob@b.test' id='b" + std::to_string(i) + "'><body>" +
                            std::string(200, 'x') + "</body></message>");
    };
    sender.stream = Stream::create(f.t.loop(), sender, {}, 78);
    sender.stream->connect(reinterpret_cast<sockaddr*>(&addr), 2000);

    // The remote accepted the connection but says nothing yet: the link waits for its header.
    int got = 0;
    REQUIRE(f.t.run_until([&] { return f.accepted == 1 && src.side->stream && src.side->stream->reading_stopped(); }));
    f.t.run_for(100);
    CHECK(src.side->stanzas.size() < 500);
    CHECK(f.local.got.empty());  // nothing bounced for a full queue
    // The remote speaks: dialback, then every stanza of the burst arrives, once.
    f.remote.on_stanza_hook = [&](Peer& p) {
        if (p.events.back() == "stanza result") p.stream->send("<db:result from='b.test' to='a.test' type='valid'/>");
        if (p.events.back() == "stanza message") ++got;
    };
    f.remote.stream->send(remote_header("sid") + "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    REQUIRE(f.t.run_until([&] { return got == kBurst; }, 10000));
    CHECK(f.local.got.empty());
    CHECK(f.remote.saw("id='b2999'"));
    sender.stream->close("done");
    uv_close(reinterpret_cast<uv_handle_t*>(&src.listener), nullptr);
}

// ---- review fixes ------------------------------------------------------------------------------

TEST_CASE("s2s_out: a <proceed/> we did not ask for ends the link with a stream error; the queued stanza bounces") {
    SUBCASE("before any <starttls/>") {
        Fixture f;
        const test::TestPki& pki = test::TestPki::get();
        REQUIRE_MESSAGE(pki.ok(), pki.error());
        tls::ContextOptions co;
        co.role = tls::Role::Client;
        co.cacertfile = pki.ca;
        auto client = tls::Context::create(co);
        REQUIRE_MESSAGE(client, client.error);
        f.settings.tls = starttls::mode("starttls");
        f.settings.tls_context = client.context;
        f.remote.on_open_hook = [](Peer& p) {  // no features, no <starttls/> asked for: just <proceed/>
            p.stream->send(remote_header("sid") + "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        };
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
        CHECK(has(f.remote, "stream-error unsupported-stanza-type"));
        CHECK_FALSE(has(f.remote, "stanza starttls"));
        CHECK(f.local.got[0].bytes.find("s2s to b.test failed: &lt;proceed&gt; is not expected") != std::string::npos);
    }
    SUBCASE("a second one, once TLS is up") {
        Fixture f;
        f.remote_speaks_tls(test::TestPki::get().srv);
        f.remote.on_open_hook = [hook = f.remote.on_open_hook](Peer& p) {
            if (!p.stream->tls_open()) return hook(p);
            p.stream->send(remote_header("sid2") + "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        };
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
        CHECK(has(f.remote, "stream-error unsupported-stanza-type"));
        CHECK(f.local.got[0].bytes.find("s2s to b.test failed: &lt;proceed&gt; is not expected") != std::string::npos);
    }
}

TEST_CASE("s2s_out: a dialback answer in another domain's name ends the link with invalid-from; nothing is sent") {
    Fixture f;
    f.remote_speaks_dialback();
    f.remote.on_stanza_hook = [](Peer& p) {
        if (p.events.back() == "stanza result") p.stream->send("<db:result from='c.test' to='a.test' type='valid'/>");
    };
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return has(f.remote, "stream-error invalid-from") && !f.local.got.empty(); }));
    CHECK_FALSE(f.remote.saw("<body>hi</body>"));
    CHECK(f.local.got[0].bytes.find("a dialback answer from 'c.test' on the link to b.test") != std::string::npos);
}

TEST_CASE("s2s_out: a dialback request from the remote on a link without bidi ends it with unsupported-stanza-type") {
    Fixture f;
    f.remote_speaks_dialback();
    f.remote.on_stanza_hook = [](Peer& p) {
        if (p.events.back() == "stanza result") p.stream->send("<db:result from='b.test' to='a.test'>their-key</db:result>");
    };
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return has(f.remote, "stream-error unsupported-stanza-type") && !f.local.got.empty(); }));
    CHECK_FALSE(f.remote.saw("<body>hi</body>"));
    CHECK(f.local.got[0].bytes.find("sent a dialback request (db:result without a type)") != std::string::npos);
    REQUIRE(f.t.run_until([&] { return f.router->links() == 0; }));
}

TEST_CASE("s2s_out: without bidi, a db:verify request, or an answer from another domain, ends the link") {
    for (const char* sent : {"<db:verify from='b.test' to='a.test' id='in-7'>k</db:verify>",
                             "<db:verify from='c.test' to='a.test' id='in-7' type='valid'/>"}) {
        Fixture f;
        f.remote.on_open_hook = [](Peer& p) {
            p.stream->send(remote_header("other") +
                           "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
        };
        f.remote.on_stanza_hook = [sent](Peer& p) {
            if (p.events.back() == "stanza verify") p.stream->send(sent);
        };
        std::optional<Router::Verdict> verdict;
        f.router->verify_dialback("a.test", "b.test", "in-7", "the-key",
                                  [&](Router::Verdict v, const std::string&) { verdict = v; });
        REQUIRE(f.t.run_until([&] { return verdict.has_value(); }));
        CHECK(*verdict != Router::Verdict::Valid);
        CHECK((f.remote.saw("unsupported-stanza-type") || f.remote.saw("invalid-from")));
    }
}

TEST_CASE("s2s_out: shutting a link down twice before it has a socket frees it once") {
    Fixture f;
    f.router->to_remote("a.test", "b.test", stanza(kMessage));  // resolving: no socket yet
    REQUIRE(f.ctx->connections.size() == 1);
    Connection* link = *f.ctx->connections.begin();
    link->shutdown(StreamError::SystemShutdown, "first");
    link->shutdown(StreamError::SystemShutdown, "second");  // as a drain and then the final stop do
    REQUIRE(f.t.run_until([&] { return f.ctx->connections.empty(); }));
    REQUIRE(f.local.got.size() == 1);  // the stanza bounced once
    CHECK(f.local.got[0].bytes.find("first") != std::string::npos);
}

TEST_CASE("s2s_out: a link says how it ended: closed for idleness, failed, or shut down") {
    Fixture f;
    f.remote_speaks_dialback();
    auto link = [&]() -> S2SOut* {
        return f.ctx->connections.empty() ? nullptr : static_cast<S2SOut*>(*f.ctx->connections.begin());
    };
    SUBCASE("idle: the owner forgets it, nothing bounces, and it is not a failure") {
        f.settings.idle_timeout_ms = 100;
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return link() && link()->state() == S2SOut::State::Ready; }));
        CHECK(link()->ending() == S2SOut::Ending::None);
        REQUIRE(f.t.run_until([&] { return f.router->links() == 0; }));
        if (S2SOut* l = link()) CHECK(l->ending() == S2SOut::Ending::Idle);
        REQUIRE(f.t.run_until([&] { return f.ctx->connections.empty(); }));
        CHECK(f.local.got.empty());
    }
    SUBCASE("failed: the remote closes its stream") {
        f.remote.on_stanza_hook = [](Peer& p) {
            if (p.events.back() == "stanza result") p.stream->end("going away");
        };
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
        if (S2SOut* l = link()) CHECK(l->ending() == S2SOut::Ending::Failed);
        CHECK(f.local.got[0].bytes.find("b.test closed the stream") != std::string::npos);
    }
    SUBCASE("shut down: stop, drain or reload") {
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return link() && link()->state() == S2SOut::State::Ready; }));
        link()->shutdown(StreamError::SystemShutdown, "s2s-proxy is shutting down");
        CHECK(link()->ending() == S2SOut::Ending::ShutDown);
        CHECK(link()->state() == S2SOut::State::Closing);
        CHECK_FALSE(link()->carries("a.test"));
        REQUIRE(f.t.run_until([&] { return f.ctx->connections.empty(); }));
        CHECK(f.remote.saw("system-shutdown"));
    }
}

// ---- candidates that lead back into s2s-proxy ------------------------------------------------------

namespace {

NetworkList networks(const std::vector<std::string>& list) {
    auto n = NetworkList::parse(list);
    REQUIRE(n);
    return *n;
}

}  // namespace

TEST_CASE("s2s_out: an address from DNS in s2s.outgoing.denied_networks is not dialled; the stanza bounces saying so") {
    Fixture f([](Config& c) { c.outgoing.denied_networks = networks({"127.0.0.0/8", "::1"}); }, true);
    uint64_t refused = metrics().outgoing_refused.get("denied_network");
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
    const QueuedStanza& b = f.local.got[0];
    CHECK(b.bytes.find("remote-server-not-found") != std::string::npos);
    CHECK(b.bytes.find("s2s to b.test failed: DNS for b.test points at a forbidden address") != std::string::npos);
    CHECK(b.bytes.find("127.0.0.1") == std::string::npos);  // the sender learns the case, not our addresses
    CHECK(metrics().outgoing_refused.get("denied_network") == refused + 1);
    REQUIRE(f.t.run_until([&] { return f.router->links() == 0; }));
    CHECK(f.accepted == 0);
}

TEST_CASE("s2s_out: s2s.outgoing.denied_networks does not apply to address overrides, nor when it is empty") {
    SUBCASE("an override in a denied network is dialled") {
        Fixture f([](Config& c) { c.outgoing.denied_networks = networks({"127.0.0.0/8"}); });
        f.remote_speaks_dialback();
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
    }
    SUBCASE("an empty list lets DNS lead anywhere") {
        Fixture f(nullptr, true);
        f.remote_speaks_dialback();
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
    }
}

TEST_CASE("s2s_out: an address where s2s-proxy itself listens is never dialled, override or not") {
    ListenerSet own;
    for (bool from_dns : {false, true}) {
        CAPTURE(from_dns);
        Fixture f(nullptr, from_dns);
        own.add(f.t.address());
        f.settings.own_listeners = &own;
        uint64_t refused = metrics().outgoing_refused.get("own_listener");
        f.router->to_remote("a.test", "b.test", stanza(kMessage));
        REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
        std::string expected = from_dns ? "s2s to b.test failed: DNS for b.test points at a forbidden address"
                                        : "s2s to b.test failed: s2s.outgoing.address for b.test leads back into s2s-proxy";
        CHECK(f.local.got[0].bytes.find(expected) != std::string::npos);
        CHECK(metrics().outgoing_refused.get("own_listener") == refused + 1);
        REQUIRE(f.t.run_until([&] { return f.router->links() == 0; }));
        CHECK(f.accepted == 0);
    }
}

TEST_CASE("s2s_out: a refused candidate is skipped and the next one is dialled; its local end is kept while open") {
    ListenerSet own;
    SocketAddressSet ends;
    Fixture f([](Config& c) {
        // first where "we" listen (127.0.0.1:1 here), then the remote server
        c.outgoing.address.insert(c.outgoing.address.begin(), AddressOverride{"b.test", "127.0.0.1", 1});
    });
    sockaddr_storage ours{};
    REQUIRE(parse_socket_address("127.0.0.1:1", &ours));
    own.add(reinterpret_cast<const sockaddr*>(&ours));
    f.settings.own_listeners = &own;
    f.settings.own_outgoing = &ends;
    f.remote_speaks_dialback();
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
    CHECK(f.local.got.empty());
    // The remote's peer address is our socket's local end: that is what [[listen.local]] looks up.
    sockaddr_storage peer{};
    REQUIRE(f.remote.stream->peer_sockaddr(&peer));
    CHECK(ends.size() == 1);
    CHECK(ends.contains(reinterpret_cast<const sockaddr*>(&peer)));
    f.remote.stream->close("test: the remote goes away");
    REQUIRE(f.t.run_until([&] { return f.router->links() == 0; }));
    CHECK(ends.size() == 0);
}

// ---- the remote's stream limits (XEP-0478) -------------------------------------------------------

namespace {

// The remote answers dialback as remote_speaks_dialback() does, listing `limits` in its features.
void remote_advertises(Fixture& f, const std::string& limits) {
    f.remote_speaks_dialback();
    f.remote.on_open_hook = [limits](Peer& p) {
        p.stream->send(remote_header("sid") + "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/>" +
                       limits + "</stream:features>");
    };
}

// A ready link to a remote that lists `limits`, with alice's first message delivered on it.
void ready_link(Fixture& f, const std::string& limits) {
    remote_advertises(f, limits);
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
}

QueuedStanza big_message(const std::string& id) {
    return stanza("<message from='alice@a.test/r' to='bob@b.test' id='" + id + "'><body>" + std::string(2000, 'x') +
                  "</body></message>");
}

}  // namespace

TEST_CASE("s2s_out: a stanza over the remote's max-bytes bounces with policy-violation; smaller ones go; the link stays") {
    Fixture f;
    remote_advertises(f, "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>1000</max-bytes></limits>");
    uint64_t too_large = metrics().stream_limits.get("too_large");
    // Queued while the link negotiates, then found too large once the limits are known...
    f.router->to_remote("a.test", "b.test", big_message("big1"));
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
    REQUIRE(f.local.got.size() == 1);
    const QueuedStanza& b = f.local.got[0];
    CHECK(b.id == "big1");
    CHECK(b.type == "error");
    CHECK(b.to == "alice@a.test/r");
    CHECK(b.bytes.find("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>") != std::string::npos);
    CHECK(b.bytes.find("b.test accepts stanzas of at most 1000 bytes (XEP-0478 stream limits); this one has") !=
          std::string::npos);
    CHECK(b.bytes.find(" by=") == std::string::npos);  // the policy is the remote's, not ours
    // ...and on the ready link.
    f.router->to_remote("a.test", "b.test", big_message("big2"));
    f.router->to_remote("a.test", "b.test", stanza("<message from='alice@a.test' to='bob@b.test' id='m2'/>"));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("id='m2'"); }));
    REQUIRE(f.local.got.size() == 2);
    CHECK(f.local.got[1].id == "big2");
    CHECK_FALSE(f.remote.saw("xxxxxxxxxx"));
    CHECK(f.accepted == 1);
    CHECK(f.router->links() == 1);
    CHECK_FALSE(f.remote.closed);
    CHECK(metrics().stream_limits.get("too_large") == too_large + 2);
    CHECK(f.router->counters().delivered_remote == 2);
    CHECK(f.router->counters().bounced == 2);
}

TEST_CASE("s2s_out: a stanza within the remote's max-bytes, or with none advertised, is written") {
    Fixture f;
    SUBCASE("none advertised") { f.remote_speaks_dialback(); }
    SUBCASE("a larger limit") {
        remote_advertises(f, "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>100000</max-bytes></limits>");
    }
    f.router->to_remote("a.test", "b.test", big_message("big1"));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("id='big1'"); }));
    CHECK(f.local.got.empty());
}

TEST_CASE("s2s_out: a ready link is kept alive with whitespace before the remote's idle-seconds run out") {
    Fixture f;
    ready_link(f, "<limits xmlns='urn:xmpp:stream-limits:0'><idle-seconds>1</idle-seconds></limits>");
    uint64_t keepalives = metrics().stream_limits.get("keepalive");
    // Busy: what we write keeps the link alive, no keepalive is needed.
    for (int i = 0; i < 5; ++i) {
        f.t.run_for(300);
        f.router->to_remote("a.test", "b.test", stanza("<message from='alice@a.test' to='bob@b.test' id='b" +
                                                       std::to_string(i) + "'/>"));
    }
    REQUIRE(f.t.run_until([&] { return f.remote.saw("id='b4'"); }));
    CHECK(metrics().stream_limits.get("keepalive") == keepalives);
    // Idle: a space at two thirds of idle-seconds (666 ms); the remote hears from us every time.
    uint64_t t0 = uv_now(f.t.uv());
    uint64_t heard = f.remote.stream->last_read_ms();
    while (uv_now(f.t.uv()) - t0 < 2200) {
        f.t.run_for(100);
        uint64_t now = uv_now(f.t.uv());
        uint64_t last = f.remote.stream->last_read_ms();
        CHECK(now - last < 1000);  // never a second without traffic
        heard = last;
    }
    CHECK(heard > t0);
    CHECK(metrics().stream_limits.get("keepalive") >= keepalives + 2);
    CHECK(f.router->links() == 1);
    CHECK(f.accepted == 1);
    CHECK_FALSE(f.remote.closed);
}

TEST_CASE("s2s_out: without idle-seconds, an idle link sends no keepalive") {
    Fixture f;
    ready_link(f, "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>100000</max-bytes></limits>");
    uint64_t keepalives = metrics().stream_limits.get("keepalive");
    uint64_t heard = f.remote.stream->last_read_ms();
    f.t.run_for(1500);
    CHECK(metrics().stream_limits.get("keepalive") == keepalives);
    CHECK(f.remote.stream->last_read_ms() == heard);
}

namespace {

// A remote server at `ip` (its own listener) that fails the way `script` makes it: each
// connection it accepts gets a new peer with that script. Its address goes first among the
// candidates of b.test, ahead of those already there.
void failing_remote(Fixture& f, const char* ip, const std::function<void(Peer&)>& on_open,
                    const std::function<void(Peer&)>& on_stanza = nullptr) {
    const sockaddr* at = f.t.listen_more(ip, [&f, on_open, on_stanza](uv_stream_t* l) {
        Peer& p = f.t.new_peer();
        p.on_open_hook = on_open;
        p.on_stanza_hook = on_stanza;
        p.stream = Stream::create(f.t.loop(), p, {}, 98);
        REQUIRE(uv_accept(l, p.stream->handle()) == 0);
        p.stream->start();
    });
    auto port = ntohs(reinterpret_cast<const sockaddr_in*>(at)->sin_port);
    f.config.outgoing.address.insert(f.config.outgoing.address.end() - 1, AddressOverride{"b.test", ip, port});
}

void offers_starttls(Peer& p) {
    p.stream->send(remote_header("bad") +
                   "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>");
}

}  // namespace

TEST_CASE("s2s_out: candidates that close, fail TLS or send a stream error are left for the next; delivered once") {
    Fixture f;
    f.remote_speaks_tls(test::TestPki::get().srv);
    // 127.0.0.2 accepts and closes at once
    failing_remote(f, "127.0.0.2", [](Peer& p) { p.stream->close("test: closes after accept"); });
    // 127.0.0.3 answers <starttls/> with <proceed/>, then bytes that are no TLS
    failing_remote(f, "127.0.0.3", offers_starttls, [](Peer& p) {
        if (p.events.back() != "stanza starttls") return;
        p.stream->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>this is not TLS at all\r\n\r\n");
    });
    // 127.0.0.4 sends a stream error before any authentication
    failing_remote(f, "127.0.0.4", [](Peer& p) {
        p.stream->send(remote_header("bad") +
                       "<stream:error><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    });
    uint64_t closed = metrics().outgoing_fallbacks.get("closed");
    uint64_t tls = metrics().outgoing_fallbacks.get("tls");
    uint64_t stream_error = metrics().outgoing_fallbacks.get("stream_error");
    uint64_t failures = metrics().outgoing_failures.get("awaiting-header");
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
    f.t.run_for(50);
    CHECK(f.local.got.empty());  // nothing bounced
    CHECK(f.accepted == 1);
    size_t bodies = 0;
    for (const auto& s : f.remote.stanzas) bodies += s.find("<body>hi</body>") != std::string::npos;
    CHECK(bodies == 1);
    CHECK(metrics().outgoing_fallbacks.get("closed") == closed + 1);
    CHECK(metrics().outgoing_fallbacks.get("tls") == tls + 1);
    CHECK(metrics().outgoing_fallbacks.get("stream_error") == stream_error + 1);
    CHECK(metrics().outgoing_failures.get("awaiting-header") == failures);  // the domain did not fail
}

TEST_CASE("s2s_out: a certificate the policy refuses leads to the next candidate") {
    Fixture f(secure_b);
    f.remote_speaks_tls(test::TestPki::get().srv);
    // 127.0.0.2 completes STARTTLS with a certificate for c.test
    const test::TestPki& pki = test::TestPki::get();
    tls::ContextOptions so;
    so.role = tls::Role::Server;
    so.certificate = {pki.c.cert, pki.c.key, "", {}};
    so.cacertfile = pki.ca;
    auto wrong = tls::Context::create(so);
    REQUIRE_MESSAGE(wrong, wrong.error);
    auto wrong_ctx = wrong.context;
    failing_remote(
        f, "127.0.0.2",
        [](Peer& p) {
            if (!p.stream->tls_open()) return offers_starttls(p);
            p.stream->send(remote_header("bad2") +
                           "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
        },
        [wrong_ctx](Peer& p) {
            if (p.events.back() != "stanza starttls") return;
            p.stream->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            p.stream->start_tls(wrong_ctx);
            p.stream->reset_parser();
        });
    uint64_t certificate = metrics().outgoing_fallbacks.get("certificate");
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return f.remote.saw("<body>hi</body>"); }));
    CHECK(f.local.got.empty());
    CHECK(metrics().outgoing_fallbacks.get("certificate") == certificate + 1);
}

TEST_CASE("s2s_out: when every candidate fails its negotiation, the stanza bounces once with the last reason") {
    Fixture f;
    f.remote_speaks_dialback();
    failing_remote(f, "127.0.0.2", [](Peer& p) { p.stream->close("test: closes after accept"); });
    // the fixture's own remote sends a stream error: the last candidate
    f.remote.on_open_hook = [](Peer& p) {
        p.stream->send(remote_header("x") +
                       "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    };
    uint64_t failures = metrics().outgoing_failures.get("awaiting-features");
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    REQUIRE(f.t.run_until([&] { return !f.local.got.empty(); }));
    f.t.run_for(50);
    REQUIRE(f.local.got.size() == 1);
    CHECK(f.local.got[0].bytes.find("s2s to b.test failed: b.test closed the stream with host-unknown") !=
          std::string::npos);
    CHECK(metrics().outgoing_failures.get("awaiting-features") == failures + 1);
    // the domain is in backoff now: the next stanza bounces at once
    f.router->to_remote("a.test", "b.test", stanza(kMessage));
    CHECK(f.local.got.size() == 2);
}

