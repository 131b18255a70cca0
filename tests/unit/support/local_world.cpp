#include "tests/unit/support/local_world.h"

#include <vector>

namespace s2s::test {

LocalWorld::LocalWorld() {
    config.hosts = {"a.test"};
    keys = std::make_unique<DialbackKeys>("secret");
    policy = std::make_unique<PolicyRules>(config, false);
    resolver = std::make_unique<StaticResolver>(t.loop(), config);
    router = std::make_unique<ProxyRouter>(outbound, *resolver);
    ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), *keys, *policy, *router, {}, 0});
    link = std::make_unique<LocalLink>(*ctx, settings, *router);
    router->attach(*ctx, *link);
}

void LocalWorld::shutdown() {
    link->shutdown(StreamError::SystemShutdown, "test over");
    for (Connection* c : std::vector<Connection*>(ctx->connections.begin(), ctx->connections.end()))
        c->shutdown(StreamError::SystemShutdown, "test over");
    t.shutdown([this] { return ctx->connections.empty(); });
}

}  // namespace s2s::test
