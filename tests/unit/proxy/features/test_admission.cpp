// Admission of stanzas from a remote server, fed parsed stanzas with no socket: what passes goes
// to the router, what fails comes back as the refusal that ends the stream.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/features/admission.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/null_router.h"
#include "tests/unit/support/spam_fixture.h"

using namespace s2s;

namespace {

struct RecordingRouter : test::NullRouter {
    std::vector<std::string> delivered, refused;
    void from_remote(std::string_view remote, std::string_view local, xml::Document& stanza, Stream*) override {
        delivered.push_back(std::string(remote) + "->" + std::string(local) + " " +
                            xml::to_string(stanza.root(), xml::NamespaceScope::server_stream()));
    }
    void refuse_from_remote(std::string_view remote, std::string_view local, xml::Document& stanza,
                            const std::string& why, Stream*) override {
        refused.push_back(std::string(remote) + "->" + std::string(local) + " " + std::string(stanza.root().name()) +
                          ": " + why);
    }
};

struct Fixture {
    test::TestLoop t;
    Config config;
    DialbackKeys keys{"test secret"};
    std::unique_ptr<PolicyRules> policy;
    RecordingRouter router;
    std::unique_ptr<ProxyContext> ctx;
    PairSet pairs;

    Fixture() {
        config.hosts = {"a.test"};
        policy = std::make_unique<PolicyRules>(config, false);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), keys, *policy, router, {}, 0});
        (void)pairs.insert("b.test", "a.test");
    }
    std::optional<StanzaRefusal> route(const char* stanza) {
        auto doc = xml::parse_element(stanza);
        REQUIRE(doc);
        return route_remote_stanza(*ctx, 1, nullptr, *doc, pairs);
    }
};

}  // namespace

TEST_CASE("admission: a stanza for an authenticated pair goes to the router") {
    Fixture f;
    CHECK_FALSE(f.route("<message from='u@b.test/r' to='v@a.test' id='m1'><body>hi</body></message>"));
    REQUIRE(f.router.delivered.size() == 1);
    CHECK(f.router.delivered[0].rfind("b.test->a.test <message", 0) == 0);
}

TEST_CASE("admission: each failed check is a refusal with its stream error, and nothing is routed") {
    Fixture f;
    auto missing = f.route("<message from='u@b.test'/>");
    REQUIRE(missing);
    CHECK(missing->error == StreamError::ImproperAddressing);
    CHECK(missing->text == "a stanza without 'to'");
    auto other = f.route("<message from='u@c.test' to='v@a.test'/>");
    REQUIRE(other);
    CHECK(other->error == StreamError::InvalidFrom);
    CHECK(other->text == "c.test is not authenticated for a.test on this stream");
    auto elsewhere = f.route("<message from='u@b.test' to='v@z.test'/>");
    REQUIRE(elsewhere);
    CHECK(elsewhere->error == StreamError::HostUnknown);
    f.pairs.clear();
    auto early = f.route("<message from='u@b.test' to='v@a.test'/>");
    REQUIRE(early);
    CHECK(early->error == StreamError::NotAuthorized);
    CHECK(f.router.delivered.empty());
}

TEST_CASE("admission: a remote server may not claim one of our hosts, nor an IP literal s2s.host_policy does not allow") {
    Fixture f;
    CHECK_FALSE(refuse_claim(*f.ctx, "b.test"));
    auto ours = refuse_claim(*f.ctx, "a.test");
    REQUIRE(ours);
    CHECK(std::string(ours->condition) == "policy-violation");
    CHECK(ours->text == "a.test is served here; another server cannot claim it");
    auto literal = refuse_claim(*f.ctx, "192.0.2.7");
    REQUIRE(literal);
    CHECK(std::string(literal->condition) == "not-acceptable");
}

TEST_CASE("admission: a listed sender's stanzas are refused one by one; the stream and the domain's other users stay") {
    Fixture f;
    f.policy->set_spam_lists(test::spam_lists("", "spammer@b.test\n"));
    CHECK_FALSE(f.route("<message from='Spammer@B.test/bot' to='v@a.test' id='s1'><body>buy</body></message>"));
    CHECK_FALSE(f.route("<presence from='spammer@b.test/bot' to='v@a.test' type='subscribe'/>"));
    CHECK_FALSE(f.route("<message from='carol@b.test/r' to='v@a.test' id='c1'><body>hi</body></message>"));
    REQUIRE(f.router.refused.size() == 2);
    CHECK(f.router.refused[0] ==
          "b.test->a.test message: spammer@b.test is listed as a spammer (antispam.spam_jids_file)");
    CHECK(f.router.refused[1].rfind("b.test->a.test presence: ", 0) == 0);
    REQUIRE(f.router.delivered.size() == 1);
    CHECK(f.router.delivered[0].find("id='c1'") != std::string::npos);
    // the domain checks come first: a stanza a listed JID sends from a refused domain ends the stream
    f.policy->set_spam_lists(test::spam_lists("b.test\n", "spammer@b.test\n"));
    auto domain = f.route("<message from='spammer@b.test' to='v@a.test'/>");
    REQUIRE(domain);
    CHECK(domain->error == StreamError::PolicyViolation);
    CHECK(f.router.refused.size() == 2);
}
