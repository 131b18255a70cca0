// Loading configs: defaults, every kind of error with its line and hint, layouts, overrides.
#include <doctest/doctest.h>

#include <algorithm>

#include "common/config/config_load.h"
#include "common/config/config_print.h"
#include "common/config/config_table.h"
#include "tests/unit/support/test_support.h"

using namespace s2s;
using namespace s2s::config;

namespace {

const char* const kMinimal = R"(
[general]
  hosts = ["example.com"]

[local]
  server = "127.0.0.1:15269"

[[listen.s2s]]
  port = 5269

[[listen.local]]
  port = 15270
)";

LoadResult load_text(const std::string& text, const std::vector<Override>& cli = {}) {
    return load("t.toml", text, cli);
}

std::string all_errors(const LoadResult& r) {
    std::string out;
    for (auto& e : r.errors) out += e.str() + "\n";
    return out;
}

// The only error of a config; fails the test when there is not exactly one.
Diagnostic only_error(const LoadResult& r) {
    INFO(all_errors(r));
    REQUIRE(r.errors.size() == 1);
    return r.errors[0];
}

std::string with(const std::string& extra) { return std::string(kMinimal) + extra; }

}  // namespace

TEST_CASE("config: the minimal config loads with every seed default") {
    LoadResult r = load_text(kMinimal);
    INFO(all_errors(r));
    REQUIRE(r.ok());
    const Config& c = r.config;
    CHECK(c.hosts == std::vector<std::string>{"example.com"});
    CHECK(c.loglevel == LogSetting::Warning);
    CHECK(c.log_format == LogFormatSetting::Text);
    CHECK(c.default_policy == Policy::Allow);
    CHECK(c.host_policy.empty());
    CHECK(c.use_starttls == "false");
    CHECK(c.certfile.empty());
    CHECK(c.ciphers == "TLSv1.2:TLSv1.3");
    CHECK_FALSE(c.secure_auth);
    CHECK(c.outgoing.port == 5269);
    CHECK(c.outgoing.ip_versions == std::vector<int>{4, 6});
    CHECK(c.outgoing.connection_timeout.value == 10000);
    CHECK_FALSE(c.outgoing.connection_timeout.infinite);
    CHECK(c.outgoing.max_stanza_size.value == 524288);  // 512 KiB, as Prosody and ejabberd
    CHECK_FALSE(c.outgoing.max_stanza_size.infinite);
    CHECK(c.max_stanza_elements == 10000);
    CHECK(c.stanza_timeout.value == 30000);
    CHECK(c.stanza_memory_budget.value == 256LL * 1024 * 1024);
    CHECK(c.outgoing.shaper == "none");
    CHECK(c.outgoing.state_timeout.value == 5000);
    CHECK(c.outgoing.stream_timeout.value == 600000);
    CHECK(c.outgoing.max_retry_delay == 300);
    CHECK(c.outgoing.dns_timeout == 10);
    CHECK(c.outgoing.dns_retries == 2);
    CHECK(c.outgoing.dns_nameservers.empty());
    CHECK(c.outgoing.tls.mode.empty());
    CHECK(c.outgoing.tls.verify_mode == VerifyMode::Peer);
    CHECK(c.outgoing.tls.sni_enabled);
    CHECK(c.local_server == "127.0.0.1:15269");
    CHECK(c.local_mode == LocalMode::S2S);
    REQUIRE(c.listen_s2s.size() == 1);
    REQUIRE(c.listen_local.size() == 1);
    const Listener& s = c.listen_s2s[0];
    CHECK(s.port == 5269);
    CHECK(s.ip_address == "0.0.0.0");
    CHECK(s.access == "all");
    CHECK(s.shaper == "none");
    CHECK(s.max_connections.infinite);
    CHECK(s.state_timeout.value == 5000);
    CHECK_FALSE(s.reuse_port);
    CHECK(s.max_stanza_size.value == 524288);
    CHECK_FALSE(s.max_stanza_size.infinite);
    CHECK(s.tls.disconnect_on_failure);
    CHECK(c.listen_local[0].ip_address == "127.0.0.1");
}

TEST_CASE("config: the dialback secret defaults to 10 random bytes, hex, different each start") {
    LoadResult a = load_text(kMinimal), b = load_text(kMinimal);
    REQUIRE(a.ok());
    CHECK(a.config.shared.size() == 20);
    CHECK(a.config.shared.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(a.config.shared != b.config.shared);
}

TEST_CASE("config: a misspelt enum value names file, line, key and the suggestion") {
    LoadResult r = load_text(with("\n[s2s]\n  outgoing.tls.mode = \"startls\"\n"));
    CHECK(only_error(r).str() ==
          "t.toml:15: s2s.outgoing.tls.mode: \"startls\" is not one of tls, starttls, starttls_required "
          "(did you mean \"starttls\"?)");
}

TEST_CASE("config: an unknown key gets a did-you-mean") {
    LoadResult r = load_text(with("\n[s2s]\n  defualt_policy = \"deny\"\n"));
    Diagnostic d = only_error(r);
    CHECK(d.line == 15);
    CHECK(d.key == "s2s.defualt_policy");
    CHECK(d.message == "unknown key (did you mean s2s.default_policy?)");
}

TEST_CASE("config: an unknown key in the wrong table suggests where it belongs") {
    Diagnostic d = only_error(load_text(with("\n[s2s]\n  port = 5270\n")));
    CHECK(d.message == "unknown key (did you mean s2s.outgoing.port?)");
}

TEST_CASE("config: an unknown key far from any known one gets no guess") {
    Diagnostic d = only_error(load_text(with("\n[s2s]\n  completely_different = 1\n")));
    CHECK(d.message == "unknown key");
}

TEST_CASE("config: wrong type") {
    Diagnostic d = only_error(load_text(with("\n[s2s]\n  outgoing.port = \"5269\"\n")));
    CHECK(d.key == "s2s.outgoing.port");
    CHECK(d.message == "expected an integer, got a string");
}

TEST_CASE("config: out of range") {
    Diagnostic d = only_error(load_text(with("\n[s2s]\n  outgoing.port = 70_000\n")));
    CHECK(d.message == "70000 is out of range 1..65535");
}

TEST_CASE("config: a limit takes an integer or \"infinity\"") {
    Diagnostic d = only_error(load_text(with("\n[s2s]\n  outgoing.state_timeout = \"infinit\"\n")));
    CHECK(d.message == "expected an integer or \"infinity\", got a string \"infinit\"");
    LoadResult ok = load_text(with("\n[s2s]\n  outgoing.connection_timeout = \"infinity\"\n"));
    REQUIRE(ok.ok());
    CHECK(ok.config.outgoing.connection_timeout.infinite);
}

TEST_CASE("config: an enum written without quotes says so") {
    Diagnostic d = only_error(load_text(with("\n[s2s]\n  use_starttls = false\n")));
    CHECK(d.message.find("write it in quotes") != std::string::npos);
}

TEST_CASE("config: a missing required key names the table to add it to") {
    LoadResult r = load_text("[local]\n  server = \"127.0.0.1:1\"\n");
    Diagnostic d = only_error(r);
    CHECK(d.key == "general.hosts");
    CHECK(d.message == "required key is missing (add hosts = ... under [general])");
}

TEST_CASE("config: a listener without a port is reported at its [[listen.s2s]] line") {
    LoadResult r = load_text(with("\n[[listen.s2s]]\n  ip_address = \"127.0.0.1\"\n"));
    Diagnostic d = only_error(r);
    CHECK(d.key == "listen.s2s.1.port");
    CHECK(d.line == 14);
}

TEST_CASE("config: references to undefined shapers, access rules and acls") {
    LoadResult r = load_text(with(R"(
[s2s]
  outgoing.shaper = "fast"
[access]
  s2s_in = [{acl = "friends", value = "allow"}]
[[listen.s2s]]
  port = 5270
  access = "nobody"
)"));
    INFO(all_errors(r));
    REQUIRE(r.errors.size() == 3);
    CHECK(r.errors[0].message.find("no shaper \"fast\" is defined") == 0);
    CHECK(r.errors[1].message.find("no acl \"friends\" is defined") == 0);
    CHECK(r.errors[2].message.find("no access rule \"nobody\" is defined (known: all, s2s_in;") == 0);
}

TEST_CASE("config: a listener's access rule must answer allow or deny") {
    LoadResult r = load_text(with(R"(
[shaper.fast]
  max_rate = 50_000
[access]
  s2s_in = [{acl = "all", value = "fast"}]
[[listen.s2s]]
  port = 5270
  access = "s2s_in"
)"));
    Diagnostic d = only_error(r);
    CHECK(d.key == "access.s2s_in.0.value");
    CHECK(d.message == "\"fast\" is neither \"allow\" nor \"deny\", and access rule \"s2s_in\" is listen.s2s.1.access "
                       "(which admits or refuses domains)");
}

TEST_CASE("config: defined shapers, access rules and acls resolve") {
    LoadResult r = load_text(with(R"(
[s2s]
  outgoing.shaper = "fast"
[shaper.fast]
  max_rate = 50_000
[acl]
  friends = [{server = "friend.example"}, {match = "current_domain"}]
[access]
  s2s_in = [{acl = "friends", value = "allow"}, {acl = "all", value = "deny"}]
[[listen.s2s]]
  port = 5270
  access = "s2s_in"
  shaper = "fast"
)"));
    INFO(all_errors(r));
    REQUIRE(r.ok());
    CHECK(r.config.shapers.at("fast").max_rate == 50000);
    REQUIRE(r.config.access.at("s2s_in").size() == 2);
    CHECK(r.config.access.at("s2s_in")[1].value == "deny");
    REQUIRE(r.config.acl.at("friends").size() == 2);
    CHECK(r.config.acl.at("friends")[0].server == "friend.example");
    CHECK(r.config.acl.at("friends")[1].match == "current_domain");
    CHECK(r.config.listen_s2s[1].access == "s2s_in");
}

TEST_CASE("config: a certfile that does not exist or does not parse") {
    test::TempDir dir;
    std::string junk = dir.write("junk.pem", "not a certificate\n");
    LoadResult missing = load_text(with("\n[s2s]\n  certfile = \"/nonexistent/cert.pem\"\n"));
    CHECK(only_error(missing).message == "cannot read \"/nonexistent/cert.pem\": No such file or directory");
    LoadResult bad = load_text(with("\n[s2s]\n  certfile = \"" + junk + "\"\n"));
    CHECK(only_error(bad).message.find("holds no certificate that parses") != std::string::npos);
}

TEST_CASE("config: certificates and keys that parse are accepted, a wrong key password is not") {
    test::TempDir dir;
    std::string key, enc_key;
    std::string cert = test::make_certificate(dir, "a.example", &key);
    std::string cert2 = test::make_certificate(dir, "b.example", &enc_key, "s3cret");
    REQUIRE(!cert.empty());
    REQUIRE(!cert2.empty());
    std::string tls = "\n[[listen.s2s]]\n  port = 5270\n  tls.mode = \"tls\"\n  tls.certfile = \"" + cert +
                      "\"\n  tls.keyfile = \"" + key + "\"\n";
    LoadResult ok = load_text(with(tls));
    INFO(all_errors(ok));
    CHECK(ok.ok());
    std::string enc = "\n[s2s.outgoing.tls]\n  certfile = \"" + cert2 + "\"\n  keyfile = \"" + enc_key + "\"\n";
    LoadResult with_pw = load_text(with(enc + "  password = \"s3cret\"\n"));
    INFO(all_errors(with_pw));
    CHECK(with_pw.ok());
    LoadResult no_pw = load_text(with(enc));
    CHECK(only_error(no_pw).message.find("if it is encrypted, set s2s.outgoing.tls.password") != std::string::npos);
}

TEST_CASE("config: TLS on a listener needs a certificate") {
    LoadResult r = load_text(with("\n[s2s]\n  use_starttls = \"required\"\n"));
    CHECK(only_error(r).message.find("TLS on listen.s2s.0 needs a certificate") == 0);
}

// [[listen.s2s]] last, so that keys appended to the text belong to it (line 10 on).
const char* const kS2sLast = R"(
[general]
  hosts = ["example.com"]
[local]
  server = "127.0.0.1:15269"
[[listen.local]]
  port = 15270
[[listen.s2s]]
  port = 5269
)";

TEST_CASE("config: PROXY protocol and the per-host cap on listen.s2s: defaults and values") {
    LoadResult d = load_text(kS2sLast);
    REQUIRE(d.ok());
    const Listener& l = d.config.listen_s2s[0];
    CHECK_FALSE(l.proxy_protocol);
    CHECK(l.proxy_trusted.empty());
    CHECK(l.max_connections_per_host.infinite);
    CHECK(l.max_connection_rate_per_host.value == 20);
    CHECK_FALSE(l.max_connection_rate_per_host.infinite);
    CHECK(l.max_tls_handshakes.value == 256);
    CHECK(l.proxy_protocol_timeout.value == 3000);

    LoadResult r = load_text(std::string(kS2sLast) +
                             "  proxy_protocol = true\n"
                             "  proxy_trusted = [\"10.0.0.0/8\", \"::1\", \"192.0.2.10\"]\n"
                             "  max_connections_per_host = 4\n");
    INFO(all_errors(r));
    REQUIRE(r.ok());
    const Listener& p = r.config.listen_s2s[0];
    CHECK(p.proxy_protocol);
    REQUIRE(p.proxy_trusted.size() == 3);
    CHECK(p.proxy_trusted.networks()[0].to_string() == "10.0.0.0/8");
    CHECK(p.proxy_trusted.networks()[1].to_string() == "::1/128");  // a bare address is one host
    CHECK(p.proxy_trusted.networks()[2].to_string() == "192.0.2.10/32");
    CHECK(p.max_connections_per_host.value == 4);
    CHECK_FALSE(p.max_connections_per_host.infinite);
    std::string out = print_config(r.settings);
    CHECK(out.find("proxy_trusted = [\"10.0.0.0/8\", \"::1\", \"192.0.2.10\"]") != std::string::npos);
    CHECK(out.find("max_connections_per_host = 4") != std::string::npos);

    // On the command line, a comma-separated list.
    LoadResult cli = load_text(kS2sLast, {{"listen.s2s.0.proxy_protocol", "true"},
                                          {"listen.s2s.0.proxy_trusted", "10.0.0.0/8,fd00::/8"}});
    INFO(all_errors(cli));
    REQUIRE(cli.ok());
    CHECK(cli.config.listen_s2s[0].proxy_trusted.size() == 2);

    // Reloadable: a SIGHUP may change them for new connections.
    for (const char* key : {"listen.s2s.*.proxy_protocol", "listen.s2s.*.proxy_trusted",
                            "listen.s2s.*.max_connections_per_host", "listen.s2s.*.max_connection_rate_per_host",
                            "listen.s2s.*.max_tls_handshakes", "listen.s2s.*.proxy_protocol_timeout"}) {
        CAPTURE(key);
        REQUIRE(find_option(key) != nullptr);
        CHECK((find_option(key)->flags & Reloadable) != 0);
    }
}

TEST_CASE("config: a bad proxy_trusted entry is named with the fix") {
    Diagnostic host_bits = only_error(load_text(std::string(kS2sLast) + "  proxy_trusted = [\"10.1.2.3/8\"]\n"));
    CHECK(host_bits.line == 10);
    CHECK(host_bits.key == "listen.s2s.0.proxy_trusted");
    CHECK(host_bits.message.find("\"10.1.2.3/8\": host bits are set") == 0);
    CHECK(host_bits.message.find("did you mean 10.0.0.0/8?") != std::string::npos);
    CHECK(host_bits.message.find("write a network as \"10.0.0.0/8\" or \"fd00::/8\", or one host as") !=
          std::string::npos);
    Diagnostic name = only_error(load_text(std::string(kS2sLast) + "  proxy_trusted = [\"10.0.0.0/8\", \"lb.example\"]\n"));
    CHECK(name.message.find("\"lb.example\": \"lb.example\" is not an IPv4 or IPv6 address") == 0);
    Diagnostic twice = only_error(load_text(std::string(kS2sLast) + "  proxy_trusted = [\"127.0.0.1\", \"127.0.0.1/32\"]\n"));
    CHECK(twice.message == "\"127.0.0.1/32\" is listed twice (as 127.0.0.1/32)");
    Diagnostic type = only_error(load_text(std::string(kS2sLast) + "  proxy_trusted = \"10.0.0.0/8\"\n"));
    CHECK(type.message == "expected an array of strings, got a string");
    Diagnostic zero = only_error(load_text(std::string(kS2sLast) + "  max_connections_per_host = 0\n"));
    CHECK(zero.message.find("0 is out of range 1..") == 0);
}

TEST_CASE("config: proxy_protocol without proxy_trusted is an error saying what to list") {
    Diagnostic d = only_error(load_text(std::string(kS2sLast) + "  proxy_protocol = true\n"));
    CHECK(d.line == 10);
    CHECK(d.key == "listen.s2s.0.proxy_protocol");
    CHECK(d.message == "true needs listen.s2s.0.proxy_trusted: list the networks of the load balancers that send "
                       "the PROXY header (e.g. proxy_trusted = [\"10.0.0.0/8\"])");
    Diagnostic cli = only_error(load_text(kS2sLast, {{"listen.s2s.0.proxy_protocol", "true"}}));
    CHECK(cli.str().find("command line: --listen.s2s.0.proxy_protocol: true needs") == 0);
}

TEST_CASE("config: the PROXY and per-host keys are refused on listen.local, saying where they belong") {
    for (const char* key : {"proxy_protocol = true", "proxy_trusted = [\"127.0.0.1\"]", "max_connections_per_host = 2",
                            "max_connection_rate_per_host = 5", "proxy_protocol_timeout = 100"}) {
        CAPTURE(key);
        Diagnostic d = only_error(load_text(with(std::string("  ") + key + "\n")));
        CHECK(d.key.find("listen.local.0.") == 0);
        CHECK(d.message.find(" applies to [[listen.s2s]] only: the local server connects to [[listen.local]] "
                             "directly on loopback; remove it here") != std::string::npos);
    }
}

TEST_CASE("config: the same option in the 6.x and the newer layout is an error naming both") {
    LoadResult r = load_text(with("\n[s2s]\n  max_retry_delay = 30\n  outgoing.max_retry_delay = 60\n"));
    Diagnostic d = only_error(r);
    CHECK(d.line == 15);
    CHECK(d.message ==
          "set twice: s2s.max_retry_delay (6.x layout) and s2s.outgoing.max_retry_delay (line 16) are the same "
          "option; keep only s2s.outgoing.max_retry_delay");
}

TEST_CASE("config: the 6.x layout maps onto the outgoing options") {
    LoadResult r = load_text(with(R"(
[s2s]
  max_retry_delay = 30
  dns.timeout = 3
  dns.retries = 5
  dns.nameservers = ["127.0.0.53:25353"]
  address = [
    {host = "my.xmpp.org", ip_address = "127.0.0.2", port = 5271},
    {host = "your.xmpp.org", ip_address = "::1"}
  ]
)"));
    INFO(all_errors(r));
    REQUIRE(r.ok());
    const Outgoing& o = r.config.outgoing;
    CHECK(o.max_retry_delay == 30);
    CHECK(o.dns_timeout == 3);
    CHECK(o.dns_retries == 5);
    CHECK(o.dns_nameservers == std::vector<std::string>{"127.0.0.53:25353"});
    REQUIRE(o.address.size() == 2);
    CHECK(o.address[0].host == "my.xmpp.org");
    CHECK(*o.address[0].port == 5271);
    CHECK(o.address[1].ip_address == "::1");
    CHECK_FALSE(o.address[1].port.has_value());
}

TEST_CASE("config: an address override that leads to one of our own listeners is an error naming it") {
    // kMinimal: listen.s2s on 0.0.0.0:5269 (any IPv4 address of this host), listen.local on
    // 127.0.0.1:15270, admin on 127.0.0.1:9269.
    struct Case {
        const char* entry;
        const char* listener;
    };
    for (const Case& c : {Case{"ip_address = \"127.0.0.1\", port = 15270", "listen.local.0"},
                          Case{"ip_address = \"127.0.0.5\"", "listen.s2s.0"},  // outgoing.port 5269
                          Case{"ip_address = \"0.0.0.0\", port = 5269", "listen.s2s.0"},
                          Case{"ip_address = \"::ffff:127.0.0.1\", port = 15270", "listen.local.0"},
                          Case{"ip_address = \"127.0.0.1\", port = 9269", "admin.listen"}}) {
        CAPTURE(c.entry);
        Diagnostic d = only_error(load_text(with(std::string("\n[s2s]\n  outgoing.address = [{host = \"x.example\", ") +
                                                 c.entry + "}]\n")));
        CHECK(d.key == "s2s.outgoing.address.0.ip_address");
        CHECK(d.message.find("is where s2s-proxy itself listens (" + std::string(c.listener) +
                             "): a link there would come back into s2s-proxy") != std::string::npos);
    }
    // Another port, another loopback address of a listener bound to one address, IPv6 where only
    // IPv4 is bound, or the admin endpoint switched off: fine.
    for (const char* entry : {"ip_address = \"127.0.0.1\", port = 15271", "ip_address = \"127.0.0.2\", port = 15270",
                              "ip_address = \"::1\", port = 5269"}) {
        CAPTURE(entry);
        LoadResult r = load_text(with(std::string("\n[s2s]\n  outgoing.address = [{host = \"x.example\", ") + entry + "}]\n"));
        INFO(all_errors(r));
        CHECK(r.ok());
    }
    LoadResult off = load_text(with("\n[admin]\n  enabled = false\n\n[s2s]\n  outgoing.address = [{host = \"x.example\", "
                                    "ip_address = \"127.0.0.1\", port = 9269}]\n"));
    INFO(all_errors(off));
    CHECK(off.ok());
}

TEST_CASE("config: s2s.outgoing.denied_networks defaults to this host, link-local and multicast; [] allows all") {
    LoadResult r = load_text(kMinimal);
    REQUIRE(r.ok());
    std::vector<std::string> nets;
    for (auto& n : r.config.outgoing.denied_networks.networks()) nets.push_back(n.to_string());
    CHECK(nets == std::vector<std::string>{"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4",
                                           "255.255.255.255/32", "::/128", "::1/128", "fe80::/10", "ff00::/8"});
    LoadResult none = load_text(with("\n[s2s]\n  outgoing.denied_networks = []\n"));
    INFO(all_errors(none));
    REQUIRE(none.ok());
    CHECK(none.config.outgoing.denied_networks.empty());
    LoadResult priv = load_text(with("\n[s2s]\n  outgoing.denied_networks = [\"10.0.0.0/8\", \"fc00::/7\"]\n"));
    REQUIRE(priv.ok());
    CHECK(priv.config.outgoing.denied_networks.size() == 2);
    Diagnostic d = only_error(load_text(with("\n[s2s]\n  outgoing.denied_networks = [\"10.1.0.0/8\"]\n")));
    CHECK(d.key == "s2s.outgoing.denied_networks");
    CHECK(d.message.find("did you mean 10.0.0.0/8?") != std::string::npos);
}

TEST_CASE("config: inline-table entries report their own line") {
    LoadResult r = load_text(with(R"(
[s2s]
  host_policy = [
    {host = "good.xmpp.org", policy = "allow"},
    {host = "bad.xmpp.org", policy = "dney"}
  ]
)"));
    Diagnostic d = only_error(r);
    CHECK(d.key == "s2s.host_policy.1.policy");
    CHECK(d.line == 17);
}

TEST_CASE("config: every error of a file is reported, in line order") {
    LoadResult r = load_text(R"(
[general]
  hosts = ["bad domain"]
  loglevel = "loud"
[local]
  server = "nowhere"
[s2s]
  outgoing.ip_versions = [4, 5]
  host_policy = [{host = "a.example", policy = "allow"}, {host = "a.example", policy = "deny"}]
)");
    INFO(all_errors(r));
    REQUIRE(r.errors.size() == 5);
    CHECK(r.errors[0].key == "general.hosts");
    CHECK(r.errors[1].key == "general.loglevel");
    CHECK(r.errors[2].key == "local.server");
    CHECK(r.errors[3].key == "s2s.outgoing.ip_versions");
    CHECK(r.errors[4].key == "s2s.host_policy.1.host");
    for (size_t i = 1; i < r.errors.size(); ++i) CHECK(r.errors[i - 1].line <= r.errors[i].line);
}

TEST_CASE("config: values with their own syntax") {
    CHECK(only_error(load_text(with("\n[s2s]\n  outgoing.ip_versions = [6, 6]\n"))).message == "6 is listed twice");
    CHECK(only_error(load_text(with("\n[s2s]\n  outgoing.ip_versions = []\n"))).message ==
          "must list at least one value");
    CHECK(only_error(load_text(with("\n[s2s]\n  outgoing.dns.nameservers = [\"dns.example\"]\n")))
              .message.find("is not \"ip\" or \"ip:port\"") != std::string::npos);
    CHECK(only_error(load_text(with("\n[s2s]\n  outgoing.address = [{host = \"x.example\", ip_address = \"1.2.3\"}]\n")))
              .message == "\"1.2.3\" is not an IPv4 or IPv6 address");
    CHECK(only_error(load_text(with("\n[s2s]\n  secure_domains = [\"a..b\"]\n"))).message.find("not a valid domain") !=
          std::string::npos);
    CHECK(only_error(load_text(with("\n[s2s]\n  outgoing = 5\n"))).message.find("expected a table") == 0);
    CHECK(only_error(load_text(with("\n[[listen.local]]\n  port = 15270\n"))).message.find("is already used by") !=
          std::string::npos);
}

TEST_CASE("config: domains are kept in the canonical form the wire is compared in") {
    // hosts, host_policy, secure_domains, outgoing.address: UTS 46 to A-labels, lowercase, no
    // trailing dot, so a configured name compares equal to any spelling a peer sends. (The names
    // are written as raw UTF-8: cpptoml 0.1.1 mis-encodes \u escapes past U+07FF.)
    LoadResult r = load_text(R"(
[general]
  hosts = ["ａ.test", "BÜCHER.example."]
[local]
  server = "127.0.0.1:15269"
[[listen.s2s]]
  port = 5269
[[listen.local]]
  port = 15270
[s2s]
  host_policy = [{host = "①.example", policy = "deny"}]
  secure_domains = ["пример.рф"]
  outgoing.address = [{host = "XN--TDA.test", ip_address = "127.0.0.2", port = 5271}]
)");
    INFO(all_errors(r));
    REQUIRE(r.ok());
    CHECK(r.config.hosts == std::vector<std::string>{"a.test", "xn--bcher-kva.example"});
    REQUIRE(r.config.host_policy.size() == 1);
    CHECK(r.config.host_policy[0].host == "1.example");
    CHECK(r.config.secure_domains == std::vector<std::string>{"xn--e1afmkfd.xn--p1ai"});
    REQUIRE(r.config.outgoing.address.size() == 1);
    CHECK(r.config.outgoing.address[0].host == "xn--tda.test");
}

TEST_CASE("config: a domain that fails IDNA is an error naming the key and line; spellings of one name are duplicates") {
    Diagnostic d = only_error(load_text(with("\n[s2s]\n  secure_domains = [\"xn--zz.example\"]\n")));
    CHECK(d.key == "s2s.secure_domains");
    CHECK(d.line == 15);
    CHECK(d.message == "\"xn--zz.example\" is not a valid domain name (domain_idna)");
    d = only_error(load_text(with("\n[s2s]\n  insecure_domains = [\"b\xe2\x80\xae" "c.example\"]\n")));
    CHECK(d.key == "s2s.insecure_domains");
    CHECK(d.message.find("(domain_idna)") != std::string::npos);
    d = only_error(load_text(with("\n[s2s]\n  secure_domains = [\"a.example\", \"\xef\xbd\x81" ".EXAMPLE.\"]\n")));
    CHECK(d.message == "\"a.example\" is listed twice");
    d = only_error(load_text(with("\n[s2s]\n  host_policy = [{host = \"a.example\", policy = \"allow\"},"
                                 " {host = \"\xef\xbc\xa1" ".example\", policy = \"deny\"}]\n")));
    CHECK(d.key == "s2s.host_policy.1.host");
    CHECK(d.message.find("is already listed at s2s.host_policy.0") != std::string::npos);
}

TEST_CASE("config: a TOML syntax error gives its line") {
    Diagnostic d = only_error(load_text("[general]\nhosts = [\"a.example\"\n"));
    CHECK(d.line > 0);
    CHECK(d.message.find("TOML syntax error") == 0);
}

TEST_CASE("config: a TOML syntax error names the key on its line, or the key and table before it") {
    Diagnostic on = only_error(load_text("[general]\n  hosts = [\"a.test\"]\n[s2s]\n  default_policy = deny\n"));
    CHECK(on.line == 4);
    CHECK(on.key == "s2s.default_policy");
    Diagnostic after = only_error(load_text("[general]\n  hosts = [\"a.test\"]\n[[listen.s2s]]\n  port = 5269\n\n  a b\n"));
    CHECK(after.line == 6);
    CHECK(after.key.empty());
    CHECK(after.message.find("TOML syntax error (after listen.s2s.0.port on line 4, in listen.s2s.0): ") == 0);
    // right after a table header: that table, not its parent
    Diagnostic header = only_error(load_text("[general]\n  hosts = [\"a.test\"]\n[s2s.outgoing]\n  a b\n"));
    CHECK(header.line == 4);
    CHECK(header.message.find("TOML syntax error (in s2s.outgoing, opened on line 3): ") == 0);
}

TEST_CASE("config: tls.module is accepted and reported as ignored") {
    LoadResult r = load_text(with("\n[[listen.local]]\n  port = 15271\n  tls.module = \"fast_tls\"\n"));
    INFO(all_errors(r));
    REQUIRE(r.ok());
    bool reported = false;
    for (auto& w : r.warnings) reported |= w.key == "listen.local.1.tls.module";
    CHECK(reported);
}

TEST_CASE("config: DANE warns unless its nameservers are on loopback") {
    auto warned = [](const LoadResult& r, const std::string& key, const std::string& part) {
        for (auto& w : r.warnings)
            if (w.key == key && w.message.find(part) != std::string::npos) return true;
        return false;
    };
    LoadResult system = load_text(with("\n[s2s]\n  outgoing.dane = true\n"));
    INFO(all_errors(system));
    REQUIRE(system.ok());
    CHECK(system.config.outgoing.dane);
    CHECK(warned(system, "s2s.outgoing.dane", "the system's nameservers"));
    LoadResult remote = load_text(with("\n[s2s]\n  outgoing.dane = true\n  outgoing.dns.nameservers = [\"10.0.0.1\", "
                                       "\"127.0.0.53:5353\"]\n"));
    REQUIRE(remote.ok());
    CHECK(warned(remote, "s2s.outgoing.dns.nameservers", "\"10.0.0.1\", which is not on loopback"));
    CHECK_FALSE(warned(remote, "s2s.outgoing.dns.nameservers", "127.0.0.53"));
    LoadResult local = load_text(with("\n[s2s]\n  outgoing.dane = true\n  outgoing.dns.nameservers = [\"[::1]:53\"]\n"));
    REQUIRE(local.ok());
    CHECK_FALSE(warned(local, "s2s.outgoing.dns.nameservers", ""));
    CHECK_FALSE(warned(local, "s2s.outgoing.dane", ""));
    CHECK(load_text(kMinimal).config.outgoing.dane == false);
}

TEST_CASE("config: command-line overrides win over the file and go through the same checks") {
    LoadResult r = load_text(with("\n[s2s]\n  default_policy = \"allow\"\n"),
                             {{"s2s.default_policy", "deny"},
                              {"s2s.outgoing.port", "5270"},
                              {"listen.s2s.0.port", "15269"},
                              {"s2s.max_retry_delay", "7"},
                              {"general.hosts", "a.example,b.example"}});
    INFO(all_errors(r));
    REQUIRE(r.ok());
    CHECK(r.config.default_policy == Policy::Deny);
    CHECK(r.config.outgoing.port == 5270);
    CHECK(r.config.listen_s2s[0].port == 15269);
    CHECK(r.config.outgoing.max_retry_delay == 7);
    CHECK(r.config.hosts == std::vector<std::string>{"a.example", "b.example"});

    Diagnostic d = only_error(load_text(kMinimal, {{"s2s.outgoing.port", "99999"}}));
    CHECK(d.str() == "command line: --s2s.outgoing.port: 99999 is out of range 1..65535");
}

TEST_CASE("config: the command line can add a list entry but not leave a gap") {
    LoadResult added = load_text(kMinimal, {{"listen.s2s.1.port", "5270"}});
    INFO(all_errors(added));
    REQUIRE(added.ok());
    CHECK(added.config.listen_s2s.size() == 2);
    LoadResult gap = load_text(kMinimal, {{"listen.s2s.3.port", "5270"}});
    CHECK(only_error(gap).message.find("without gaps") != std::string::npos);
}

TEST_CASE("config: print-config shows defaults and overrides, masks secrets, and loads back the same") {
    LoadResult r = load_text(with("\n[s2s]\n  shared = \"topsecret\"\n  host_policy = [{host = \"bad.example\", "
                                  "policy = \"deny\"}]\n"),
                             {{"s2s.outgoing.port", "5270"}});
    REQUIRE(r.ok());
    std::string out = print_config(r.settings);
    CHECK(out.find("topsecret") == std::string::npos);
    CHECK(out.find("shared = \"********\"") != std::string::npos);
    CHECK(out.find("outgoing.port = 5270") != std::string::npos);
    CHECK(out.find("outgoing.stream_timeout = 600000") != std::string::npos);
    CHECK(out.find("# outgoing.tls.certfile = (not set)") != std::string::npos);
    CHECK(out.find("[[listen.local]]") != std::string::npos);

    LoadResult again = load_text(out);
    INFO(out);
    INFO(all_errors(again));
    REQUIRE(again.ok());
    REQUIRE(again.settings.size() == r.settings.size());
    for (size_t i = 0; i < r.settings.size(); ++i) {
        CHECK(again.settings[i].key == r.settings[i].key);
        if (!r.settings[i].secret) CHECK(again.settings[i].toml == r.settings[i].toml);
    }
}

TEST_CASE("config: a string option on the command line keeps text that would read as another TOML type") {
    LoadResult r = load_text(kMinimal, {{"s2s.shared", "12345"}, {"local.password", "1e5"}});
    INFO(all_errors(r));
    REQUIRE(r.ok());
    CHECK(r.config.shared == "12345");
    CHECK(r.config.local_password == "1e5");
    LoadResult quoted = load_text(kMinimal, {{"s2s.shared", "\"quoted secret\""}});
    REQUIRE(quoted.ok());
    CHECK(quoted.config.shared == "quoted secret");
    // A number for a number option is still a number, and checked as one.
    CHECK(only_error(load_text(kMinimal, {{"s2s.outgoing.port", "abc"}})).message == "expected an integer, got a string");
}

TEST_CASE("config: component mode needs local.component_name and local.password") {
    const std::string text = R"(
[general]
  hosts = ["example.com"]

[local]
  server = "127.0.0.1:15347"
  mode = "component"
  component_name = "S2S-Proxy.example.com"
  password = "component-secret"
  verify_server = "127.0.0.1:5269"

[[listen.s2s]]
  port = 5269

[[listen.local]]
  port = 15270
)";
    LoadResult ok = load_text(text);
    INFO(all_errors(ok));
    REQUIRE(ok.ok());
    CHECK(ok.config.local_mode == LocalMode::Component);
    CHECK(ok.config.local_component_name == "s2s-proxy.example.com");
    CHECK(ok.config.local_password == "component-secret");
    std::string printed = print_config(ok.settings);
    CHECK(printed.find("component-secret") == std::string::npos);
    CHECK(printed.find("component_name = \"S2S-Proxy.example.com\"") != std::string::npos);

    auto without = [&](const std::string& line) {
        std::string t = text;
        t.erase(t.find(line), line.size() + 1);
        return t;
    };
    Diagnostic no_name = only_error(load_text(without("  component_name = \"S2S-Proxy.example.com\"")));
    CHECK(no_name.key == "local.mode");
    CHECK(no_name.line == 7);
    CHECK(no_name.message.find("\"component\" needs local.component_name") == 0);
    Diagnostic no_password = only_error(load_text(without("  password = \"component-secret\"")));
    CHECK(no_password.line == 7);
    CHECK(no_password.message.find("\"component\" needs local.password") == 0);
    LoadResult neither = load_text(kMinimal, {{"local.mode", "component"}});
    CHECK(neither.errors.size() == 3);  // name, password, verify_server

    // A component port cannot answer db:verify: the local server's s2s port is needed to check
    // its keys, unless the check is turned off.
    Diagnostic no_verify = only_error(load_text(without("  verify_server = \"127.0.0.1:5269\"")));
    CHECK(no_verify.key == "local.mode");
    CHECK(no_verify.message.find("\"component\" needs local.verify_server") == 0);
    CHECK(no_verify.message.find("local.verify_dialback = false") != std::string::npos);
    LoadResult off = load_text(without("  verify_server = \"127.0.0.1:5269\""), {{"local.verify_dialback", "false"}});
    INFO(all_errors(off));
    CHECK(off.ok());
    CHECK_FALSE(off.config.local_verify_dialback);
    CHECK(ok.config.local_verify_server == "127.0.0.1:5269");
    CHECK(ok.config.local_verify_dialback);

    // From the command line too, and the name is a domain of its own.
    Diagnostic cli = only_error(load_text(kMinimal, {{"local.mode", "component"}, {"local.password", "pw"},
                                                     {"local.verify_dialback", "false"}}));
    CHECK(cli.str() == "command line: --local.mode: \"component\" needs local.component_name: the domain s2s-proxy "
                       "connects as, as named in the local server's component listener (e.g. "
                       "\"s2s-proxy.example.com\")");
    Diagnostic own = only_error(load_text(text, {{"local.component_name", "example.com"}}));
    CHECK(own.key == "--local.component_name");
    CHECK(own.message.find("is one of general.hosts") != std::string::npos);
    CHECK(only_error(load_text(text, {{"local.component_name", "not a domain"}})).key == "--local.component_name");

    // In s2s mode (the default) neither key is needed.
    LoadResult s2s = load_text(kMinimal);
    REQUIRE(s2s.ok());
    CHECK(s2s.config.local_mode == LocalMode::S2S);
    CHECK(s2s.config.local_component_name.empty());
}

TEST_CASE("config: locate names where a key stands, for errors found after loading") {
    LoadResult r = load_text(with("\n[s2s]\n  dns.timeout = 5\n  ciphers = \"HIGH\"\n"), {{"s2s.default_policy", "\"deny\""}});
    INFO(all_errors(r));
    REQUIRE(r.ok());
    const std::string text = with("\n[s2s]\n  dns.timeout = 5\n  ciphers = \"HIGH\"\n");
    int line = 0, n = 0;
    for (size_t i = 0, start = 0; i <= text.size(); ++i)
        if (i == text.size() || text[i] == '\n') {
            ++n;
            if (text.compare(start, 9, "  ciphers") == 0) line = n;
            start = i + 1;
        }
    CHECK(locate(r.config, "s2s.ciphers") == "t.toml:" + std::to_string(line) + ": s2s.ciphers");
    CHECK(locate(r.config, "s2s.outgoing.dns.timeout") == "t.toml:" + std::to_string(line - 1) + ": s2s.dns.timeout");
    CHECK(locate(r.config, "s2s.default_policy") == "command line: --s2s.default_policy");
    CHECK(locate(r.config, "s2s.outgoing.tls.ciphers") == "t.toml: s2s.outgoing.tls.ciphers");  // not set
}

// kMinimal with `local` lines under [local] (from line 7 on) and `tail` at the end.
std::string with_local(const std::string& local, const std::string& tail = "") {
    return "\n[general]\n  hosts = [\"example.com\"]\n\n[local]\n  server = \"127.0.0.1:15269\"\n" + local +
           "\n[[listen.s2s]]\n  port = 5269\n\n[[listen.local]]\n  port = 15270\n" + tail;
}

TEST_CASE("config: local.dns_upstream needs the responder, and no resolver may be the responder itself") {
    CHECK(load_text(with_local("  dns_responder = \"127.0.0.1:53\"\n  dns_upstream = [\"10.96.0.10\", \"127.0.0.53\"]\n"))
              .errors.empty());
    Diagnostic d = only_error(load_text(with_local("  dns_upstream = [\"10.96.0.10\"]\n")));
    CHECK(d.key == "local.dns_upstream");
    CHECK(d.line == 7);
    CHECK(d.message.find("local.dns_responder is not set") != std::string::npos);

    d = only_error(
        load_text(with_local("  dns_responder = \"127.0.0.1:53\"\n  dns_upstream = [\"10.96.0.10\", \"127.0.0.1\"]\n")));
    CHECK(d.key == "local.dns_upstream");
    CHECK(d.line == 8);
    CHECK(d.message.find("\"127.0.0.1\" is local.dns_responder itself (127.0.0.1:53)") == 0);

    d = only_error(load_text(with_local("  dns_responder = \"[::1]:5353\"\n  dns_upstream = [\"[::1]:5353\"]\n")));
    CHECK(d.key == "local.dns_upstream");

    d = only_error(load_text(
        with_local("  dns_responder = \"127.0.0.1:53\"\n", "\n[s2s]\n  dns.nameservers = [\"127.0.0.1:53\"]\n")));
    CHECK(d.key == "s2s.dns.nameservers");  // as written (6.x layout)
    CHECK(d.message.find("its own listener back for every remote domain") != std::string::npos);
    // another port, another server
    CHECK(load_text(with_local("  dns_responder = \"127.0.0.1:5353\"\n  dns_upstream = [\"127.0.0.1\"]\n")).errors.empty());
}
