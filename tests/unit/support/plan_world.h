// A DialPlan for b.test in a context of its own (config, keys, policy, a router that drops
// everything) on a TestLoop: for the tests of what dials remote servers (dial_plan, happy_eyeballs).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "proxy/features/dial_plan.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/null_router.h"

namespace s2s::test {

// A plan for b.test in a context whose config `tweak` adjusts.
struct PlanWorld {
    TestLoop t;
    Config config;
    DialbackKeys keys{"test secret"};
    std::unique_ptr<PolicyRules> policy;
    NullRouter router;
    std::unique_ptr<ProxyContext> ctx;
    const ListenerSet* own = nullptr;
    std::string remote = "b.test";
    std::unique_ptr<DialPlan> plan;
    LogContext log{1, "a.test", "b.test"};
    explicit PlanWorld(const std::function<void(Config&)>& tweak = nullptr) {
        config.hosts = {"a.test"};
        if (tweak) tweak(config);
        policy = std::make_unique<PolicyRules>(config, false);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), keys, *policy, router, {}, 0});
        plan = std::make_unique<DialPlan>(*ctx, own, remote);
    }
};

}  // namespace s2s::test
