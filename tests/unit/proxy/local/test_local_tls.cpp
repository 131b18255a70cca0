// TLS on the local link: the modes the config gives [[listen.local]] and local.tls, and what the
// loader refuses about them.
#include <doctest/doctest.h>

#include "common/config/config_load.h"
#include "common/config/config_print.h"
#include "proxy/local/local_tls.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;
using namespace s2s::config;

namespace {

const char* const kBase = R"(
[general]
  hosts = ["example.com"]

[local]
  server = "127.0.0.1:15269"
)";

std::string listener(const std::string& tls_lines) {
    return "\n[[listen.local]]\n  port = 15270\n" + tls_lines;
}

LoadResult load_text(const std::string& text, const std::vector<Override>& cli = {}) {
    return load("t.toml", text, cli);
}

std::string all_errors(const LoadResult& r) {
    std::string out;
    for (auto& e : r.errors) out += e.str() + "\n";
    return out;
}

const test::TestPki& pki() {
    const test::TestPki& p = test::TestPki::get();
    REQUIRE_MESSAGE(p.ok(), p.error());
    return p;
}

std::string cert_lines(const std::string& prefix) {
    return "  " + prefix + "certfile = \"" + pki().a.cert + "\"\n  " + prefix + "keyfile = \"" + pki().a.key + "\"\n";
}

}  // namespace

TEST_CASE("local tls: [[listen.local]] is plain without a tls subsection, whatever s2s.use_starttls says") {
    LoadResult r = load_text(std::string(kBase) + "\n[s2s]\n  use_starttls = \"required\"\n" +
                             cert_lines("outgoing.tls.") + listener(""));
    INFO(all_errors(r));
    REQUIRE(r.ok());
    CHECK_FALSE(local_tls_mode(r.config.listen_local[0]).uses_tls());
}

TEST_CASE("local tls: a tls subsection without mode means starttls; mode picks the others") {
    LoadResult r = load_text(std::string(kBase) + listener(cert_lines("tls.")));
    INFO(all_errors(r));
    REQUIRE(r.ok());
    CHECK(local_tls_mode(r.config.listen_local[0]).name == "starttls");
    for (const char* mode : {"tls", "starttls", "starttls_required"}) {
        LoadResult m = load_text(std::string(kBase) + listener(cert_lines("tls.") + "  tls.mode = \"" + mode + "\"\n"));
        INFO(mode, all_errors(m));
        REQUIRE(m.ok());
        CHECK(local_tls_mode(m.config.listen_local[0]).name == mode);
    }
}

TEST_CASE("local tls: defaults spelled out (as --print-config writes them) do not turn TLS on") {
    LoadResult r = load_text(std::string(kBase) + listener(""));
    REQUIRE(r.ok());
    std::string printed = print_config(r.settings);
    CHECK(printed.find("tls.verify_mode = \"peer\"") != std::string::npos);
    LoadResult again = load_text(printed);
    INFO(all_errors(again), printed);
    REQUIRE(again.ok());
    CHECK_FALSE(local_tls_mode(again.config.listen_local[0]).uses_tls());
    CHECK_FALSE(local_client_tls_mode(again.config).uses_tls());
    // ... and an ignored key is no subsection either
    LoadResult ignored = load_text(std::string(kBase) + listener("  tls.module = \"fast_tls\"\n"));
    INFO(all_errors(ignored));
    REQUIRE(ignored.ok());
    CHECK_FALSE(local_tls_mode(ignored.config.listen_local[0]).uses_tls());
}

TEST_CASE("local tls: a tls subsection without mode needs a certificate, said at its line") {
    LoadResult r = load_text(std::string(kBase) + listener("  tls.verify_mode = \"none\"\n"));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].line == 10);
    CHECK(r.errors[0].str().find("listen.local.0.tls.verify_mode: a tls subsection without mode means STARTTLS on "
                                 "listen.local.0, which needs a certificate: set listen.local.0.tls.certfile") !=
          std::string::npos);
}

TEST_CASE("local tls: local.tls.mode sets how the streams to the local server use TLS; unset is plain") {
    LoadResult plain = load_text(std::string(kBase) + listener(""));
    REQUIRE(plain.ok());
    CHECK_FALSE(local_client_tls_mode(plain.config).uses_tls());
    for (const char* mode : {"tls", "starttls", "starttls_required"}) {
        LoadResult r = load_text(std::string(kBase) + "  tls.mode = \"" + mode + "\"\n  tls.cacertfile = \"" + pki().ca +
                                 "\"\n  tls.server_name = \"xmpp.internal\"\n" + listener(""));
        INFO(mode, all_errors(r));
        REQUIRE(r.ok());
        CHECK(local_client_tls_mode(r.config).name == mode);
        CHECK(r.config.local_tls.cacertfile == pki().ca);
        CHECK(r.config.local_tls_server_name == "xmpp.internal");
    }
}

TEST_CASE("local tls: local.tls keys without local.tls.mode are refused, naming the key and the line") {
    LoadResult r = load_text(std::string(kBase) + "  tls.cacertfile = \"" + pki().ca + "\"\n" + listener(""));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].line == 7);
    CHECK(r.errors[0].str().find("local.tls.cacertfile: has no effect without local.tls.mode: set local.tls.mode = "
                                 "\"starttls\"") != std::string::npos);
    LoadResult cli = load_text(std::string(kBase) + listener(""), {{"local.tls.verify_mode", "none"}});
    REQUIRE(cli.errors.size() == 1);
    CHECK(cli.errors[0].str().find("--local.tls.verify_mode: has no effect without local.tls.mode") !=
          std::string::npos);
}

TEST_CASE("local tls: component mode takes direct TLS only (XEP-0114 has no STARTTLS)") {
    std::string component = std::string(kBase) +
                            "  mode = \"component\"\n  component_name = \"proxy.example.com\"\n  password = \"pw\"\n"
                            "  verify_dialback = false\n";
    for (const char* mode : {"starttls", "starttls_required"}) {
        LoadResult r = load_text(component + "  tls.mode = \"" + mode + "\"\n" + listener(""));
        INFO(mode);
        REQUIRE(r.errors.size() == 1);
        CHECK(r.errors[0].str().find("local.tls.mode: \"" + std::string(mode) +
                                     "\" cannot be used in component mode: XEP-0114 has no STARTTLS; write \"tls\"") !=
              std::string::npos);
    }
    LoadResult ok = load_text(component + "  tls.mode = \"tls\"\n" + listener(""));
    INFO(all_errors(ok));
    CHECK(ok.ok());
    CHECK(local_client_tls_mode(ok.config).direct);
}

TEST_CASE("local tls: the default name to check is local.server's host when it is a name") {
    CHECK(host_name_of("localhost:5269") == "localhost");
    CHECK(host_name_of("127.0.0.1:5269").empty());
    CHECK(host_name_of("[::1]:5269").empty());
    CHECK(host_name_of("").empty());
    LocalTlsSettings s;
    CHECK(local_tls::server_name(s, "a.example") == "a.example");
    s.server_name = "xmpp.internal";
    CHECK(local_tls::server_name(s, "a.example") == "xmpp.internal");
}
