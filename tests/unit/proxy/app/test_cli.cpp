// The command line of proxy/app/cli.
#include <doctest/doctest.h>

#include "proxy/app/cli.h"

using namespace s2s;

namespace {
CommandLine parse(std::vector<const char*> args, const char* env = nullptr) {
    args.insert(args.begin(), "s2s-proxy");
    return parse_command_line(static_cast<int>(args.size()), args.data(), env);
}
}  // namespace

TEST_CASE("cli: --config, modes and overrides in order") {
    CommandLine cl = parse({"--config", "a.toml", "--check-config", "--s2s.default_policy=deny",
                            "--listen.s2s.0.port=15269", "--general.hosts=a.test,b.test"});
    CHECK(cl.error.empty());
    CHECK(cl.command == Command::CheckConfig);
    CHECK(cl.config_path == "a.toml");
    REQUIRE(cl.overrides.size() == 3);
    CHECK(cl.overrides[0].key == "s2s.default_policy");
    CHECK(cl.overrides[0].value == "deny");
    CHECK(cl.overrides[1].key == "listen.s2s.0.port");
    CHECK(cl.overrides[2].value == "a.test,b.test");
}

TEST_CASE("cli: S2S_PROXY_CONFIG is the default and --config wins over it") {
    CHECK(parse({}, "env.toml").config_path == "env.toml");
    CHECK(parse({"--config=cli.toml"}, "env.toml").config_path == "cli.toml");
}

TEST_CASE("cli: errors") {
    CHECK(parse({}).error.find("no config file") == 0);
    CHECK(parse({"--config"}).error == "--config needs a file name");
    CHECK(parse({"-c", "x", "--bogus"}).error.find("unknown argument --bogus") == 0);
    CHECK(parse({"-c", "x", "--nodot=1"}).error.find("unknown argument --nodot=1") == 0);
    CHECK(parse({"--version"}).error.empty());
    CHECK(parse({"--help"}).command == Command::Help);
}

TEST_CASE("cli: usage lists every option of the table") {
    std::string u = usage();
    CHECK(u.find("s2s.outgoing.dns.nameservers") != std::string::npos);
    CHECK(u.find("listen.local.*.tls.verify_mode") != std::string::npos);
}
