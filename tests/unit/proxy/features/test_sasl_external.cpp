// SASL EXTERNAL (proxy/features/sasl_external), both roles, fed parsed elements and TLS sessions that
// handshake over an in-memory pipe: no socket, no stream.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include "common/tls/tls_context.h"
#include "proxy/ops/metrics.h"
#include "proxy/features/sasl_external.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/null_router.h"
#include "tests/unit/support/spam_fixture.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;

namespace {

xml::Document element(const std::string& text) {
    auto d = xml::parse_element(text);
    REQUIRE(d);
    return std::move(*d);
}

std::shared_ptr<const tls::Context> context(tls::Role role, const test::CertFiles* cert) {
    const auto& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    tls::ContextOptions o;
    o.role = role;
    if (cert) o.certificate = {cert->cert, cert->key, "", {}};
    o.cacertfile = pki.ca;
    auto r = tls::Context::create(o);
    REQUIRE_MESSAGE(r, r.error);
    return r.context;
}

// The receiving server's session after a handshake with a client that showed `client_cert`.
struct Handshake {
    tls::Session client, server;
    explicit Handshake(const test::CertFiles* client_cert)
        : client(context(tls::Role::Client, client_cert), {}),
          server(context(tls::Role::Server, &test::TestPki::get().c)) {
        (void)client.handshake();
        for (int round = 0; round < 20 && (client.has_output() || server.has_output()); ++round) {
            if (client.has_output()) {
                REQUIRE(server.feed_ciphertext(client.take_ciphertext().view()));
                if (server.state() == tls::State::Handshaking) (void)server.handshake();
            }
            if (server.has_output()) {
                REQUIRE(client.feed_ciphertext(server.take_ciphertext().view()));
                if (client.state() == tls::State::Handshaking) (void)client.handshake();
            }
        }
        REQUIRE(server.state() != tls::State::Handshaking);
    }
};

struct Fixture {
    test::TestLoop t;
    Config config;
    DialbackKeys keys{"test secret"};
    std::unique_ptr<PolicyRules> policy;
    test::NullRouter router;
    std::unique_ptr<ProxyContext> ctx;
    LogContext log{1, "a.test", "b.test"};
    Handshake h{&test::TestPki::get().a};  // the peer shows a.test's certificate

    Fixture() {
        config.hosts = {"c.test"};
        policy = std::make_unique<PolicyRules>(config, false);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), keys, *policy, router, {}, 0});
    }
};

const char* const kMechanisms =
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>";
const char* const kAuth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>";

std::optional<std::string> any_pair(const std::string&) { return std::nullopt; }

}  // namespace

TEST_CASE("sasl_external: offered over TLS only, for a 'from' the certificate proves and that may be claimed") {
    Fixture f;
    SaslExternalServer sasl;
    CHECK(sasl.feature(*f.ctx, nullptr, "b.test").empty());
    CHECK(sasl.feature(*f.ctx, &f.h.server, "").empty());
    f.config.hosts = {"a.test", "c.test"};
    CHECK(sasl.feature(*f.ctx, &f.h.server, "a.test").empty());  // served here: cannot be claimed
    f.config.hosts = {"c.test"};
    CHECK(sasl.feature(*f.ctx, &f.h.server, "a.test") == kMechanisms);
    CHECK(sasl.feature(*f.ctx, &f.h.server, "d.test").empty());  // not what the certificate proves
}

TEST_CASE("sasl_external: <auth/> with the certificate for the stream's domain succeeds once") {
    Fixture f;
    SaslExternalServer sasl;
    uint64_t before = metrics().sasl_external.get("inbound:success");
    auto auth = element(kAuth);
    SaslExternalServer::Answer a = sasl.on_auth(*f.ctx, &f.h.server, auth.root(), "a.test", f.log, any_pair);
    CHECK(a.bytes == "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    CHECK(a.authenticated == "a.test");
    CHECK_FALSE(a.error);
    CHECK(sasl.succeeded());
    CHECK(metrics().sasl_external.get("inbound:success") == before + 1);
    CHECK(sasl.feature(*f.ctx, &f.h.server, "a.test").empty());
    SaslExternalServer::Answer again = sasl.on_auth(*f.ctx, &f.h.server, auth.root(), "a.test", f.log, any_pair);
    CHECK(again.bytes.empty());
    REQUIRE(again.error);
    CHECK(*again.error == StreamError::PolicyViolation);
}

TEST_CASE("sasl_external: each refusal is a <failure/> with its condition; the third ends the stream") {
    Fixture f;
    SaslExternalServer sasl;
    uint64_t before = metrics().sasl_external.get("inbound:failure");
    auto plain = element("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>=</auth>");
    SaslExternalServer::Answer a = sasl.on_auth(*f.ctx, &f.h.server, plain.root(), "a.test", f.log, any_pair);
    CHECK(a.bytes == "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><invalid-mechanism/>"
                     "<text>only EXTERNAL is offered</text></failure>");
    CHECK_FALSE(a.error);
    auto auth = element(kAuth);
    a = sasl.on_auth(*f.ctx, nullptr, auth.root(), "a.test", f.log, any_pair);
    CHECK(a.bytes.find("<encryption-required/>") != std::string::npos);
    CHECK_FALSE(a.error);
    a = sasl.on_abort(f.log);
    CHECK(a.bytes == "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>");
    REQUIRE(a.error);
    CHECK(*a.error == StreamError::NotAuthorized);
    CHECK(a.error_text == "too many SASL failures");
    CHECK(metrics().sasl_external.get("inbound:failure") == before + 3);
    CHECK_FALSE(sasl.succeeded());
}

TEST_CASE("sasl_external: the authorization identity, the pair check and the certificate are judged") {
    Fixture f;
    auto judge = [&](const std::string& auth, const std::string& claimed,
                     const SaslExternalServer::PairCheck& check = any_pair) {
        SaslExternalServer sasl;
        auto e = element(auth);
        return sasl.on_auth(*f.ctx, &f.h.server, e.root(), claimed, f.log, check);
    };
    // base64: YS50ZXN0 is "a.test", Yy50ZXN0 is "c.test"
    auto other = judge("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>YS50ZXN0</auth>", "b.test");
    CHECK(other.bytes.find("<invalid-authzid/><text>'a.test' is not the stream's 'from' b.test</text>") != std::string::npos);
    auto garbled = judge("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>!!!</auth>", "a.test");
    CHECK(garbled.bytes.find("<incorrect-encoding/>") != std::string::npos);
    auto nobody = judge(kAuth, "");
    CHECK(nobody.bytes.find("<invalid-authzid/>") != std::string::npos);
    auto authzid = judge("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>YS50ZXN0</auth>", "");
    CHECK(authzid.authenticated == "a.test");
    auto ours = judge("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>Yy50ZXN0</auth>", "");
    CHECK(ours.bytes.find("<not-authorized/><text>c.test is served here") != std::string::npos);
    auto refused = judge(kAuth, "a.test", [](const std::string& d) -> std::optional<std::string> { return d + " no"; });
    CHECK(refused.bytes.find("<not-authorized/><text>a.test no</text>") != std::string::npos);
    auto wrong = judge(kAuth, "b.test");
    CHECK(wrong.bytes.find("<not-authorized/><text>the certificate is not valid for b.test") != std::string::npos);
    CHECK(wrong.authenticated.empty());
}

TEST_CASE("sasl_external: a spam-listed domain is refused with not-authorized and a text naming the list") {
    Fixture f;
    f.policy->set_spam_lists(test::spam_lists("a.test\n"));
    SaslExternalServer sasl;
    auto auth = element(kAuth);
    SaslExternalServer::Answer a = sasl.on_auth(*f.ctx, &f.h.server, auth.root(), "a.test", f.log, any_pair);
    // RFC 6120 §6.5 has no policy-violation among the SASL conditions: not-authorized says it
    CHECK(a.bytes == "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>a.test is listed as a "
                     "spam domain (antispam.spam_domains_file)</text></failure>");
    CHECK(a.authenticated.empty());
    CHECK_FALSE(sasl.succeeded());
}

TEST_CASE("sasl_external: the initiating side asks once, over TLS, with a certificate, when offered") {
    auto features = element(std::string("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>") +
                            kMechanisms + "</stream:features>");
    auto without = element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                           "<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>");
    SaslExternalClient sasl;
    CHECK(SaslExternalClient::offered(features.root()));
    CHECK_FALSE(SaslExternalClient::offered(without.root()));
    CHECK_FALSE(sasl.wanted(features.root(), false, true));
    CHECK_FALSE(sasl.wanted(features.root(), true, false));
    CHECK_FALSE(sasl.wanted(without.root(), true, true));
    REQUIRE(sasl.wanted(features.root(), true, true));
    CHECK(sasl.start() == kAuth);
    CHECK(sasl.state() == SaslExternalClient::State::Sent);
    CHECK_FALSE(sasl.wanted(features.root(), true, true));

    LogContext log{1, "a.test", "b.test"};
    uint64_t failures = metrics().sasl_external.get("outbound:failure");
    auto failure = element("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>");
    CHECK_FALSE(sasl.on_answer(failure.root(), log, "b.test"));
    CHECK(sasl.state() == SaslExternalClient::State::Refused);
    CHECK_FALSE(sasl.wanted(features.root(), true, true));
    CHECK(metrics().sasl_external.get("outbound:failure") == failures + 1);

    SaslExternalClient second;
    (void)second.start();
    uint64_t successes = metrics().sasl_external.get("outbound:success");
    auto success = element("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    CHECK(second.on_answer(success.root(), log, "b.test"));
    CHECK(second.succeeded());
    CHECK(metrics().sasl_external.get("outbound:success") == successes + 1);
}
