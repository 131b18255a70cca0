// DANE on one outbound link (proxy/features/dane_link): real TLS sessions in memory, the server
// presenting a self-signed certificate no CA vouches for, judged against TLSA records.
#include <doctest/doctest.h>
#include <mbedtls/x509_crt.h>

#include <memory>
#include <string>

#include "proxy/features/dane_link.h"
#include "proxy/ops/metrics.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/null_router.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;
using s2s::test::TestPki;

namespace {

std::shared_ptr<const tls::Context> context(tls::Role role, const s2s::test::CertFiles* cert) {
    tls::ContextOptions o;
    o.role = role;
    if (cert) o.certificate = {cert->cert, cert->key, "", {}};
    o.cacertfile = TestPki::get().ca;
    tls::ContextResult r = tls::Context::create(o);
    REQUIRE_MESSAGE(r, r.error);
    return r.context;
}

// A client session that finished its handshake with a server presenting `cert`.
std::unique_ptr<tls::Session> handshake_with(const s2s::test::CertFiles& cert) {
    auto client = std::make_unique<tls::Session>(context(tls::Role::Client, nullptr));
    tls::Session server(context(tls::Role::Server, &cert));
    (void)client->handshake();
    for (int i = 0; i < 20 && client->state() == tls::State::Handshaking; ++i) {
        for (auto [from, to] : {std::pair{client.get(), &server}, std::pair{&server, client.get()}}) {
            if (!from->has_output()) continue;
            Buffer bytes = from->take_ciphertext();
            REQUIRE(to->feed_ciphertext(bytes.view()));
            (void)to->handshake();
        }
    }
    REQUIRE(client->state() == tls::State::Open);
    return client;
}

// The record DANE-EE 3 0 0 for a PEM certificate (its whole DER, no digest).
tls::TlsaRecord full_certificate(const std::string& pem) {
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    REQUIRE(mbedtls_x509_crt_parse_file(&crt, pem.c_str()) == 0);
    tls::TlsaRecord r{3, 0, 0, std::string(reinterpret_cast<const char*>(crt.raw.p), crt.raw.len)};
    mbedtls_x509_crt_free(&crt);
    return r;
}

Candidate candidate(DaneState state, std::vector<tls::TlsaRecord> records = {}) {
    Candidate c;
    c.host = "xmpp.b.test";
    c.dane = state;
    if (state == DaneState::Usable) c.tlsa = std::make_shared<const std::vector<tls::TlsaRecord>>(std::move(records));
    return c;
}

}  // namespace

TEST_CASE("dane link: a match authenticates the remote; a mismatch fails; no records change nothing") {
    const TestPki& pki = TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    test::TestLoop t;
    Config config;
    config.hosts = {"a.test"};
    config.secure_domains = {"b.test"};  // must prove itself with a certificate
    DialbackKeys keys{"test secret"};
    PolicyRules policy(config, false);
    test::NullRouter router;
    ProxyContext ctx{config, t.loop(), keys, policy, router, {}, 0};
    LogContext log{1, "a.test", "b.test"};
    std::unique_ptr<tls::Session> session = handshake_with(pki.self_signed);
    std::string why;

    DaneLink plain;
    plain.reset(candidate(DaneState::Insecure));
    CHECK_FALSE(plain.required());
    CHECK(plain.verify(*session, "b.test", log, &why));
    CHECK_FALSE(plain.matched());
    // Without DANE the self-signed certificate does not prove b.test.
    CHECK_FALSE(plain.secure_enough(ctx, session.get(), "b.test", log, &why));

    uint64_t matches = metrics().dane.get("match"), mismatches = metrics().dane.get("mismatch");
    DaneLink dane;
    dane.reset(candidate(DaneState::Usable, {full_certificate(pki.self_signed.cert)}));
    CHECK(dane.required());
    CHECK(dane.verify(*session, "b.test", log, &why));
    CHECK(dane.matched());
    CHECK(dane.secure_enough(ctx, session.get(), "b.test", log, &why));
    CHECK(metrics().dane.get("match") == matches + 1);
    // A plain stream to a server with usable records is refused.
    DaneLink unencrypted;
    unencrypted.reset(candidate(DaneState::Usable, {full_certificate(pki.self_signed.cert)}));
    CHECK_FALSE(unencrypted.secure_enough(ctx, nullptr, "b.test", log, &why));
    CHECK(why ==
          "b.test publishes DANE TLSA records for xmpp.b.test, but the stream is not encrypted (it offered no TLS)");

    DaneLink other;
    other.reset(candidate(DaneState::Usable, {full_certificate(pki.a.cert)}));
    CHECK_FALSE(other.verify(*session, "b.test", log, &why));
    CHECK_FALSE(other.matched());
    CHECK(why.find("the certificate of b.test (at xmpp.b.test) does not match its DANE TLSA records: ") == 0);
    CHECK(metrics().dane.get("mismatch") == mismatches + 1);
    // The next candidate starts afresh.
    other.reset(candidate(DaneState::NoRecords));
    CHECK_FALSE(other.required());
}
