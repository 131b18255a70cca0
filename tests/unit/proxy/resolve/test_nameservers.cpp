// proxy/resolve/nameservers: which nameservers s2s-proxy's own resolver asks, with resolv.conf
// files written for the test. It must never be the DNS responder it runs for the local server.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "proxy/resolve/nameservers.h"

using namespace s2s;

namespace {

// A resolv.conf with `text`, removed at the end of the test.
struct ResolvConf {
    std::string path;
    explicit ResolvConf(const std::string& text) {
        char name[] = "/tmp/s2s-resolv-XXXXXX";
        const int fd = mkstemp(name);
        REQUIRE(fd >= 0);
        close(fd);
        path = name;
        std::ofstream(path) << text;
    }
    ~ResolvConf() { std::remove(path.c_str()); }
};

Config with_responder(const std::string& responder) {
    Config c;
    c.local_dns_responder = responder;
    return c;
}

}  // namespace

TEST_CASE("nameservers: s2s.outgoing.dns.nameservers first, then local.dns_upstream, then the system's") {
    ResolvConf system("search example.com\nnameserver 127.0.0.1\noptions ndots:5\n");
    DnsOptions o;
    std::string error;

    Config c = with_responder("127.0.0.1:53");
    c.outgoing.dns_nameservers = {"10.0.0.53"};
    c.local_dns_upstream = {"10.96.0.10"};
    REQUIRE_MESSAGE(resolver_dns_options(c, system.path, &o, &error), error);
    CHECK(o.nameservers == std::vector<std::string>{"10.0.0.53"});

    c.outgoing.dns_nameservers.clear();
    REQUIRE_MESSAGE(resolver_dns_options(c, system.path, &o, &error), error);
    CHECK(o.nameservers == std::vector<std::string>{"10.96.0.10"});
    CHECK(o.timeout_s == c.outgoing.dns_timeout);
    CHECK(o.retries == c.outgoing.dns_retries);

    // no upstreams: the system's, as long as resolv.conf does not name the responder
    Config plain;
    REQUIRE_MESSAGE(resolver_dns_options(plain, system.path, &o, &error), error);
    CHECK(o.nameservers.empty());
    for (const char* elsewhere : {"127.0.0.1:5353", "127.0.0.2:53", "[::1]:53"}) {
        CAPTURE(elsewhere);
        REQUIRE_MESSAGE(resolver_dns_options(with_responder(elsewhere), system.path, &o, &error), error);
        CHECK(o.nameservers.empty());
    }
}

TEST_CASE("nameservers: a resolv.conf that names the responder is refused, saying what to set") {
    DnsOptions o;
    std::string error;
    for (const char* text : {"nameserver 127.0.0.1\n", "# a comment\nnameserver 10.0.0.1\n  nameserver\t127.0.0.1  \n",
                             "nameserver ::1\n"}) {
        CAPTURE(text);
        ResolvConf conf(text);
        const std::string responder = std::string(text).find("::1") != std::string::npos ? "[::1]:53" : "127.0.0.1:53";
        error.clear();
        CHECK_FALSE(resolver_dns_options(with_responder(responder), conf.path, &o, &error));
        CHECK(error.find(conf.path + " names local.dns_responder") == 0);
        CHECK(error.find("local.dns_upstream") != std::string::npos);
    }
    // no such file: udns finds no nameserver there either, and that is its error to give
    CHECK(resolver_dns_options(with_responder("127.0.0.1:53"), "/nonexistent/resolv.conf", &o, &error));
}

TEST_CASE("nameservers: udns's environment and port option count as the system's nameservers") {
    DnsOptions o;
    std::string error;
    ResolvConf conf("nameserver 10.0.0.1\n");
    // jabberd2's recipe: NAMESERVERS and RES_OPTIONS name the responder on its own port
    REQUIRE(setenv("NAMESERVERS", "127.0.0.1", 1) == 0);
    REQUIRE(setenv("RES_OPTIONS", "ndots:1 port:15353", 1) == 0);
    CHECK_FALSE(resolver_dns_options(with_responder("127.0.0.1:15353"), conf.path, &o, &error));
    CHECK(error.find("the environment (NAMESERVERS) names local.dns_responder") == 0);
    error.clear();
    CHECK_MESSAGE(resolver_dns_options(with_responder("127.0.0.1:53"), conf.path, &o, &error), error);  // another port
    unsetenv("NAMESERVERS");
    CHECK_MESSAGE(resolver_dns_options(with_responder("127.0.0.1:15353"), conf.path, &o, &error), error);  // 10.0.0.1
    unsetenv("RES_OPTIONS");
    // an options line in resolv.conf sets the port too
    ResolvConf ported("nameserver 127.0.0.1\noptions port:15353\n");
    CHECK_FALSE(resolver_dns_options(with_responder("127.0.0.1:15353"), ported.path, &o, &error));
    CHECK(error.find(ported.path + " names local.dns_responder") == 0);
    error.clear();
    CHECK_MESSAGE(resolver_dns_options(with_responder("127.0.0.1:53"), ported.path, &o, &error), error);
}
