// XEP-0185 dialback keys.
#include <doctest/doctest.h>

#include "proxy/xmpp/dialback.h"

using s2s::DialbackKeys;

TEST_CASE("dialback: the XEP-0185 example vector") {
    DialbackKeys keys("s3cr3tf0rd14lb4ck");
    CHECK(keys.key("xmpp.example.com", "example.org", "D60000229F") ==
          "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643");
    CHECK(keys.verify("xmpp.example.com", "example.org", "D60000229F",
                      "\n    37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643\n"));
}

TEST_CASE("dialback: a key is bound to the secret, both domains and the stream id") {
    DialbackKeys keys("s3cr3tf0rd14lb4ck"), other("another secret");
    std::string k = keys.key("b.test", "a.test", "id1");
    CHECK(k.size() == 64);
    CHECK(keys.verify("b.test", "a.test", "id1", k));
    CHECK_FALSE(other.verify("b.test", "a.test", "id1", k));
    CHECK_FALSE(keys.verify("a.test", "b.test", "id1", k));
    CHECK_FALSE(keys.verify("b.test", "c.test", "id1", k));
    CHECK_FALSE(keys.verify("b.test", "a.test", "id2", k));
    CHECK_FALSE(keys.verify("b.test", "a.test", "id1", k.substr(0, 63)));
    CHECK_FALSE(keys.verify("b.test", "a.test", "id1", ""));
    // Replicas sharing the secret accept each other's keys.
    DialbackKeys replica("s3cr3tf0rd14lb4ck");
    CHECK(replica.verify("b.test", "a.test", "id1", k));
}
