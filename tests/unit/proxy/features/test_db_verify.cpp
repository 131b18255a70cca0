// The authoritative server's answer to db:verify: valid only for a key this secret issued.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "proxy/features/db_verify.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/null_router.h"

using namespace s2s;

namespace {

std::string answer(const ProxyContext& ctx, const std::string& verify) {
    auto doc = xml::parse_element(verify);
    REQUIRE(doc);
    return answer_db_verify(ctx, 1, doc->root());
}

}  // namespace

TEST_CASE("db_verify: a key we issued is valid; another key, stream id or domain is not") {
    test::TestLoop t;
    Config config;
    config.hosts = {"a.test"};
    DialbackKeys keys("test secret");
    PolicyRules policy(config, false);
    test::NullRouter router;
    ProxyContext ctx{config, t.loop(), keys, policy, router, {}, 0};
    const std::string key = keys.key("b.test", "a.test", "sid1");
    const char* ns = " xmlns:db='jabber:server:dialback'";
    CHECK(answer(ctx, std::string("<db:verify") + ns + " from='b.test' to='a.test' id='sid1'>" + key + "</db:verify>") ==
          "<db:verify from='a.test' to='b.test' id='sid1' type='valid'/>");
    CHECK(answer(ctx, std::string("<db:verify") + ns + " from='b.test' to='a.test' id='sid2'>" + key + "</db:verify>") ==
          "<db:verify from='a.test' to='b.test' id='sid2' type='invalid'/>");
    CHECK(answer(ctx, std::string("<db:verify") + ns + " from='b.test' to='x.test' id='sid1'>" + key + "</db:verify>") ==
          "<db:verify from='x.test' to='b.test' id='sid1' type='invalid'/>");
}
