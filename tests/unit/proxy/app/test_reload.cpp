// SIGHUP reload planning: which changes apply, which wait for a restart, and what is reported.
#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "common/config/config_load.h"
#include "common/config/config_table.h"
#include "proxy/app/reload.h"

using namespace s2s;
using namespace s2s::config;

namespace {

const char* const kBase = R"(
[general]
  hosts = ["a.example"]

[s2s]
  shared = "first-secret-value"
  default_policy = "allow"

[local]
  server = "127.0.0.1:15269"

[[listen.s2s]]
  port = 5269
  shaper = "none"

[[listen.local]]
  port = 15270

[shaper.slow]
  max_rate = 1000
)";

LoadResult load_with(const std::vector<Override>& cli, const std::string& text = kBase) {
    LoadResult r = load("t.toml", text, cli);
    std::string errors;
    for (auto& e : r.errors) errors += e.str() + "\n";
    INFO(errors);
    REQUIRE(r.ok());
    return r;
}

bool has(const std::vector<std::string>& v, const std::string& needle) {
    return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

std::string all(const std::vector<std::string>& v) {
    std::string out;
    for (auto& s : v) out += s + "\n";
    return out;
}

}  // namespace

TEST_CASE("reload: the restart-only keys are the options the table does not mark Reloadable, in its order") {
    const auto& fixed = restart_only_keys();
    std::vector<std::string> expected;
    for (const OptionSpec& o : options())
        if (!(o.flags & Reloadable)) expected.push_back(o.key);
    CHECK(fixed == expected);
    for (const char* k : {"general.hosts", "s2s.shared", "local.mode", "admin.listen", "listen.s2s.*.port",
                          "listen.local.*.backlog", "s2s.outgoing.dns.nameservers"}) {
        INFO(k);
        CHECK(std::count(fixed.begin(), fixed.end(), k) == 1);
    }
    for (const char* k : {"s2s.default_policy", "listen.s2s.*.shaper", "s2s.outgoing.denied_networks"}) {
        INFO(k);
        CHECK(std::count(fixed.begin(), fixed.end(), k) == 0);
    }
}

TEST_CASE("reload: a changed reloadable option is applied and listed") {
    LoadResult running = load_with({});
    LoadResult next = load_with({{"s2s.default_policy", "\"deny\""}, {"listen.s2s.0.shaper", "\"slow\""}});
    ReloadPlan plan = plan_reload(running.config, running.settings, next);
    INFO(all(plan.need_restart));
    CHECK(plan.need_restart.empty());
    CHECK(plan.applied == std::vector<std::string>{"listen.s2s.0.shaper", "s2s.default_policy"});
    CHECK(plan.config.default_policy == Policy::Deny);
    CHECK(plan.config.listen_s2s[0].shaper == "slow");
    // The plan's settings are the new ones: a second identical reload changes nothing.
    ReloadPlan again = plan_reload(plan.config, plan.settings, next);
    CHECK(again.applied.empty());
    CHECK(again.need_restart.empty());
}

TEST_CASE("reload: nothing changed, nothing reported (a generated dialback secret is not a change)") {
    std::string text = kBase;
    text.erase(text.find("  shared = "), std::string("  shared = \"first-secret-value\"\n").size());
    LoadResult running = load_with({}, text);
    LoadResult next = load_with({}, text);
    REQUIRE(running.config.shared != next.config.shared);  // two loads, two random secrets
    ReloadPlan plan = plan_reload(running.config, running.settings, next);
    CHECK(plan.applied.empty());
    INFO(all(plan.need_restart));
    CHECK(plan.need_restart.empty());
    CHECK(plan.config.shared == running.config.shared);  // the running secret stays
}

TEST_CASE("reload: each restart-only option keeps its running value and is reported") {
    struct Case {
        std::string key, value;
        std::function<std::string(const Config&)> get;
    };
    auto str = [](auto v) { return std::to_string(v); };
    std::vector<Case> cases = {
        {"general.hosts", "[\"b.example\"]", [](const Config& c) { return c.hosts.at(0); }},
        {"s2s.shared", "\"second-secret-value\"", [](const Config& c) { return c.shared; }},
        {"s2s.outgoing.dns.timeout", "7", [&](const Config& c) { return str(c.outgoing.dns_timeout); }},
        {"s2s.outgoing.dns.retries", "5", [&](const Config& c) { return str(c.outgoing.dns_retries); }},
        {"s2s.outgoing.dane", "true", [&](const Config& c) { return str(c.outgoing.dane); }},
        {"s2s.outgoing.dns.nameservers", "[\"127.0.0.9\"]",
         [](const Config& c) { return std::to_string(c.outgoing.dns_nameservers.size()); }},
        {"local.server", "\"127.0.0.1:16000\"", [](const Config& c) { return c.local_server; }},
        {"local.password", "\"component-secret\"", [](const Config& c) { return c.local_password; }},
        {"local.component_name", "\"proxy.a.example\"", [](const Config& c) { return c.local_component_name; }},
        {"local.dns_responder", "\"127.0.0.1:15353\"", [](const Config& c) { return c.local_dns_responder; }},
        {"local.verify_server", "\"127.0.0.1:5269\"", [](const Config& c) { return c.local_verify_server; }},
        {"admin.enabled", "false", [&](const Config& c) { return str(c.admin_enabled); }},
        {"admin.listen", "\"127.0.0.1:9999\"", [](const Config& c) { return c.admin_listen; }},
        {"listen.s2s.0.port", "5280", [&](const Config& c) { return str(c.listen_s2s.at(0).port); }},
        {"listen.s2s.0.ip_address", "\"127.0.0.5\"", [](const Config& c) { return c.listen_s2s.at(0).ip_address; }},
        {"listen.s2s.0.reuse_port", "true", [&](const Config& c) { return str(c.listen_s2s.at(0).reuse_port); }},
        {"listen.s2s.0.backlog", "77", [&](const Config& c) { return str(c.listen_s2s.at(0).backlog); }},
        {"listen.local.0.port", "15280", [&](const Config& c) { return str(c.listen_local.at(0).port); }},
        {"listen.local.0.ip_address", "\"127.0.0.6\"", [](const Config& c) { return c.listen_local.at(0).ip_address; }},
        {"listen.local.0.reuse_port", "true", [&](const Config& c) { return str(c.listen_local.at(0).reuse_port); }},
        {"listen.local.0.backlog", "78", [&](const Config& c) { return str(c.listen_local.at(0).backlog); }},
    };
    LoadResult running = load_with({});
    for (const Case& k : cases) {
        INFO(k.key);
        LoadResult next = load_with({{k.key, k.value}});
        REQUIRE(k.get(next.config) != k.get(running.config));  // the override does change it
        ReloadPlan plan = plan_reload(running.config, running.settings, next);
        CHECK(k.get(plan.config) == k.get(running.config));
        CHECK(plan.applied.empty());
        INFO(all(plan.need_restart));
        REQUIRE(plan.need_restart.size() == 1);
        CHECK(plan.need_restart[0].find(k.key + " changed") == 0);
        CHECK(plan.need_restart[0].find("after a restart") != std::string::npos);
        // It is reported again at the next reload, until the process restarts, and still kept:
        // the plan's settings hold the running value.
        ReloadPlan again = plan_reload(plan.config, plan.settings, next);
        CHECK(again.need_restart.size() == 1);
        CHECK(k.get(again.config) == k.get(running.config));
    }
    {  // local.dns_upstream means something only beside local.dns_responder
        const Override responder{"local.dns_responder", "\"127.0.0.1:15353\""};
        LoadResult with_responder = load_with({responder});
        LoadResult next = load_with({responder, {"local.dns_upstream", "[\"10.96.0.10\"]"}});
        ReloadPlan plan = plan_reload(with_responder.config, with_responder.settings, next);
        CHECK(plan.config.local_dns_upstream.empty());
        INFO(all(plan.need_restart));
        REQUIRE(plan.need_restart.size() == 1);
        CHECK(plan.need_restart[0].find("local.dns_upstream changed") == 0);
    }
    // Every restart-only key is covered above or below (local.mode): a key the table adds without
    // the Reloadable flag fails here until it has a case, and that case checks that the reload
    // keeps its running value (which the reload derives from the flag, with no list of its own).
    for (const std::string& k : restart_only_keys()) {
        std::string concrete = k;
        for (size_t p; (p = concrete.find('*')) != std::string::npos;) concrete.replace(p, 1, "0");
        INFO(k);
        CHECK((concrete == "local.mode" || concrete == "local.dns_upstream" ||
               std::any_of(cases.begin(), cases.end(), [&](const Case& c) { return c.key == concrete; })));
    }
}

TEST_CASE("reload: the table's restart-only options are of the shapes the reload keeps") {
    for (const OptionSpec& o : options()) {
        if (o.flags & Reloadable) continue;
        INFO(o.key);
        // Kept by applying the running value again: the option must have an entry that applies one.
        CHECK(o.apply);
        // One the running config may leave unset is applied empty: a string, whose unset value in
        // Config is the empty string (an unset number would not be its Config default).
        if (!o.def && !(o.flags & (Required | Generated)))
            CHECK((o.kind == Kind::String || o.kind == Kind::Secret || o.kind == Kind::Domain ||
                   o.kind == Kind::HostPort || o.kind == Kind::IpAddress));
        // Inside list entries only a listener's: a reload keeps the running list of listeners, so
        // applying a running entry's value never adds an entry to the new config.
        if (o.key.find('*') != std::string::npos)
            CHECK((o.key.rfind("listen.s2s.*.", 0) == 0 || o.key.rfind("listen.local.*.", 0) == 0));
    }
}

TEST_CASE("reload: switching local.mode waits for a restart, with its component settings") {
    LoadResult running = load_with({});
    LoadResult next = load_with({{"local.mode", "\"component\""},
                                 {"local.component_name", "\"proxy.a.example\""},
                                 {"local.password", "\"component-secret\""},
                                 {"local.verify_server", "\"127.0.0.1:5269\""}});
    ReloadPlan plan = plan_reload(running.config, running.settings, next);
    CHECK(plan.config.local_mode == LocalMode::S2S);
    CHECK(plan.config.local_component_name.empty());
    CHECK(plan.config.local_password.empty());
    CHECK(plan.applied.empty());
    INFO(all(plan.need_restart));
    CHECK(has(plan.need_restart, "local.mode changed from \"s2s\" to \"component\"; it takes effect only after a restart"));
    CHECK(has(plan.need_restart, "local.component_name changed"));
    CHECK(has(plan.need_restart, "local.password changed; it takes effect only after a restart"));
    CHECK_FALSE(has(plan.need_restart, "component-secret"));
}

TEST_CASE("reload: the values of a restart-only change are shown, a secret's never") {
    LoadResult running = load_with({});
    ReloadPlan port = plan_reload(running.config, running.settings, load_with({{"listen.s2s.0.port", "5280"}}));
    REQUIRE(port.need_restart.size() == 1);
    CHECK(port.need_restart[0] == "listen.s2s.0.port changed from 5269 to 5280; it takes effect only after a restart");
    ReloadPlan secret =
        plan_reload(running.config, running.settings, load_with({{"s2s.shared", "\"second-secret-value\""}}));
    REQUIRE(secret.need_restart.size() == 1);
    CHECK(secret.need_restart[0] == "s2s.shared changed; it takes effect only after a restart");
    CHECK(secret.need_restart[0].find("secret-value") == std::string::npos);
}

TEST_CASE("reload: listeners cannot be added or removed; their reloadable keys still apply") {
    std::string two = std::string(kBase) + "\n[[listen.s2s]]\n  port = 5270\n  shaper = \"slow\"\n";
    LoadResult one_running = load_with({});
    LoadResult two_loaded = load_with({{"listen.s2s.0.shaper", "\"slow\""}}, two);

    ReloadPlan added = plan_reload(one_running.config, one_running.settings, two_loaded);
    INFO(all(added.need_restart));
    CHECK(added.need_restart == std::vector<std::string>{"listen.s2s.1: a new listener takes effect only after a restart"});
    CHECK(added.applied == std::vector<std::string>{"listen.s2s.0.shaper"});
    REQUIRE(added.config.listen_s2s.size() == 1);
    CHECK(added.config.listen_s2s[0].shaper == "slow");

    LoadResult two_running = load_with({}, two);
    ReloadPlan removed = plan_reload(two_running.config, two_running.settings, load_with({}));
    CHECK(removed.need_restart == std::vector<std::string>{"listen.s2s.1: removing a listener takes effect only after a restart"});
    REQUIRE(removed.config.listen_s2s.size() == 2);
    CHECK(removed.config.listen_s2s[1].port == 5270);
    CHECK(removed.config.listen_s2s[1].shaper == "slow");  // a listener that stays keeps its values
    CHECK(has(removed.need_restart, "removing"));
}

TEST_CASE("reload: s2s.outgoing.denied_networks is applied (links read it at each connect)") {
    LoadResult running = load_with({});
    REQUIRE_FALSE(running.config.outgoing.denied_networks.empty());
    LoadResult next = load_with({{"s2s.outgoing.denied_networks", "[\"10.0.0.0/8\"]"}});
    ReloadPlan plan = plan_reload(running.config, running.settings, next);
    INFO(all(plan.need_restart));
    CHECK(plan.need_restart.empty());
    CHECK(plan.applied == std::vector<std::string>{"s2s.outgoing.denied_networks"});
    REQUIRE(plan.config.outgoing.denied_networks.size() == 1);
    CHECK(plan.config.outgoing.denied_networks.networks()[0].to_string() == "10.0.0.0/8");
}

TEST_CASE("reload: a TLS key written out with its default value turns the subsection on, and is kept as given") {
    LoadResult running = load_with({});
    LoadResult next = load_with({{"s2s.use_starttls", "false"}, {"s2s.outgoing.tls.verify_mode", "peer"}});
    ReloadPlan plan = plan_reload(running.config, running.settings, next);
    CHECK(plan.need_restart.empty());
    CHECK(plan.config.use_starttls_set);
    CHECK(plan.config.outgoing.tls.present);
    for (auto& s : plan.settings)
        if (s.key == "s2s.use_starttls" || s.key == "s2s.outgoing.tls.verify_mode") CHECK_FALSE(s.defaulted);
    // ... and the log of the reload says so
    CHECK(std::count(plan.applied.begin(), plan.applied.end(), "s2s.outgoing.tls.verify_mode (now written out)") == 1);
    CHECK(std::count(plan.applied.begin(), plan.applied.end(), "s2s.use_starttls (now written out)") == 1);
}

TEST_CASE("reload: the notice counts the changes in a sentence that reads right for none, one and several") {
    ReloadPlan plan;
    CHECK(reload_summary(plan) == "certificates and keys read again; 0 changes applied; 0 changes wait for a restart");
    plan.applied = {"s2s.default_policy"};
    plan.need_restart = {"s2s.shared changed; it takes effect only after a restart"};
    CHECK(reload_summary(plan) ==
          "certificates and keys read again; 1 change applied: s2s.default_policy; 1 change waits for a restart");
    plan.applied.push_back("listen.s2s.0.shaper");
    plan.need_restart.push_back("listen.s2s.1: a new listener takes effect only after a restart");
    CHECK(reload_summary(plan) == "certificates and keys read again; 2 changes applied: s2s.default_policy, "
                                  "listen.s2s.0.shaper; 2 changes wait for a restart");
}
