// Host policy, the [antispam] lists as the policy applies them, and authentication requirements.
#include <doctest/doctest.h>

#include "proxy/ops/metrics.h"
#include "proxy/xmpp/policy.h"
#include "tests/unit/support/spam_fixture.h"

using namespace s2s;

TEST_CASE("policy: default allow with a denied host; entries compare normalised domains") {
    Config c;
    c.host_policy = {{"bad.test", Policy::Deny}, {"good.test", Policy::Allow}};
    PolicyRules p(c, false);
    CHECK(p.allowed("any.test"));
    CHECK(p.allowed("good.test"));
    CHECK_FALSE(p.allowed("bad.test"));
    CHECK_FALSE(p.allowed("BAD.test."));
    CHECK(p.allowed("sub.bad.test"));  // exact entries only: a subdomain is its own host
    CHECK(p.refusal("bad.test") == "bad.test is denied by s2s.host_policy");
    CHECK(p.refusal("good.test").empty());
}

TEST_CASE("policy: default deny lets only allowed hosts in") {
    Config c;
    c.default_policy = Policy::Deny;
    c.host_policy = {{"good.test", Policy::Allow}};
    PolicyRules p(c, false);
    CHECK(p.allowed("good.test"));
    CHECK_FALSE(p.allowed("other.test"));
    CHECK(p.refusal("other.test") == "other.test is not in s2s.host_policy and s2s.default_policy is \"deny\"");
}

TEST_CASE("policy: which domains must show a valid certificate") {
    Config c;
    CHECK(PolicyRules(c, false).dialback_allowed("a.test"));

    c.secure_domains = {"bank.test"};
    PolicyRules secure_one(c, false);
    CHECK(secure_one.needs_valid_certificate("bank.test"));
    CHECK(secure_one.dialback_allowed("a.test"));

    c.secure_auth = true;
    c.insecure_domains = {"legacy.test"};
    PolicyRules secure_all(c, false);
    CHECK(secure_all.needs_valid_certificate("a.test"));
    CHECK(secure_all.dialback_allowed("legacy.test"));

    Config t;
    t.use_starttls = "required_trusted";
    t.insecure_domains = {"legacy.test"};
    CHECK(PolicyRules(t, true).needs_valid_certificate("legacy.test"));
    CHECK_FALSE(PolicyRules(t, false).needs_valid_certificate("legacy.test"));
}

TEST_CASE("policy: the option that makes a domain need a valid certificate is named for texts") {
    Config c;
    CHECK(PolicyRules(c, false).certificate_rule("a.test").empty());
    c.secure_domains = {"bank.test"};
    c.insecure_domains = {"legacy.test"};
    CHECK(PolicyRules(c, false).certificate_rule("BANK.test") == "s2s.secure_domains");
    CHECK(PolicyRules(c, false).certificate_rule("a.test").empty());
    c.secure_auth = true;
    PolicyRules all(c, false);
    CHECK(all.certificate_rule("bank.test") == "s2s.secure_domains");
    CHECK(all.certificate_rule("a.test") == "s2s.secure_auth");
    CHECK(all.certificate_rule("legacy.test").empty());
    c.use_starttls = "required_trusted";
    CHECK(PolicyRules(c, true).certificate_rule("legacy.test") == "s2s.use_starttls = required_trusted");
    // every domain needing a certificate has a rule, and no other
    for (const char* d : {"a.test", "bank.test", "legacy.test"}) {
        Config o;
        o.secure_domains = {"bank.test"};
        PolicyRules p(o, false);
        CHECK(p.needs_valid_certificate(d) == !p.certificate_rule(d).empty());
    }
}

TEST_CASE("policy: a spam-listed domain is refused, naming its list, unless s2s.host_policy allows it by name") {
    Config c;
    c.host_policy = {{"friend.spam.test", Policy::Allow}};
    PolicyRules p(c, false);
    p.set_spam_lists(test::spam_lists("spam.test\n"));
    uint64_t before = metrics().antispam_refusals.get("spam_domains_file:domain");
    CHECK_FALSE(p.allowed("muc.Spam.test"));
    CHECK(p.refusal("muc.spam.test") ==
          "muc.spam.test is listed as a spam domain (antispam.spam_domains_file)");
    CHECK(metrics().antispam_refusals.get("spam_domains_file:domain") == before + 1);
    CHECK(p.allowed("friend.spam.test"));
    CHECK(p.refusal("friend.spam.test").empty());
    CHECK(p.allowed("other.test"));
}

TEST_CASE("policy: a listed JID is refused by its bare, case-folded form; its domain's other users are not") {
    Config c;
    PolicyRules p(c, false);
    auto jid = [](const char* s) {
        auto v = JidView::parse(s);
        REQUIRE(v);
        return *v;
    };
    CHECK(p.jid_refusal(jid("spammer@c.test/r")).empty());  // no lists loaded
    p.set_spam_lists(test::spam_lists("", "spammer@c.test\n"));
    uint64_t before = metrics().antispam_refusals.get("spam_jids_file:jid");
    CHECK(p.jid_refusal(jid("SPAMMER@C.Test/phone")) ==
          "spammer@c.test is listed as a spammer (antispam.spam_jids_file)");
    CHECK(metrics().antispam_refusals.get("spam_jids_file:jid") == before + 1);
    CHECK(p.jid_refusal(jid("carol@c.test/r")).empty());
    CHECK(p.jid_refusal(jid("c.test")).empty());
    CHECK(p.allowed("c.test"));  // a JID entry does not refuse its domain
    CHECK(metrics().antispam_refusals.get("spam_jids_file:jid") == before + 1);
}
