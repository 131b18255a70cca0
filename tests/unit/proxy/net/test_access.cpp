// Access rules and ACLs.
#include <doctest/doctest.h>

#include "proxy/net/access.h"

using namespace s2s;

TEST_CASE("access: clauses in order, first matching acl decides; nothing matching denies") {
    Config c;
    c.hosts = {"a.test"};
    c.acl["friends"] = {{"", "b.test"}};
    c.acl["locals"] = {{"current_domain", ""}};
    c.access["in"] = {{"friends", "allow"}, {"locals", "allow"}, {"all", "deny"}};
    c.access["friends_only"] = {{"friends", "allow"}};
    CHECK(access_allows(c, "all", "anyone.test"));
    CHECK(access_allows(c, "in", "b.test"));
    CHECK(access_allows(c, "in", "a.test"));
    CHECK_FALSE(access_allows(c, "in", "c.test"));
    CHECK_FALSE(access_allows(c, "friends_only", "c.test"));
    CHECK_FALSE(access_allows(c, "undefined_rule", "b.test"));
    c.access["deny_friends"] = {{"friends", "deny"}, {"all", "allow"}};
    CHECK_FALSE(access_allows(c, "deny_friends", "b.test"));
    CHECK(access_allows(c, "deny_friends", "c.test"));
}

TEST_CASE("access: a rule's value for a domain, and with no domain known only acls that need none match") {
    Config c;
    c.hosts = {"a.test"};
    c.acl["friends"] = {{"", "b.test"}};
    c.acl["locals"] = {{"current_domain", ""}};
    c.acl["everyone"] = {{"all", ""}};
    c.access["shaping"] = {{"friends", "fast"}, {"locals", "none"}, {"everyone", "normal"}};
    c.access["friends_only"] = {{"friends", "fast"}};
    CHECK(access_value(c, "shaping", "b.test") == "fast");
    CHECK(access_value(c, "shaping", "a.test") == "none");
    CHECK(access_value(c, "shaping", "c.test") == "normal");
    CHECK(access_value(c, "shaping", "") == "normal");
    CHECK(access_value(c, "friends_only", "").empty());
    CHECK(access_value(c, "undefined_rule", "b.test").empty());
}
