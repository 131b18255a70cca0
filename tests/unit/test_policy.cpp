// Host policy and authentication requirements.
#include <doctest/doctest.h>

#include "proxy/policy.h"

using namespace s2s;

TEST_CASE("policy: default allow with a denied host; entries compare normalised domains") {
    Config c;
    c.host_policy = {{"bad.test", Policy::Deny}, {"good.test", Policy::Allow}};
    PolicyRules p(c);
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
    PolicyRules p(c);
    CHECK(p.allowed("good.test"));
    CHECK_FALSE(p.allowed("other.test"));
    CHECK(p.refusal("other.test") == "other.test is not in s2s.host_policy and s2s.default_policy is \"deny\"");
}

TEST_CASE("policy: which domains must show a valid certificate") {
    Config c;
    CHECK(PolicyRules(c).dialback_allowed("a.test"));

    c.secure_domains = {"bank.test"};
    PolicyRules secure_one(c);
    CHECK(secure_one.needs_valid_certificate("bank.test"));
    CHECK(secure_one.dialback_allowed("a.test"));

    c.secure_auth = true;
    c.insecure_domains = {"legacy.test"};
    PolicyRules secure_all(c);
    CHECK(secure_all.needs_valid_certificate("a.test"));
    CHECK(secure_all.dialback_allowed("legacy.test"));

    Config t;
    t.use_starttls = StartTls::RequiredTrusted;
    t.insecure_domains = {"legacy.test"};
    CHECK(PolicyRules(t).needs_valid_certificate("legacy.test"));
}
