// What a local link needs around it in a unit test, over one TestLoop that plays local.server:
// the config (hosts a.test), dialback keys, policy, a router with a static resolver, the context
// they make, and a LocalLink wired to the router. Used by the tests of LocalReconnect and
// LocalComponent.
#pragma once

#include <memory>

#include "proxy/local/local_link.h"
#include "proxy/routing/router.h"
#include "tests/unit/support/loop_harness.h"

namespace s2s::test {

struct LocalWorld {
    TestLoop t;  // local.server
    Config config;
    std::unique_ptr<DialbackKeys> keys;
    std::unique_ptr<PolicyRules> policy;
    OutboundSettings outbound;
    LocalSettings settings;  // read when a stream is opened: set server and timeouts first
    std::unique_ptr<StaticResolver> resolver;
    std::unique_ptr<ProxyRouter> router;
    std::unique_ptr<ProxyContext> ctx;
    std::unique_ptr<LocalLink> link;

    LocalWorld();
    // Shuts every connection down and runs the loop until they have closed (again from the
    // destructor; call it first from a test's fixture whose peers' hooks use its own members).
    void shutdown();
    ~LocalWorld() { shutdown(); }
    LocalWorld(const LocalWorld&) = delete;
    LocalWorld& operator=(const LocalWorld&) = delete;
};

}  // namespace s2s::test
