// Host policy and authentication requirements.
#include <doctest/doctest.h>

#include "proxy/xmpp/policy.h"

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
