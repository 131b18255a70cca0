// TLS modes and contexts made from the config: use_starttls mapping, SNI per local domain
// (s2s.domain_certfile), the client certificate per local domain.
#include <doctest/doctest.h>

#include <fstream>

#include "common/config/config_load.h"
#include "common/config/config_print.h"
#include "proxy/app/tls_setup.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;
using test::Peer;

namespace {

// A PEM file with a certificate and its key, as s2s.certfile and domain_certfile want.
std::string combined(const test::TempDir& dir, const std::string& name, const test::CertFiles& c) {
    std::ifstream cert(c.cert), key(c.key);
    std::string text((std::istreambuf_iterator<char>(cert)), {});
    text.append((std::istreambuf_iterator<char>(key)), {});
    return dir.write(name, text);
}

// What a mode does, in the words of the cases below: plain, offer (STARTTLS), require (STARTTLS
// first) or direct.
std::string kind(const starttls::Mode& m) {
    if (m.direct) return "direct";
    if (m.starttls) return m.required ? "require" : "offer";
    return "plain";
}

}  // namespace

TEST_CASE("tls_setup: modes from tls.mode, else from s2s.use_starttls") {
    Config c;
    Listener l;
    c.use_starttls_set = true;  // use_starttls = "false" written out
    CHECK(kind(inbound_tls_mode(c, l)) == "plain");
    CHECK(kind(outbound_tls_mode(c)) == "plain");
    c.use_starttls = "optional";
    CHECK(kind(inbound_tls_mode(c, l)) == "offer");
    CHECK(kind(outbound_tls_mode(c)) == "offer");
    CHECK_FALSE(trusted_only(c));
    c.use_starttls = "required_trusted";
    CHECK(kind(inbound_tls_mode(c, l)) == "require");
    CHECK(kind(outbound_tls_mode(c)) == "require");
    CHECK(trusted_only(c));
    // TLS from use_starttls alone judges certificates per domain; a tls subsection's mode may refuse
    // at the handshake (verify_mode, disconnect_on_failure).
    CHECK_FALSE(inbound_tls_mode(c, l).strict_handshake);
    l.tls.present = true;
    CHECK(kind(inbound_tls_mode(c, l)) == "require");  // a subsection never weakens use_starttls
    CHECK(inbound_tls_mode(c, l).strict_handshake);
    l.tls.mode = "tls";
    c.outgoing.tls.mode = "tls";
    CHECK(kind(inbound_tls_mode(c, l)) == "direct");
    CHECK(kind(outbound_tls_mode(c)) == "direct");
    CHECK(inbound_tls_mode(c, l).strict_handshake);
}

TEST_CASE("tls_setup: outgoing links get a TLS context when their mode uses TLS or a domain needs a certificate") {
    Config c;
    c.use_starttls_set = true;  // use_starttls = "false" written out
    CHECK_FALSE(outgoing_tls_needed(c));
    c.secure_domains = {"bank.test"};
    CHECK(outgoing_tls_needed(c));  // use_starttls "false" does not stop TLS toward bank.test
    c.secure_domains.clear();
    c.secure_auth = true;
    CHECK(outgoing_tls_needed(c));
    c.secure_auth = false;
    c.use_starttls = "optional";
    CHECK(outgoing_tls_needed(c));
}

TEST_CASE("tls_setup: each local domain's certificate is chosen by SNI, and used as its client certificate") {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    test::TempDir dir;
    std::string a = combined(dir, "a.pem", pki.a), c = combined(dir, "c.pem", pki.c);
    config::LoadResult r = config::load("t.toml",
                                        "[general]\nhosts = [\"a.test\", \"c.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n"
                                        "[s2s]\ndomain_certfile = [{domain = \"a.test\", certfile = \"" + a +
                                            "\"}, {domain = \"c.test\", certfile = \"" + c + "\"}]\n"
                                        "outgoing.tls.cacertfile = \"" + pki.ca + "\"\n"
                                        "[[listen.s2s]]\nport = 5269\ntls.mode = \"tls\"\ntls.cacertfile = \"" + pki.ca + "\"\n",
                                        {});
    for (auto& e : r.errors) MESSAGE(e.str());
    REQUIRE(r.ok());
    std::string error;
    auto server_ctx = make_listener_context(r.config, r.config.listen_s2s[0], &error);
    REQUIRE_MESSAGE(server_ctx, error);
    bool with_cert = false;
    auto client_c = make_outgoing_context(r.config, "c.test", &with_cert, &error);
    REQUIRE_MESSAGE(client_c, error);
    CHECK(with_cert);

    for (const char* name : {"a.test", "c.test"}) {
        CAPTURE(name);
        test::TestLoop t;
        Peer& server = t.new_peer();
        t.listen([&](uv_stream_t* l) {
            server.stream = Stream::create(t.loop(), server, {}, 1);
            REQUIRE(uv_accept(l, server.stream->handle()) == 0);
            server.stream->start();
            server.stream->start_tls(server_ctx);
        });
        Peer& client = t.new_peer();
        client.on_connect_hook = [&](Peer& me) { me.stream->start_tls(client_c, {name, nullptr}); };
        t.connect(client);
        REQUIRE(t.run_until([&] { return client.stream && client.stream->tls_open() && server.stream && server.stream->tls_open(); }));
        CHECK(client.stream->tls()->authenticate_peer(name) == tls::PeerAuth::Authenticated);
        // The client showed c.test's certificate: the server can authenticate it as c.test.
        CHECK(server.stream->tls()->authenticate_peer("c.test") == tls::PeerAuth::Authenticated);
    }
}

TEST_CASE("tls_setup: a domain_certfile entry must be one of general.hosts and hold its key") {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE(pki.ok());
    test::TempDir dir;
    std::string a = combined(dir, "a.pem", pki.a);
    auto load = [](const std::string& entries) {
        return config::load("t.toml", "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n[s2s]\n"
                                      "domain_certfile = [" + entries + "]\n", {});
    };
    auto r = load("{domain = \"other.test\", certfile = \"" + a + "\"}");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].message == "\"other.test\" is not one of general.hosts");
    r = load("{domain = \"a.test\", certfile = \"" + pki.a.cert + "\"}");  // no key inside
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].message.find("holds no private key") != std::string::npos);
}

TEST_CASE("tls_setup: under required_trusted a peer without a certificate still completes TLS (to verify keys)") {
    // Policy refuses to authenticate such a peer's domain; the handshake must not, or a remote
    // that checks our dialback key over its own (certificate-less) connection is shut out.
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE(pki.ok());
    test::TempDir dir;
    std::string a = combined(dir, "a.pem", pki.a);
    config::LoadResult r = config::load("t.toml",
                                        "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n"
                                        "[s2s]\nuse_starttls = \"required_trusted\"\ncertfile = \"" + a + "\"\n"
                                        "outgoing.tls.cacertfile = \"" + pki.ca + "\"\n"
                                        "[[listen.s2s]]\nport = 5269\n",
                                        {});
    for (auto& e : r.errors) MESSAGE(e.str());
    REQUIRE(r.ok());
    REQUIRE_FALSE(r.config.listen_s2s[0].tls.present);  // its TLS comes from use_starttls alone
    std::string error;
    auto server_ctx = make_listener_context(r.config, r.config.listen_s2s[0], &error);
    REQUIRE_MESSAGE(server_ctx, error);
    tls::ContextOptions o;
    o.role = tls::Role::Client;
    o.cacertfile = pki.ca;
    auto client_ctx = tls::Context::create(o);  // no client certificate
    REQUIRE_MESSAGE(client_ctx, client_ctx.error);

    test::TestLoop t;
    Peer& server = t.new_peer();
    t.listen([&](uv_stream_t* l) {
        server.stream = Stream::create(t.loop(), server, {}, 1);
        REQUIRE(uv_accept(l, server.stream->handle()) == 0);
        server.stream->start();
        server.stream->start_tls(server_ctx);
    });
    Peer& client = t.new_peer();
    client.on_connect_hook = [&](Peer& me) { me.stream->start_tls(client_ctx.context, {"a.test", nullptr}); };
    t.connect(client);
    REQUIRE(t.run_until([&] {
        return (client.stream && client.stream->tls_open() && server.stream && server.stream->tls_open()) || client.closed;
    }));
    CHECK_FALSE(client.closed);
    CHECK(server.stream->tls()->peer_verification().status == tls::PeerCertificate::Missing);
}

namespace {

// A config with one [[listen.s2s]] carrying `listener` and [s2s] carrying `s2s`, a.test's
// certificate in s2s.certfile.
config::LoadResult load_with(const test::TempDir& dir, const std::string& s2s, const std::string& listener) {
    const test::TestPki& pki = test::TestPki::get();
    std::string a = combined(dir, "a.pem", pki.a);
    return config::load("t.toml",
                        "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n[s2s]\ncertfile = \"" + a +
                            "\"\n" + s2s + "\n[[listen.s2s]]\nport = 5269\n" + listener + "\n",
                        {});
}

bool strict(const config::LoadResult& r) {
    std::string error;
    auto ctx = make_listener_context(r.config, r.config.listen_s2s[0], &error);
    REQUIRE_MESSAGE(ctx, error);
    return ctx->options().require_valid_peer;
}

}  // namespace

TEST_CASE("tls_setup: a tls subsection without tls.mode means starttls, even beside use_starttls = false") {
    REQUIRE(test::TestPki::get().ok());
    test::TempDir dir;
    config::LoadResult r = load_with(dir, "", "tls.verify_mode = \"none\"");
    for (auto& e : r.errors) MESSAGE(e.str());
    REQUIRE(r.ok());
    CHECK(r.config.listen_s2s[0].tls.present);
    CHECK(kind(inbound_tls_mode(r.config, r.config.listen_s2s[0])) == "offer");
    r = load_with(dir, "use_starttls = \"false\"\noutgoing.tls.verify_mode = \"none\"", "tls.verify_mode = \"none\"");
    REQUIRE(r.ok());
    CHECK(kind(inbound_tls_mode(r.config, r.config.listen_s2s[0])) == "offer");
    CHECK(kind(outbound_tls_mode(r.config)) == "offer");
    // Without a tls subsection, s2s.use_starttls decides as before.
    r = load_with(dir, "use_starttls = \"false\"", "");
    REQUIRE(r.ok());
    CHECK_FALSE(r.config.listen_s2s[0].tls.present);
    CHECK(kind(inbound_tls_mode(r.config, r.config.listen_s2s[0])) == "plain");
    r = load_with(dir, "use_starttls = \"required\"", "");
    REQUIRE(r.ok());
    CHECK(kind(inbound_tls_mode(r.config, r.config.listen_s2s[0])) == "require");
    CHECK(kind(outbound_tls_mode(r.config)) == "require");
    // A key given on the command line makes a subsection too.
    r = config::load("t.toml", "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n",
                     {{"s2s.outgoing.tls.verify_mode", "none"}, {"s2s.use_starttls", "false"}});
    REQUIRE(r.ok());
    CHECK(r.config.outgoing.tls.present);
    CHECK(kind(outbound_tls_mode(r.config)) == "offer");
}

TEST_CASE("tls_setup: with no TLS setting at all, outgoing links use STARTTLS when offered; use_starttls = false is off") {
    config::LoadResult r = config::load("t.toml", "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n", {});
    REQUIRE(r.ok());
    CHECK_FALSE(r.config.use_starttls_set);
    CHECK(kind(outbound_tls_mode(r.config)) == "offer");
    CHECK(outgoing_tls_needed(r.config));
    std::string error;
    bool with_cert = true;
    CHECK_MESSAGE(make_outgoing_context(r.config, "", &with_cert, &error), error);  // the system CA store
    CHECK_FALSE(with_cert);
    r = config::load("t.toml", "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n[s2s]\n"
                     "use_starttls = \"false\"\n", {});
    REQUIRE(r.ok());
    CHECK(kind(outbound_tls_mode(r.config)) == "plain");
    CHECK_FALSE(outgoing_tls_needed(r.config));
}

TEST_CASE("tls_setup: a listener's own tls subsection with verify_mode peer and disconnect_on_failure refuses bad client certificates") {
    REQUIRE(test::TestPki::get().ok());
    const std::string ca = test::TestPki::get().ca;
    test::TempDir dir;
    config::LoadResult r = load_with(dir, "", "tls.cacertfile = \"" + ca + "\"");
    REQUIRE(r.ok());
    CHECK(strict(r));
    bool warned = false;
    for (auto& w : r.warnings) warned |= w.key == "listen.s2s.0.tls.verify_mode";
    CHECK(warned);
    r = load_with(dir, "", "tls.cacertfile = \"" + ca + "\"\ntls.disconnect_on_failure = false");
    REQUIRE(r.ok());
    CHECK_FALSE(strict(r));
    for (auto& w : r.warnings) CHECK(w.key != "listen.s2s.0.tls.verify_mode");
    r = load_with(dir, "", "tls.verify_mode = \"selfsigned_peer\"\ntls.cacertfile = \"" + ca + "\"");
    REQUIRE(r.ok());
    CHECK_FALSE(strict(r));
    r = load_with(dir, "", "tls.verify_mode = \"none\"");
    REQUIRE(r.ok());
    CHECK_FALSE(strict(r));
    // TLS from s2s.use_starttls alone keeps the 6.x meaning: judged per domain, not at the handshake.
    r = load_with(dir, "use_starttls = \"required_trusted\"", "");
    REQUIRE(r.ok());
    CHECK_FALSE(strict(r));
}

TEST_CASE("tls_setup: --check-config warns when no listener can offer TLS for want of a certificate") {
    config::LoadResult r = config::load("t.toml", "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n"
                                        "[[listen.s2s]]\nport = 5269\n", {});
    REQUIRE(r.ok());
    bool warned = false;
    for (auto& w : r.warnings) warned |= w.message.find("no [[listen.s2s]] can offer TLS") != std::string::npos;
    CHECK(warned);
    test::TempDir dir;
    REQUIRE(test::TestPki::get().ok());
    r = load_with(dir, "", "");
    REQUIRE(r.ok());
    for (auto& w : r.warnings) CHECK(w.message.find("no [[listen.s2s]] can offer TLS") == std::string::npos);
}

TEST_CASE("tls_setup: --print-config loads back with the same TLS meaning") {
    REQUIRE(test::TestPki::get().ok());
    test::TempDir dir;
    for (const char* listener : {"", "tls.verify_mode = \"none\""}) {
        CAPTURE(listener);
        config::LoadResult r = load_with(dir, "", listener);
        REQUIRE(r.ok());
        config::LoadResult again = config::load("p.toml", config::print_config(r.settings), {});
        INFO(config::print_config(r.settings));
        REQUIRE(again.ok());
        CHECK(again.config.use_starttls_set == r.config.use_starttls_set);
        CHECK(outbound_tls_mode(again.config).name == outbound_tls_mode(r.config).name);
        CHECK(inbound_tls_mode(again.config, again.config.listen_s2s[0]).name ==
              inbound_tls_mode(r.config, r.config.listen_s2s[0]).name);
        CHECK(again.config.listen_s2s[0].tls.present == r.config.listen_s2s[0].tls.present);
    }
}

TEST_CASE("tls_setup: a tls subsection without a mode does not weaken use_starttls = required") {
    REQUIRE(test::TestPki::get().ok());
    test::TempDir dir;
    config::LoadResult r = load_with(dir, "use_starttls = \"required\"\noutgoing.tls.verify_mode = \"none\"",
                                     "tls.verify_mode = \"none\"");
    REQUIRE(r.ok());
    CHECK(kind(inbound_tls_mode(r.config, r.config.listen_s2s[0])) == "require");
    CHECK(kind(outbound_tls_mode(r.config)) == "require");
    // ... while a written mode says what it says
    r = load_with(dir, "use_starttls = \"required\"\noutgoing.tls.mode = \"starttls\"",
                  "tls.mode = \"starttls\"\ntls.verify_mode = \"none\"");
    REQUIRE(r.ok());
    CHECK(kind(inbound_tls_mode(r.config, r.config.listen_s2s[0])) == "offer");
    CHECK(kind(outbound_tls_mode(r.config)) == "offer");
    // ... and with use_starttls = "optional" the subsection means starttls
    r = load_with(dir, "use_starttls = \"optional\"\noutgoing.tls.verify_mode = \"none\"", "tls.verify_mode = \"none\"");
    REQUIRE(r.ok());
    CHECK(kind(inbound_tls_mode(r.config, r.config.listen_s2s[0])) == "offer");
    CHECK(kind(outbound_tls_mode(r.config)) == "offer");
}

TEST_CASE("tls_setup: a context error begins with the file, line and key behind it") {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE(pki.ok());
    test::TempDir dir;
    std::string a = combined(dir, "a.pem", pki.a);
    const std::string text = "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n[s2s]\n"
                             "certfile = \"" + a + "\"\nciphers = \"HIGH:NOPE\"\n"
                             "[[listen.s2s]]\nport = 5269\ntls.mode = \"tls\"\ntls.cacertfile = \"" + pki.ca + "\"\n"
                             "[[listen.s2s]]\nport = 5270\ntls.mode = \"tls\"\ntls.cacertfile = \"" + pki.ca + "\"\n"
                             "tls.ciphers = \"ECDHE+FOO\"\n";
    config::LoadResult r = config::load("proxy.toml", text, {});
    for (auto& e : r.errors) MESSAGE(e.str());
    REQUIRE(r.ok());
    std::string error;
    CHECK_FALSE(make_listener_context(r.config, r.config.listen_s2s[0], &error));
    CHECK(error == "proxy.toml:7: s2s.ciphers: unknown cipher or cipher keyword 'NOPE'");
    CHECK_FALSE(make_listener_context(r.config, r.config.listen_s2s[1], &error));
    CHECK(error == "proxy.toml:16: listen.s2s.1.tls.ciphers: unknown cipher or cipher keyword 'FOO'");

    r = config::load("proxy.toml", text, {{"s2s.ciphers", "\"BAR\""}});
    REQUIRE(r.ok());
    CHECK_FALSE(make_listener_context(r.config, r.config.listen_s2s[0], &error));
    CHECK(error == "command line: --s2s.ciphers: unknown cipher or cipher keyword 'BAR'");
    bool with_cert = false;
    r.config.ciphers = "HIGH";
    r.config.outgoing.tls.cacertfile = "/nonexistent/ca.pem";
    CHECK_FALSE(make_outgoing_context(r.config, "", &with_cert, &error));
    CHECK_MESSAGE(error.rfind("proxy.toml: s2s.outgoing.tls.cacertfile: ", 0) == 0, error);
}

TEST_CASE("tls_setup: tls.module alone (accepted and ignored) makes no tls subsection") {
    config::LoadResult r = config::load("t.toml", "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n"
                                        "[[listen.s2s]]\nport = 5269\ntls.module = \"fast_tls\"\n", {});
    for (auto& e : r.errors) MESSAGE(e.str());
    REQUIRE(r.ok());
    CHECK_FALSE(r.config.listen_s2s[0].tls.present);
    CHECK(kind(inbound_tls_mode(r.config, r.config.listen_s2s[0])) == "plain");
}
