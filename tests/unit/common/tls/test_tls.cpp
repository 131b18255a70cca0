// The TLS engine (common/tls/tls, common/tls/tls_context): contexts from files, and client/server
// sessions talking over an in-memory pipe (each side's output fed to the other).
#include "common/tls/tls.h"

#include "tests/unit/support/tls_test_ca.h"

#include <doctest/doctest.h>
#include <malloc.h>
#include <mbedtls/version.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace s2s::tls;
using s2s::test::CertFiles;
using s2s::test::TempDir;
using s2s::test::TestPki;

namespace {

const TestPki& pki() {
    const auto& p = TestPki::get();
    REQUIRE_MESSAGE(p.ok(), p.error());
    return p;
}

CertificateSpec spec(const CertFiles& f) {
    CertificateSpec s;
    s.certfile = f.cert;
    s.keyfile = f.key;
    return s;
}

ContextOptions server_options(const CertFiles& cert) {
    ContextOptions o;
    o.role = Role::Server;
    o.certificate = spec(cert);
    o.cacertfile = pki().ca;
    return o;
}

ContextOptions client_options(const CertFiles* cert = nullptr) {
    ContextOptions o;
    o.role = Role::Client;
    if (cert) o.certificate = spec(*cert);
    o.cacertfile = pki().ca;
    return o;
}

std::shared_ptr<const Context> make(const ContextOptions& o) {
    ContextResult r = Context::create(o);
    REQUIRE_MESSAGE(r, r.error);
    return r.context;
}

std::string context_error(const ContextOptions& o) {
    ContextResult r = Context::create(o);
    CHECK_FALSE(r);
    return r.error;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Carries ciphertext between a client and a server session, `chunk` bytes per feed (0: all of
// it at once), driving each side after every feed the way a libuv read callback would.
struct Pipe {
    Session& client;
    Session& server;
    std::size_t chunk = 0;
    std::string client_got, server_got;  // plaintext received
    IoResult client_read = IoResult::Ok, server_read = IoResult::Ok;
    std::size_t to_server_bytes = 0, to_client_bytes = 0;

    Pipe(Session& c, Session& s) : client(c), server(s) {}

    static void drive(Session& s, std::string& got, IoResult& last) {
        if (s.state() == State::Handshaking && s.handshake() != Progress::Done) return;
        if (s.state() != State::Failed) last = s.read_plaintext(got);
    }

    // Moves what `from` has written into `to`; false if there was nothing.
    bool deliver(Session& from, Session& to, std::string& got, IoResult& last, std::size_t& counter) {
        if (!from.has_output()) return false;
        s2s::Buffer bytes = from.take_ciphertext();
        std::string_view v = bytes.view();
        counter += v.size();
        const std::size_t step = chunk ? chunk : v.size();
        for (std::size_t i = 0; i < v.size(); i += step) {
            if (!to.feed_ciphertext(v.substr(i, step))) return true;
            drive(to, got, last);
        }
        return true;
    }

    // Runs until neither side has anything to send.
    void run() {
        if (client.state() == State::Handshaking) (void)client.handshake();
        for (int round = 0; round < 100; ++round) {
            bool moved = deliver(client, server, server_got, server_read, to_server_bytes);
            moved |= deliver(server, client, client_got, client_read, to_client_bytes);
            if (!moved) return;
        }
        FAIL("the pipe never went quiet");
    }
};

// A finished handshake between fresh sessions of two contexts.
struct Pair {
    Session client;
    Session server;
    Pipe pipe{client, server};
    Pair(std::shared_ptr<const Context> c, std::shared_ptr<const Context> s, const SessionOptions& co = {},
         std::size_t chunk = 0)
        : client(std::move(c), co), server(std::move(s)) {
        pipe.chunk = chunk;
        pipe.run();
    }
};

}  // namespace

TEST_CASE("tls context: load errors name the file and the reason") {
    const auto& p = pki();
    TempDir tmp;

    ContextOptions o = server_options(p.a);
    o.certificate.certfile = tmp.path() + "/missing.pem";
    std::string e = context_error(o);
    CHECK(contains(e, "certfile '" + tmp.path() + "/missing.pem'"));
    CHECK(contains(e, "No such file"));

    o = server_options(p.a);
    o.certificate.certfile = tmp.write("garbage.pem", "this is not a certificate\n");
    e = context_error(o);
    CHECK(contains(e, "garbage.pem"));
    CHECK(contains(e, "X509"));  // mbedTLS's reason

    o = server_options(p.a);
    o.certificate.keyfile = p.c.key;
    CHECK(contains(context_error(o), "does not belong to the certificate"));

    o = server_options(p.encrypted);
    CHECK(contains(context_error(o), "encrypted and no password"));
    o.certificate.password = "wrong";
    CHECK(contains(context_error(o), "wrong password"));
    o.certificate.password = "secret";
    CHECK(Context::create(o));

    o = server_options(p.a);
    o.cacertfile = tmp.path() + "/nope.crt";
    CHECK(contains(context_error(o), "cacertfile '" + tmp.path() + "/nope.crt'"));
    o = server_options(p.a);
    o.cacertfile = p.a.key;
    CHECK(contains(context_error(o), "cacertfile"));
    o = server_options(p.a);
    o.crl_files = {p.ca};
    CHECK(contains(context_error(o), "crl_files '" + p.ca + "'"));

    o = server_options(p.a);
    o.certificate = {};
    CHECK(contains(context_error(o), "needs a certificate"));

    o = server_options(p.a);
    o.verify_mode = VerifyMode::None;
    o.require_valid_peer = true;
    CHECK(contains(context_error(o), "require_valid_peer"));

    o = server_options(p.a);
    o.alpn = {""};
    CHECK(contains(context_error(o), "alpn"));

#if MBEDTLS_VERSION_NUMBER < 0x03000000
    // AES-encrypted PKCS#8 (what `openssl req -passout` writes) is beyond mbedTLS 2.28: say so.
    const std::string p8 = tmp.path() + "/p8.key";
    REQUIRE(std::system(("openssl pkey -in '" + p.a.key + "' -aes256 -passout pass:x -out '" + p8 + "' 2>/dev/null").c_str()) == 0);
    o = server_options(p.a);
    o.certificate.keyfile = p8;
    o.certificate.password = "x";
    e = context_error(o);
    CHECK(contains(e, "PKCS#8 encrypted with PBES2 (AES-256-CBC, key derived with PBKDF2 and HMAC-SHA256)"));
    CHECK(contains(e, "cannot decrypt"));
    CHECK(contains(e, "openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in " + p8));
    CHECK(contains(e, "openssl pkey -in " + p8));
    // The conversion it proposes gives a key this library reads, with the same password.
    const std::string compat = tmp.path() + "/compat.key";
    REQUIRE(std::system(("openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in '" + p8 + "' -passin pass:x -passout pass:x -out '" +
                         compat + "' 2>/dev/null").c_str()) == 0);
    o.certificate.keyfile = compat;
    CHECK(Context::create(o));
#endif
}

TEST_CASE("tls context: versions and ciphers") {
    const auto& p = pki();
    ContextOptions o = server_options(p.a);
    o.ciphers = kDefaultCiphers;
    CHECK(Context::create(o));
    o.ciphers = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:tls-ecdhe-ecdsa-with-chacha20-poly1305-sha256, "
                "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384";
    CHECK(Context::create(o));
    o.ciphers = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256";
    CHECK(Context::create(o));
    o.ciphers = "HIGH:!aNULL";
    CHECK(Context::create(o));
    o.ciphers = "HIGH:FOO";
    CHECK(contains(context_error(o), "ciphers: unknown cipher or cipher keyword 'FOO'"));
    CHECK_FALSE(available_ciphersuites().empty());

    o = server_options(p.a);
    o.versions = {"tlsv1.1"};
    CHECK(contains(context_error(o), "obsolete"));
    o.versions = {"tlsv9"};
    CHECK(contains(context_error(o), "unknown TLS version 'tlsv9'"));
    o.versions = {"TLSv1.2"};
    CHECK(Context::create(o));
    o.versions = {"tlsv1.2", "tlsv1.3"};
    ContextResult both = Context::create(o);
    REQUIRE(both);
    o.versions = {"tlsv1.3"};
    if (tls13_available()) {
        CHECK(both.warnings.empty());
        CHECK(Context::create(o));
    } else {
        CHECK(both.warnings.size() == 1);
        CHECK(contains(context_error(o), "tlsv1.3 is not available"));
    }
}

TEST_CASE("tls context: the system CA store is the default") {
    if (!std::filesystem::exists(kSystemCaFile)) return;  // not every machine has one
    ContextOptions o = server_options(pki().a);
    o.cacertfile.clear();
    ContextResult r = Context::create(o);
    CHECK_MESSAGE(r, r.error);
}

TEST_CASE("tls context: a missing system CA store is a warning, and every peer certificate is untrusted") {
    const auto& p = pki();
    for (const char* store : {"/nonexistent/ca-certificates.crt", "/dev/null"}) {
        CAPTURE(store);
        ContextOptions co = client_options(&p.c);
        co.cacertfile.clear();
        co.system_cafile = store;
        ContextResult made = Context::create(co);
        REQUIRE_MESSAGE(made, made.error);
        REQUIRE(made.warnings.size() == 1);
        CHECK(contains(made.warnings[0], "the system CA store"));
        CHECK(contains(made.warnings[0], store));
        ContextOptions so_ = server_options(p.a);
        so_.cacertfile.clear();
        so_.system_cafile = store;
        ContextResult server = Context::create(so_);
        REQUIRE_MESSAGE(server, server.error);
        SessionOptions so;
        so.server_name = "a.test";
        Pair t(made.context, server.context, so, 0);
        REQUIRE_MESSAGE(t.client.state() == State::Open, t.client.failure_reason());
        CHECK(t.client.peer_verification().status != PeerCertificate::Valid);
        CHECK(t.client.authenticate_peer("a.test") != PeerAuth::Authenticated);
        CHECK(t.server.authenticate_peer("c.test") != PeerAuth::Authenticated);
    }
    // The CRL files are still checked without the system store.
    ContextOptions with_crl = client_options(&p.c);
    with_crl.cacertfile.clear();
    with_crl.system_cafile = "/nonexistent/ca-certificates.crt";
    with_crl.crl_files = {"/nonexistent/revoked.crl"};
    CHECK(contains(context_error(with_crl), "crl_files"));
    // A cacertfile that is given must work: the same failure there is an error.
    ContextOptions co = client_options(&p.c);
    co.cacertfile = "/nonexistent/ca.pem";
    CHECK(contains(context_error(co), "cacertfile"));
}

TEST_CASE("tls session: handshake, plaintext both ways, close_notify (TLS 1.2)") {
    const auto& p = pki();
    auto server_ctx = make(server_options(p.a));
    auto client_ctx = make(client_options(&p.c));
    SessionOptions so;
    so.server_name = "a.test";

    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
        CAPTURE(chunk);
        Pair t(client_ctx, server_ctx, so, chunk);
        REQUIRE_MESSAGE(t.client.state() == State::Open, t.client.failure_reason());
        REQUIRE_MESSAGE(t.server.state() == State::Open, t.server.failure_reason());
        CHECK(t.client.protocol_version() == "TLSv1.2");
        CHECK(t.server.protocol_version() == "TLSv1.2");
        CHECK_FALSE(t.client.ciphersuite().empty());
        CHECK(t.server.server_name() == "a.test");
        CHECK(t.client.peer_verification().status == PeerCertificate::Valid);
        CHECK(t.client.authenticate_peer("a.test") == PeerAuth::Authenticated);
        CHECK(t.server.authenticate_peer("c.test") == PeerAuth::Authenticated);
        CHECK(t.client.alpn_protocol().empty());

        CHECK(t.client.write_plaintext("<stream:stream to='a.test'>") == IoResult::Ok);
        t.pipe.run();
        CHECK(t.pipe.server_got == "<stream:stream to='a.test'>");
        CHECK(t.server.write_plaintext("<stream:stream from='a.test'>") == IoResult::Ok);
        CHECK(t.server.write_plaintext("<features/>") == IoResult::Ok);
        t.pipe.run();
        CHECK(t.pipe.client_got == "<stream:stream from='a.test'><features/>");

        t.client.close_notify();
        CHECK(t.client.state() == State::Closing);
        CHECK(t.client.write_plaintext("late") == IoResult::Closed);
        t.pipe.run();
        CHECK(t.pipe.server_read == IoResult::Closed);
        CHECK(t.server.state() == State::Closed);
        CHECK(t.pipe.client_read == IoResult::Closed);  // the server answered with its own
        CHECK(t.client.state() == State::Closed);
        CHECK(t.pipe.server_got == "<stream:stream to='a.test'>");
        CHECK(t.client.failure_reason().empty());
    }
}

TEST_CASE("tls session: several records in one feed, records bigger than a read") {
    const auto& p = pki();
    Pair t(make(client_options()), make(server_options(p.a)));
    REQUIRE(t.server.state() == State::Open);

    std::string big(100 * 1000, 'x');
    for (std::size_t i = 0; i < big.size(); i += 97) big[i] = static_cast<char>('a' + i % 26);
    std::string expected;
    for (const std::string& m : {std::string("<a/>"), std::string("<b/>"), big, std::string("<c/>")}) {
        REQUIRE(t.client.write_plaintext(m) == IoResult::Ok);
        expected += m;
    }
    // All records at once...
    CHECK(t.client.pending_output_size() > big.size());
    t.pipe.run();
    CHECK(t.pipe.server_got == expected);
    // ...and the same split at odd places, consumed piecemeal through pending_output().
    t.pipe.server_got.clear();
    for (const std::string& m : {std::string("<a/>"), big}) REQUIRE(t.client.write_plaintext(m) == IoResult::Ok);
    while (t.client.has_output()) {
        std::string_view v = t.client.pending_output().substr(0, 1500);
        REQUIRE(t.server.feed_ciphertext(v));
        t.client.consume_output(v.size());
        REQUIRE(t.server.read_plaintext(t.pipe.server_got) == IoResult::Ok);
    }
    CHECK(t.pipe.server_got == "<a/>" + big);
    t.client.release_idle_memory();
    t.server.release_idle_memory();
    CHECK(t.client.write_plaintext("<after/>") == IoResult::Ok);
    t.pipe.run();
    CHECK(t.pipe.server_got == "<a/>" + big + "<after/>");
}

TEST_CASE("tls session: SNI selects the server certificate") {
    const auto& p = pki();
    ContextOptions so = server_options(p.a);
    so.sni_certificates = {spec(p.c), spec(p.wildcard)};
    auto server_ctx = make(so);
    auto client_ctx = make(client_options());
    CHECK(server_ctx->certificate_names() == std::vector<std::string>{"a.test", "c.test", "*.w.test"});

    struct Row {
        const char* sni;
        const char* expect_name;  // the name the certificate we got is valid for
        const char* recorded;     // what the server saw
    };
    const Row rows[] = {
        {"c.test", "c.test", "c.test"},
        {"C.Test", "c.test", "c.test"},
        {"a.test", "a.test", "a.test"},
        {"x.w.test", "x.w.test", "x.w.test"},
        {"unknown.test", "a.test", "unknown.test"},  // no match: the default
        {"", "a.test", ""},                          // no SNI: the default
    };
    for (const Row& r : rows) {
        const std::string sni = r.sni;
        CAPTURE(sni);
        SessionOptions co;
        co.server_name = r.sni;
        Pair t(client_ctx, server_ctx, co);
        REQUIRE_MESSAGE(t.client.state() == State::Open, t.client.failure_reason());
        CHECK(t.server.server_name() == r.recorded);
        CHECK(t.client.authenticate_peer(r.expect_name) == PeerAuth::Authenticated);
    }

    // Configured names win over the certificate's own.
    so = server_options(p.a);
    CertificateSpec named = spec(p.c);
    named.names = {"*.hosted.test"};
    so.sni_certificates = {named};
    SessionOptions co;
    co.server_name = "x.hosted.test";
    Pair t(client_ctx, make(so), co);
    REQUIRE(t.client.state() == State::Open);
    CHECK(t.client.authenticate_peer("c.test") == PeerAuth::Authenticated);
}

TEST_CASE("tls session: ALPN xmpp-server (XEP-0368)") {
    const auto& p = pki();
    ContextOptions so = server_options(p.a);
    so.alpn = {kAlpnXmppServer};
    auto server_ctx = make(so);
    ContextOptions co = client_options();
    co.alpn = {kAlpnXmppServer};
    {
        Pair t(make(co), server_ctx);
        REQUIRE(t.server.state() == State::Open);
        CHECK(t.client.alpn_protocol() == "xmpp-server");
        CHECK(t.server.alpn_protocol() == "xmpp-server");
    }
    {
        Pair t(make(client_options()), server_ctx);  // a client that offers none
        REQUIRE(t.server.state() == State::Open);
        CHECK(t.server.alpn_protocol().empty());
    }
    {
        co.alpn = {"xmpp-client"};
        Pair t(make(co), server_ctx);
        CHECK(t.server.state() == State::Failed);
        CHECK(t.client.state() == State::Failed);
        CHECK_MESSAGE(contains(t.client.failure_reason(), "no_application_protocol"), t.client.failure_reason());
    }
}

TEST_CASE("tls session: the client certificate is judged and reported, not enforced") {
    const auto& p = pki();
    struct Row {
        const char* what;
        const CertFiles* cert;
        VerifyMode mode;
        bool use_crl;
        bool server_auth_ok;
        PeerCertificate status;
        const char* reason_part;
        const char* domain;
        PeerAuth auth;
    };
    const Row rows[] = {
        {"valid", &p.a, VerifyMode::Peer, false, true, PeerCertificate::Valid, "", "a.test", PeerAuth::Authenticated},
        {"valid, other name", &p.a, VerifyMode::Peer, false, true, PeerCertificate::Valid, "", "b.test",
         PeerAuth::NameMismatch},
        {"SRV-ID and XmppAddr", &p.srv, VerifyMode::Peer, false, true, PeerCertificate::Valid, "", "b.test",
         PeerAuth::Authenticated},
        {"other CA", &p.foreign, VerifyMode::Peer, false, true, PeerCertificate::Invalid, "not signed by a trusted CA",
         "a.test", PeerAuth::Untrusted},
        {"none", nullptr, VerifyMode::Peer, false, true, PeerCertificate::Missing, "no certificate", "a.test",
         PeerAuth::NoCertificate},
        {"expired", &p.expired, VerifyMode::Peer, false, true, PeerCertificate::Invalid, "expired", "expired.test",
         PeerAuth::Untrusted},
        {"revoked", &p.revoked, VerifyMode::Peer, true, true, PeerCertificate::Invalid, "revoked", "revoked.test",
         PeerAuth::Untrusted},
        {"revoked, no CRL loaded", &p.revoked, VerifyMode::Peer, false, true, PeerCertificate::Valid, "",
         "revoked.test", PeerAuth::Authenticated},
        {"self-signed", &p.self_signed, VerifyMode::Peer, false, true, PeerCertificate::Invalid,
         "not signed by a trusted CA", "self.test", PeerAuth::Untrusted},
        // accepted for the handshake, but anyone can make one for any name: it proves none
        {"self-signed accepted", &p.self_signed, VerifyMode::SelfSignedPeer, false, true, PeerCertificate::Valid,
         "self-signed", "self.test", PeerAuth::Untrusted},
        // a certificate from a CA is judged as with peer
        {"valid, selfsigned_peer", &p.a, VerifyMode::SelfSignedPeer, false, true, PeerCertificate::Valid, "",
         "a.test", PeerAuth::Authenticated},
        {"other CA, selfsigned_peer", &p.foreign, VerifyMode::SelfSignedPeer, false, true, PeerCertificate::Invalid,
         "not signed by a trusted CA", "a.test", PeerAuth::Untrusted},
        {"serverAuth only, accepted", &p.server_only, VerifyMode::Peer, false, true, PeerCertificate::Valid, "",
         "a.test", PeerAuth::Authenticated},
        {"serverAuth only, strict", &p.server_only, VerifyMode::Peer, false, false, PeerCertificate::Invalid,
         "extendedKeyUsage", "a.test", PeerAuth::Untrusted},
        {"verify none", &p.foreign, VerifyMode::None, false, true, PeerCertificate::NotChecked, "verify_mode none",
         "a.test", PeerAuth::Untrusted},
    };
    auto client_ctx_for = [&](const CertFiles* cert) { return make(client_options(cert)); };
    for (const Row& r : rows) {
        const std::string what = r.what;
        CAPTURE(what);
        ContextOptions so = server_options(p.a);
        so.verify_mode = r.mode;
        so.accept_server_auth_for_clients = r.server_auth_ok;
        if (r.use_crl) so.crl_files = {p.crl};
        Pair t(client_ctx_for(r.cert), make(so));
        REQUIRE_MESSAGE(t.server.state() == State::Open, t.server.failure_reason());
        REQUIRE(t.client.state() == State::Open);
        const PeerVerification& v = t.server.peer_verification();
        CHECK(v.status == r.status);
        CHECK_MESSAGE(contains(v.reason, r.reason_part), v.reason);
        CHECK(t.server.authenticate_peer(r.domain) == r.auth);
        CHECK((v.flags == 0) == (r.status == PeerCertificate::Valid || r.status == PeerCertificate::NotChecked));
        // With verify_mode none the server does not even ask for a certificate.
        const bool expect_cert = r.cert != nullptr && r.mode != VerifyMode::None;
        CHECK((t.server.peer_certificate() != nullptr) == expect_cert);
        CHECK(t.server.peer_identities().empty() == !expect_cert);
    }
}

TEST_CASE("tls session: the server's certificate as seen by the client") {
    const auto& p = pki();
    auto client_ctx = make(client_options());
    struct Row {
        const CertFiles* cert;
        PeerCertificate status;
        const char* domain;
        PeerAuth auth;
    };
    const Row rows[] = {
        {&p.a, PeerCertificate::Valid, "a.test", PeerAuth::Authenticated},
        {&p.a, PeerCertificate::Valid, "evil.test", PeerAuth::NameMismatch},  // mbedTLS's CN check is not used
        {&p.srv, PeerCertificate::Valid, "b.test", PeerAuth::Authenticated},
        {&p.cn_only, PeerCertificate::Valid, "cn.test", PeerAuth::Authenticated},
        {&p.expired, PeerCertificate::Invalid, "expired.test", PeerAuth::Untrusted},
        {&p.foreign, PeerCertificate::Invalid, "a.test", PeerAuth::Untrusted},
    };
    for (const Row& r : rows) {
        const std::string domain = r.domain;
        CAPTURE(domain);
        SessionOptions co;
        co.server_name = r.domain;
        Pair t(client_ctx, make(server_options(*r.cert)), co);
        REQUIRE_MESSAGE(t.client.state() == State::Open, t.client.failure_reason());
        CHECK(t.client.peer_verification().status == r.status);
        CHECK(t.client.authenticate_peer(r.domain) == r.auth);
        // The words for logs and bounces carry the detail: the names held, or why not trusted.
        const std::string words = t.client.describe_peer_auth(r.auth);
        CAPTURE(words);
        if (r.auth == PeerAuth::NameMismatch) CHECK(words == "certificate for another name: it is for a.test");
        if (r.auth == PeerAuth::Untrusted) CHECK(words.rfind("untrusted certificate: ", 0) == 0);
        if (r.auth == PeerAuth::Untrusted) CHECK(words.size() > 25);
    }
}

TEST_CASE("tls session: require_valid_peer turns a bad certificate into a failed handshake") {
    const auto& p = pki();
    ContextOptions so = server_options(p.a);
    so.require_valid_peer = true;
    auto strict_server = make(so);
    {
        Pair t(make(client_options(&p.foreign)), strict_server);
        CHECK(t.server.state() == State::Failed);
        CHECK_MESSAGE(contains(t.server.failure_reason(), "peer certificate rejected: not signed by a trusted CA"),
                      t.server.failure_reason());
        CHECK(t.client.state() == State::Failed);
        CHECK_MESSAGE(contains(t.client.failure_reason(), "unknown_ca"), t.client.failure_reason());
    }
    {
        Pair t(make(client_options()), strict_server);
        CHECK(t.server.state() == State::Failed);
        CHECK(contains(t.server.failure_reason(), "no certificate"));
        CHECK(t.client.state() == State::Failed);
    }
    {
        Pair t(make(client_options(&p.a)), strict_server);
        CHECK(t.server.state() == State::Open);
        CHECK(t.client.state() == State::Open);
    }
    {
        ContextOptions co = client_options();
        co.require_valid_peer = true;
        SessionOptions sn;
        sn.server_name = "expired.test";
        Pair t(make(co), make(server_options(p.expired)), sn);
        CHECK(t.client.state() == State::Failed);
        CHECK(contains(t.client.failure_reason(), "expired"));
        CHECK(t.server.state() == State::Failed);
        CHECK_MESSAGE(contains(t.server.failure_reason(), "certificate_expired"), t.server.failure_reason());
    }
}

TEST_CASE("tls session: garbage gives Failed with a reason, not a crash") {
    const auto& p = pki();
    auto server_ctx = make(server_options(p.a));
    auto client_ctx = make(client_options());
    {
        Session s(server_ctx);
        REQUIRE(s.feed_ciphertext("<?xml version='1.0'?><stream:stream xmlns='jabber:server'>"));
        CHECK(s.handshake() == Progress::Failed);
        CHECK(s.state() == State::Failed);
        CHECK_MESSAGE(contains(s.failure_reason(), "does not speak TLS: it sent \"<?xml ve\""), s.failure_reason());
        CHECK(contains(s.failure_reason(), "plain XMPP"));
        CHECK(s.handshake() == Progress::Failed);
        std::string out;
        CHECK(s.read_plaintext(out) == IoResult::Failed);
        CHECK(s.write_plaintext("x") == IoResult::Failed);
        CHECK_FALSE(s.feed_ciphertext("more"));
    }
    std::mt19937 rng(6125);
    for (int round = 0; round < 50; ++round) {
        CAPTURE(round);
        std::string junk(1 + rng() % 3000, '\0');
        for (char& c : junk) c = static_cast<char>(rng());
        if (round % 2) junk[0] = 0x16;  // looks like a handshake record
        Session server(server_ctx);
        Session client(client_ctx);
        (void)client.handshake();
        bool server_failed = false, client_failed = false;
        for (std::size_t i = 0; i < junk.size() && !(server_failed && client_failed); i += 1 + round % 5) {
            std::string_view piece = std::string_view(junk).substr(i, 1 + round % 5);
            if (!server_failed && server.feed_ciphertext(piece)) server_failed = server.handshake() == Progress::Failed;
            if (!client_failed && client.feed_ciphertext(piece)) client_failed = client.handshake() == Progress::Failed;
        }
        if (server.state() == State::Failed) CHECK_FALSE(server.failure_reason().empty());
        if (client.state() == State::Failed) CHECK_FALSE(client.failure_reason().empty());
        CHECK(server.state() != State::Open);
        CHECK(client.state() != State::Open);
    }
    {
        // Corrupted records after the handshake.
        Pair t(client_ctx, server_ctx);
        REQUIRE(t.server.state() == State::Open);
        REQUIRE(t.client.write_plaintext("<message/>") == IoResult::Ok);
        s2s::Buffer b = t.client.take_ciphertext();
        std::string bytes(b.view());
        bytes[bytes.size() - 3] ^= 0x40;
        REQUIRE(t.server.feed_ciphertext(bytes));
        std::string out;
        CHECK(t.server.read_plaintext(out) == IoResult::Failed);
        CHECK(out.empty());
        CHECK_FALSE(t.server.failure_reason().empty());
        CHECK(contains(t.server.failure_reason(), "read: "));
    }
}

TEST_CASE("tls session: cipher and state edge cases") {
    const auto& p = pki();
    {
        ContextOptions so = server_options(p.a);
        so.ciphers = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256";
        ContextOptions co = client_options();
        co.ciphers = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256";
        Pair t(make(co), make(so));
        CHECK(t.server.state() == State::Failed);
        CHECK_MESSAGE(contains(t.server.failure_reason(), "no cipher suite in common"), t.server.failure_reason());
        CHECK(t.client.state() == State::Failed);
        CHECK_MESSAGE(contains(t.client.failure_reason(), "handshake_failure"), t.client.failure_reason());
    }
    {
        ContextOptions so = server_options(p.a);
        so.ciphers = "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256";
        Pair t(make(client_options()), make(so));
        REQUIRE(t.client.state() == State::Open);
        CHECK(t.client.ciphersuite() == "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256");
    }
    {
        Session s(make(client_options()));
        std::string out;
        CHECK(s.state() == State::Handshaking);
        CHECK(s.protocol_version().empty());
        CHECK(s.write_plaintext("early") == IoResult::NotOpen);
        CHECK(s.read_plaintext(out) == IoResult::NotOpen);
        CHECK(s.handshake() == Progress::WantMore);
        CHECK(s.has_output());  // ClientHello
        CHECK(s.peer_certificate() == nullptr);
        CHECK(s.authenticate_peer("a.test") == PeerAuth::Untrusted);
        s.close_notify();
        CHECK(s.state() == State::Closed);
        CHECK(s.handshake() == Progress::Failed);
    }
    CHECK(std::string(state_name(State::Closing)) == "closing");
    CHECK(std::string(peer_auth_name(PeerAuth::NameMismatch)) == "certificate for another name");
    Session null_ctx(nullptr);
    CHECK(null_ctx.state() == State::Failed);
    CHECK_FALSE(null_ctx.failure_reason().empty());
}

TEST_CASE("tls session: session tickets let a client resume") {
    const auto& p = pki();
    auto server_ctx = make(server_options(p.a));
    auto client_ctx = make(client_options(&p.c));
    SessionOptions co;
    co.server_name = "a.test";
    Pair first(client_ctx, server_ctx, co);
    REQUIRE(first.client.state() == State::Open);
    CHECK_FALSE(first.server.resumed());
    CHECK_FALSE(first.client.resumed());
    std::shared_ptr<const SavedSession> saved = first.client.save_session();
    REQUIRE(saved != nullptr);
    CHECK(first.server.save_session() == nullptr);  // servers keep nothing: the ticket is the state

    co.resume = saved;
    Pair again(client_ctx, server_ctx, co);
    REQUIRE(again.client.state() == State::Open);
    REQUIRE(again.server.state() == State::Open);
    CHECK(again.server.resumed());
    CHECK(again.client.resumed());
    // No certificates were sent the second time.
    MESSAGE("full handshake: server sent ", first.pipe.to_client_bytes, " bytes; resumed: ", again.pipe.to_client_bytes);
    // (The client's side does not shrink: its ticket carries its certificate, because mbedTLS
    // keeps the peer certificate in the session state.)
    CHECK(again.pipe.to_client_bytes * 4 < first.pipe.to_client_bytes);
    // The peer's identity survives resumption.
    CHECK(again.client.authenticate_peer("a.test") == PeerAuth::Authenticated);
    CHECK(again.server.authenticate_peer("c.test") == PeerAuth::Authenticated);
    CHECK(again.client.write_plaintext("<r/>") == IoResult::Ok);
    again.pipe.run();
    CHECK(again.pipe.server_got == "<r/>");

    ContextOptions no_tickets = server_options(p.a);
    no_tickets.session_tickets = false;
    Pair full(client_ctx, make(no_tickets), co);
    REQUIRE(full.client.state() == State::Open);
    CHECK(full.pipe.to_client_bytes * 2 > first.pipe.to_client_bytes);
}

TEST_CASE("tls session: a ticket is resumed only by the context that issued it (a reload makes new ones)") {
    const auto& p = pki();
    auto client_ctx = make(client_options(&p.c));
    SessionOptions co;
    co.server_name = "a.test";
    Pair first(client_ctx, make(server_options(p.a)), co);
    REQUIRE(first.server.state() == State::Open);
    co.resume = first.client.save_session();
    REQUIRE(co.resume != nullptr);
    // The same options, as after a SIGHUP that changed nothing: still a new context, new ticket keys.
    Pair other(client_ctx, make(server_options(p.a)), co);
    REQUIRE(other.server.state() == State::Open);
    CHECK_FALSE(other.server.resumed());
    CHECK_FALSE(other.client.resumed());
    CHECK(other.pipe.to_client_bytes * 2 > first.pipe.to_client_bytes);  // certificates sent again
    CHECK(other.server.authenticate_peer("c.test") == PeerAuth::Authenticated);
    // ...and with a CRL listing the client's certificate, the full handshake finds it revoked.
    ContextOptions with_crl = server_options(p.a);
    with_crl.crl_files = {p.crl};
    auto revoked_ctx = make(client_options(&p.revoked));
    SessionOptions ro;
    ro.server_name = "a.test";
    Pair before(revoked_ctx, make(server_options(p.a)), ro);
    REQUIRE(before.server.state() == State::Open);
    CHECK(before.server.peer_verification().status == PeerCertificate::Valid);
    ro.resume = before.client.save_session();
    Pair after(revoked_ctx, make(with_crl), ro);
    REQUIRE(after.server.state() == State::Open);
    CHECK_FALSE(after.server.resumed());
    CHECK(after.server.peer_verification().status == PeerCertificate::Invalid);
    CHECK(contains(after.server.peer_verification().reason, "revoked"));
}

namespace {

// A leaf for c.test from the test root, valid from an hour ago until `until`; empty cert on failure.
CertFiles leaf_until(const TempDir& dir, std::time_t until) {
    char end[32];
    std::tm tm{};
    gmtime_r(&until, &tm);
    std::strftime(end, sizeof end, "%Y%m%d%H%M%SZ", &tm);
    std::time_t from = std::time(nullptr) - 3600;
    char start[32];
    gmtime_r(&from, &tm);
    std::strftime(start, sizeof start, "%Y%m%d%H%M%SZ", &tm);
    const std::string d = dir.path();
    std::string cmd = "cd '" + pki().dir() + "' && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '" +
                      d + "/short.key' && openssl req -new -key '" + d + "/short.key' -subj '/CN=c.test' -config req.cnf -out '" +
                      d + "/short.csr' && openssl ca -batch -notext -config root.cnf -extfile req.cnf -extensions leaf_c " +
                      "-startdate " + start + " -enddate " + end + " -in '" + d + "/short.csr' -out '" + d +
                      "/short.crt' >'" + d + "/openssl.log' 2>&1";
    if (std::system(cmd.c_str()) != 0) return {};
    return {d + "/short.crt", d + "/short.key"};
}

}  // namespace

TEST_CASE("tls session: a resumed session's certificate is checked again: one expired since is not valid") {
    TempDir dir;
    const std::time_t until = std::time(nullptr) + 3;
    CertFiles leaf = leaf_until(dir, until);
    const std::string log = dir.path() + "/openssl.log";
    REQUIRE_MESSAGE(!leaf.cert.empty(), "openssl failed: see " << log);
    auto server_ctx = make(server_options(pki().a));
    auto client_ctx = make(client_options(&leaf));
    SessionOptions co;
    co.server_name = "a.test";
    Pair first(client_ctx, server_ctx, co);
    REQUIRE(first.server.state() == State::Open);
    REQUIRE_MESSAGE(first.server.authenticate_peer("c.test") == PeerAuth::Authenticated, first.server.peer_verification().reason);
    co.resume = first.client.save_session();
    REQUIRE(co.resume != nullptr);
    // mbedTLS compares whole seconds: wait until the certificate's last second has passed.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::time(nullptr) <= until + 1 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(std::time(nullptr) > until + 1);
    Pair again(client_ctx, server_ctx, co);
    REQUIRE(again.server.state() == State::Open);
    CHECK(again.server.resumed());
    CHECK(again.server.peer_verification().status == PeerCertificate::Invalid);
    CHECK_MESSAGE(contains(again.server.peer_verification().reason, "expired"), again.server.peer_verification().reason);
    CHECK(again.server.authenticate_peer("c.test") == PeerAuth::Untrusted);
}

TEST_CASE("tls session: TLS 1.3 when the library has it") {
    if (!tls13_available()) {
        MESSAGE("mbedTLS " MBEDTLS_VERSION_STRING " has no TLS 1.3: skipped");
        return;
    }
    const auto& p = pki();
    ContextOptions so = server_options(p.a);
    so.versions = {"tlsv1.3"};
    so.alpn = {kAlpnXmppServer};
    ContextOptions co = client_options(&p.c);
    co.alpn = {kAlpnXmppServer};
    SessionOptions sn;
    sn.server_name = "a.test";
    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}}) {
        Pair t(make(co), make(so), sn, chunk);
        REQUIRE_MESSAGE(t.client.state() == State::Open, t.client.failure_reason());
        REQUIRE_MESSAGE(t.server.state() == State::Open, t.server.failure_reason());
        CHECK(t.client.protocol_version() == "TLSv1.3");
        CHECK(t.client.alpn_protocol() == "xmpp-server");
        CHECK(t.server.authenticate_peer("c.test") == PeerAuth::Authenticated);
        CHECK(t.client.write_plaintext("<x/>") == IoResult::Ok);
        CHECK(t.server.write_plaintext("<y/>") == IoResult::Ok);
        t.pipe.run();
        CHECK(t.pipe.server_got == "<x/>");
        CHECK(t.pipe.client_got == "<y/>");
        t.server.close_notify();
        t.pipe.run();
        CHECK(t.client.state() == State::Closed);
    }
}

TEST_CASE("tls session: memory per idle session") {
    const auto& p = pki();
    auto server_ctx = make(server_options(p.a));
    auto client_ctx = make(client_options(&p.c));
    constexpr int kPairs = 20;
    std::vector<std::unique_ptr<Session>> sessions;
    sessions.reserve(2 * kPairs);
    const std::size_t before = mallinfo2().uordblks;
    for (int i = 0; i < kPairs; ++i) {
        auto c = std::make_unique<Session>(client_ctx);
        auto s = std::make_unique<Session>(server_ctx);
        Pipe pipe{*c, *s};
        pipe.run();
        REQUIRE(s->state() == State::Open);
        REQUIRE(c->write_plaintext("<presence/>") == IoResult::Ok);
        pipe.run();
        c->release_idle_memory();
        s->release_idle_memory();
        sessions.push_back(std::move(c));
        sessions.push_back(std::move(s));
    }
    const std::size_t after = mallinfo2().uordblks;
    if (after <= before) {
        MESSAGE("mallinfo2 does not see this allocator (sanitizer build?): not measured");
        return;
    }
    const std::size_t per_session = (after - before) / (2 * kPairs);
    MESSAGE("heap per idle TLS 1.2 session (peer certificate kept): ", per_session, " bytes");
    CHECK(per_session < 40 * 1024);
}

TEST_CASE("tls context: dhfile sets a server's DHE group and a client's smallest accepted prime") {
    const auto& p = pki();
    TempDir tmp;
    const std::string dh3072 = tmp.path() + "/dh3072.pem", dh1024 = tmp.path() + "/dh1024.pem";
    REQUIRE(std::system(("openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe3072 -out '" + dh3072 +
                         "' 2>/dev/null").c_str()) == 0);
    REQUIRE(std::system(("openssl dhparam -out '" + dh1024 + "' 1024 2>/dev/null").c_str()) == 0);
    ContextOptions o = server_options(p.a);
    o.dhfile = dh3072;
    CHECK(Context::create(o));
    ContextOptions c = client_options();
    c.dhfile = dh3072;
    CHECK(Context::create(c));

    o.dhfile = dh1024;
    ContextResult r = Context::create(o);
    CHECK_FALSE(r);
    CHECK(r.option == "dhfile");
    CHECK(contains(r.error, "the prime has 1024 bits; at least 2048 are needed"));
    o.dhfile = tmp.write("junk.pem", "not DH parameters\n");
    CHECK(contains(context_error(o), "no PEM DH parameters"));
    o.dhfile = tmp.path() + "/missing.pem";
    CHECK(contains(context_error(o), "dhfile '" + tmp.path() + "/missing.pem'"));
}

TEST_CASE("tls context: protocol_options are MongooseIM's, others are refused naming them") {
    const auto& p = pki();
    ContextOptions o = server_options(p.a);
    o.protocol_options = {"no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1", "no_tlsv1_3", "cipher_server_preference",
                          "no_compression", "no_ticket"};
    CHECK(Context::create(o));
    o.protocol_options = {"no_tlsv1_4"};
    ContextResult r = Context::create(o);
    CHECK(r.option == "protocol_options");
    CHECK(contains(r.error, "unknown option 'no_tlsv1_4' (known: no_sslv2,"));
    o.protocol_options = {"no_tlsv1_2", "no_tlsv1_3"};
    CHECK(contains(context_error(o), "protocol_options"));
    o.protocol_options = {"no_tlsv1_2"};
    if (!tls13_available()) CHECK(contains(context_error(o), "no_tlsv1_2 leaves TLS 1.3 only"));
}

TEST_CASE("tls context: an error names the option it is about") {
    const auto& p = pki();
    ContextOptions o = server_options(p.a);
    o.ciphers = "NOPE";
    ContextResult r = Context::create(o);
    CHECK(r.option == "ciphers");
    o = server_options(p.a);
    o.cacertfile = "/nonexistent/ca.pem";
    r = Context::create(o);
    CHECK(r.option == "cacertfile");
    o = server_options(p.a);
    o.certificate.keyfile = "/nonexistent/k.pem";
    r = Context::create(o);
    CHECK(r.option == "keyfile");
    o = server_options(p.a);
    o.versions = {"tlsv9"};
    r = Context::create(o);
    CHECK(r.option == "versions");
}

TEST_CASE("tls session: DHE uses the server's dhfile group; a client's dhfile sets the smallest prime it accepts") {
    TempDir tmp;
    const std::string cert = tmp.path() + "/rsa.crt", key = tmp.path() + "/rsa.key", dh3072 = tmp.path() + "/dh.pem";
    REQUIRE(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -keyout '" + key + "' -out '" + cert +
                         "' -subj /CN=a.test -addext subjectAltName=DNS:a.test -days 2 >/dev/null 2>&1").c_str()) == 0);
    REQUIRE(std::system(("openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe3072 -out '" + dh3072 +
                         "' 2>/dev/null").c_str()) == 0);
    ContextOptions so;
    so.role = Role::Server;
    so.certificate.certfile = cert;
    so.certificate.keyfile = key;
    so.verify_mode = VerifyMode::None;
    so.ciphers = "DHE-RSA-AES128-GCM-SHA256";
    ContextOptions co;
    co.role = Role::Client;
    co.verify_mode = VerifyMode::None;

    // The server's default group has 2048 bits: accepted by default, refused by a client whose
    // dhfile has 3072.
    {
        Pair t(make(co), make(so));
        REQUIRE_MESSAGE(t.client.state() == State::Open, t.client.failure_reason());
    }
    co.dhfile = dh3072;
    {
        Pair t(make(co), make(so));
        CHECK(t.client.state() == State::Failed);
    }
    // With the file's 3072-bit group it negotiates DHE.
    so.dhfile = dh3072;
    {
        Pair t(make(co), make(so));
        REQUIRE_MESSAGE(t.client.state() == State::Open, t.client.failure_reason());
        CHECK(t.client.ciphersuite() == "TLS-DHE-RSA-WITH-AES-128-GCM-SHA256");
    }
}
