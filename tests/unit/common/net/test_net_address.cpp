// IP networks for allow-lists and socket address text (common/net/net_address).
#include "common/net/net_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <doctest/doctest.h>

#include <string>

using s2s::IpNetwork;
using s2s::NetworkList;

namespace {

// A socket address from "ip" text and a port (AF_INET for dotted quads, else AF_INET6).
sockaddr_storage addr(const char* ip, int port = 0) {
    sockaddr_storage ss{};
    auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(static_cast<std::uint16_t>(port));
        return ss;
    }
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    REQUIRE(inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<std::uint16_t>(port));
    return ss;
}

const sockaddr* sa(const sockaddr_storage& ss) { return reinterpret_cast<const sockaddr*>(&ss); }

IpNetwork net(const char* text) {
    std::string error;
    auto n = IpNetwork::parse(text, &error);
    INFO(error);
    REQUIRE(n.has_value());
    return *n;
}

bool in(const char* network, const char* ip) { return net(network).contains(sa(addr(ip))); }

std::string parse_error(const char* text) {
    std::string error;
    CHECK_FALSE(IpNetwork::parse(text, &error).has_value());
    CHECK_FALSE(IpNetwork::parse(text).has_value());  // no error pointer: no crash
    return error;
}

}  // namespace

TEST_CASE("net_address/parse gives the canonical form") {
    CHECK(net("10.0.0.0/8").to_string() == "10.0.0.0/8");
    CHECK(net("127.0.0.1").to_string() == "127.0.0.1/32");
    CHECK(net("127.0.0.1/32").to_string() == "127.0.0.1/32");
    CHECK(net("0.0.0.0/0").to_string() == "0.0.0.0/0");
    CHECK(net("::1").to_string() == "::1/128");
    CHECK(net("FD00::/8").to_string() == "fd00::/8");
    CHECK(net("2001:0db8:0000::/32").to_string() == "2001:db8::/32");
    CHECK(net("::/0").to_string() == "::/0");
    CHECK(net("10.0.0.0/8").is_ipv4());
    CHECK(net("10.0.0.0/8").prefix_length() == 8);
    CHECK_FALSE(net("fd00::/8").is_ipv4());
    CHECK(net("fd00::/8").prefix_length() == 8);
    CHECK(net("10.0.0.0/8") == net("10.0.0.0/8"));
    CHECK(net("10.0.0.0/8") != net("10.0.0.0/9"));
    CHECK(net("0.0.0.0/0") != net("::/0"));
}

TEST_CASE("net_address/IPv4 prefixes: /0, /32, byte-aligned and not") {
    CHECK(in("0.0.0.0/0", "0.0.0.0"));
    CHECK(in("0.0.0.0/0", "255.255.255.255"));
    CHECK(in("127.0.0.1", "127.0.0.1"));
    CHECK_FALSE(in("127.0.0.1", "127.0.0.2"));
    CHECK(in("10.0.0.0/8", "10.255.255.255"));
    CHECK_FALSE(in("10.0.0.0/8", "11.0.0.0"));
    CHECK_FALSE(in("10.0.0.0/8", "9.255.255.255"));
    // /12: 172.16.0.0 - 172.31.255.255
    CHECK(in("172.16.0.0/12", "172.16.0.0"));
    CHECK(in("172.16.0.0/12", "172.31.255.255"));
    CHECK_FALSE(in("172.16.0.0/12", "172.32.0.0"));
    CHECK_FALSE(in("172.16.0.0/12", "172.15.255.255"));
    // /31 and /1
    CHECK(in("127.0.0.2/31", "127.0.0.3"));
    CHECK_FALSE(in("127.0.0.2/31", "127.0.0.4"));
    CHECK(in("128.0.0.0/1", "200.1.2.3"));
    CHECK_FALSE(in("128.0.0.0/1", "127.255.255.255"));
    // The port does not matter.
    CHECK(net("127.0.0.1").contains(sa(addr("127.0.0.1", 5269))));
}

TEST_CASE("net_address/IPv6 prefixes: /0, /128, byte-aligned and not") {
    CHECK(in("::/0", "::"));
    CHECK(in("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK(in("::1", "::1"));
    CHECK_FALSE(in("::1", "::2"));
    CHECK_FALSE(in("::1/128", "::"));
    CHECK(in("fd00::/8", "fdff::1"));
    CHECK_FALSE(in("fd00::/8", "fe00::1"));
    CHECK(in("fc00::/7", "fd12::1"));
    CHECK(in("fc00::/7", "fc00::"));
    CHECK_FALSE(in("fc00::/7", "fe00::"));
    CHECK(in("2001:db8::/127", "2001:db8::1"));
    CHECK_FALSE(in("2001:db8::/127", "2001:db8::2"));
    CHECK(in("2001:db8:8000::/33", "2001:db8:ffff::1"));
    CHECK_FALSE(in("2001:db8:8000::/33", "2001:db8:7fff::1"));
}

TEST_CASE("net_address/families do not cross, except IPv4-mapped addresses") {
    CHECK_FALSE(in("0.0.0.0/0", "::1"));
    CHECK_FALSE(in("::/0", "127.0.0.1"));
    CHECK_FALSE(in("::/0", "::ffff:127.0.0.1"));  // a mapped address is IPv4
    CHECK(in("127.0.0.0/8", "::ffff:127.0.0.1"));
    CHECK(in("0.0.0.0/0", "::ffff:10.1.2.3"));
    CHECK(in("10.1.2.3", "::ffff:10.1.2.3"));
    CHECK_FALSE(in("10.1.2.3", "::ffff:10.1.2.4"));
    CHECK_FALSE(in("127.0.0.1", "::127.0.0.1"));  // IPv4-compatible (deprecated) is plain IPv6

    // A network written in the mapped form is the IPv4 network.
    CHECK(net("::ffff:10.0.0.0/104") == net("10.0.0.0/8"));
    CHECK(net("::ffff:10.1.2.3") == net("10.1.2.3/32"));
    CHECK(net("::ffff:0.0.0.0/96") == net("0.0.0.0/0"));
    CHECK(in("::ffff:10.0.0.0/104", "10.9.9.9"));
    CHECK(in("::ffff:10.0.0.0/104", "::ffff:10.9.9.9"));
}

TEST_CASE("net_address/host bits set are rejected with the likely meaning") {
    const std::string e = parse_error("10.1.2.3/8");
    CHECK(e.find("\"10.1.2.3/8\"") == 0);
    CHECK(e.find("host bits") != std::string::npos);
    CHECK(e.find("10.0.0.0/8") != std::string::npos);
    CHECK(parse_error("127.0.0.1/31").find("127.0.0.0/31") != std::string::npos);
    CHECK(parse_error("fd00::1/8").find("fd00::/8") != std::string::npos);
    CHECK(parse_error("::1/0").find("::/0") != std::string::npos);
    CHECK(parse_error("::ffff:10.1.2.3/104").find("10.0.0.0/8") != std::string::npos);
    CHECK(parse_error("255.255.255.255/0").find("0.0.0.0/0") != std::string::npos);
}

TEST_CASE("net_address/bad input gives a message naming the problem") {
    CHECK(parse_error("").find("empty") != std::string::npos);
    CHECK(parse_error("example.com").find("not an IPv4 or IPv6 address") != std::string::npos);
    CHECK(parse_error("localhost/8").find("not an IPv4 or IPv6 address") != std::string::npos);
    CHECK(parse_error("/8").find("not an IPv4 or IPv6 address") != std::string::npos);
    CHECK(parse_error("10.0.0/8").find("not an IPv4") != std::string::npos);
    CHECK(parse_error("10.0.0.256").find("not an IPv4") != std::string::npos);
    CHECK(parse_error("010.0.0.0/8").find("not an IPv4") != std::string::npos);
    CHECK(parse_error(" 10.0.0.0/8").find("not an IPv4") != std::string::npos);
    CHECK(parse_error("fe80::1%lo").find("not an IPv4") != std::string::npos);
    CHECK(parse_error("::1::2").find("not an IPv4") != std::string::npos);
    CHECK(parse_error(std::string(100, '1').c_str()).find("not an IPv4") != std::string::npos);
    CHECK(parse_error("10.0.0.0/").find("prefix length missing") != std::string::npos);
    CHECK(parse_error("10.0.0.0/33").find("prefix length 33 is over 32 for IPv4") != std::string::npos);
    CHECK(parse_error("::/129").find("prefix length 129 is over 128 for IPv6") != std::string::npos);
    CHECK(parse_error("10.0.0.0/08").find("is not a number 0..32") != std::string::npos);
    CHECK(parse_error("10.0.0.0/8 ").find("is not a number") != std::string::npos);
    CHECK(parse_error("10.0.0.0/-1").find("is not a number") != std::string::npos);
    CHECK(parse_error("10.0.0.0/8/8").find("is not a number") != std::string::npos);
    CHECK(parse_error("10.0.0.0/1000").find("is not a number") != std::string::npos);
    CHECK(parse_error("::ffff:10.0.0.0/95").find("at least 96") != std::string::npos);
    CHECK(parse_error("10.0.0.0/33").find("\"10.0.0.0/33\": ") == 0);
}

TEST_CASE("net_address/contains is false for other families and null") {
    sockaddr_storage unix_like{};
    unix_like.ss_family = AF_UNIX;
    CHECK_FALSE(net("0.0.0.0/0").contains(sa(unix_like)));
    CHECK_FALSE(net("::/0").contains(sa(unix_like)));
    CHECK_FALSE(net("::/0").contains(nullptr));
}

TEST_CASE("net_address/NetworkList matches any of its networks") {
    std::string error;
    auto list = NetworkList::parse({"127.0.0.1", "10.0.0.0/8", "fd00::/8"}, &error);
    REQUIRE(list.has_value());
    CHECK(list->size() == 3);
    CHECK(list->contains(sa(addr("127.0.0.1"))));
    CHECK(list->contains(sa(addr("::ffff:127.0.0.1"))));
    CHECK(list->contains(sa(addr("10.20.30.40"))));
    CHECK(list->contains(sa(addr("fd00::5"))));
    CHECK_FALSE(list->contains(sa(addr("127.0.0.2"))));
    CHECK_FALSE(list->contains(sa(addr("::1"))));
    CHECK_FALSE(list->contains(nullptr));

    NetworkList empty;
    CHECK(empty.empty());
    CHECK_FALSE(empty.contains(sa(addr("127.0.0.1"))));

    NetworkList built;
    CHECK(built.add("::1", &error));
    CHECK_FALSE(built.add("::1/200", &error));
    CHECK(error.find("over 128") != std::string::npos);
    built.add(net("127.0.0.0/8"));
    CHECK(built.size() == 2);
    CHECK(built.networks()[1].to_string() == "127.0.0.0/8");
    CHECK(built.contains(sa(addr("127.1.2.3"))));

    // The first bad entry is reported.
    CHECK_FALSE(NetworkList::parse({"127.0.0.1", "10.0.0.1/8", "bad"}, &error).has_value());
    CHECK(error.find("\"10.0.0.1/8\"") == 0);
}

TEST_CASE("net_address/format_sockaddr") {
    CHECK(s2s::format_sockaddr(sa(addr("127.0.0.1", 5269))) == "127.0.0.1:5269");
    CHECK(s2s::format_sockaddr(sa(addr("::1", 5))) == "[::1]:5");
    CHECK(s2s::format_sockaddr(sa(addr("fd00::1:0:0:2", 65535))) == "[fd00::1:0:0:2]:65535");
    CHECK(s2s::format_sockaddr(sa(addr("::ffff:10.1.2.3", 5))) == "10.1.2.3:5");
    CHECK(s2s::format_sockaddr(sa(addr("0.0.0.0"))) == "0.0.0.0:0");
    sockaddr_storage none{};
    CHECK(s2s::format_sockaddr(sa(none)) == "?");
    CHECK(s2s::format_sockaddr(nullptr) == "?");
}

TEST_CASE("net_address/format_ip: the address without its port, one text per client") {
    CHECK(s2s::format_ip(sa(addr("192.0.2.7", 40000))) == "192.0.2.7");
    CHECK(s2s::format_ip(sa(addr("::ffff:192.0.2.7", 1))) == "192.0.2.7");
    CHECK(s2s::format_ip(sa(addr("2001:db8::1", 5269))) == "2001:db8::1");
    sockaddr_storage none{};
    CHECK(s2s::format_ip(sa(none)) == "?");
    CHECK(s2s::format_ip(nullptr) == "?");
}

TEST_CASE("net_address: parse_socket_address takes ip:port, [v6]:port and localhost:port only") {
    using namespace s2s;
    sockaddr_storage ss{};
    REQUIRE(parse_socket_address("127.0.0.1:9269", &ss));
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&ss)) == "127.0.0.1:9269");
    REQUIRE(parse_socket_address("[::1]:5269", &ss));
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&ss)) == "[::1]:5269");
    REQUIRE(parse_socket_address("localhost:15269", &ss));
    CHECK(format_sockaddr(reinterpret_cast<sockaddr*>(&ss)) == "127.0.0.1:15269");
    for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:12x",
                            "example.org:5269", ":5269", "[::1:5269"})
        CHECK_MESSAGE(!parse_socket_address(bad, &ss), bad);
}

TEST_CASE("net_address/ListenerSet: a listener bound to one address is reached there only") {
    s2s::ListenerSet set;
    CHECK(set.empty());
    auto local = addr("127.0.0.1", 15270);
    set.add(sa(local));
    CHECK_FALSE(set.empty());
    CHECK(set.reaches(sa(addr("127.0.0.1", 15270))));
    CHECK(set.reaches(sa(addr("::ffff:127.0.0.1", 15270))));  // the IPv4-mapped form is the same address
    CHECK_FALSE(set.reaches(sa(addr("127.0.0.1", 15271))));
    CHECK_FALSE(set.reaches(sa(addr("127.0.0.2", 15270))));
    CHECK_FALSE(set.reaches(sa(addr("::1", 15270))));
    CHECK_FALSE(set.reaches(nullptr));
}

TEST_CASE("net_address/ListenerSet: a wildcard listener is reached on its port at any address of this host") {
    s2s::ListenerSet set;
    auto any4 = addr("0.0.0.0", 5269);
    auto any6 = addr("::", 5270);
    set.add(sa(any4));
    set.add(sa(any6));
    // 0.0.0.0:5269: every IPv4 loopback address, the unspecified address, and the host's own.
    for (const char* ip : {"127.0.0.1", "127.9.8.7", "0.0.0.0", "::ffff:127.0.0.1"}) {
        CAPTURE(ip);
        CHECK(set.reaches(sa(addr(ip, 5269))));
    }
    CHECK_FALSE(set.reaches(sa(addr("::1", 5269))));           // IPv6 does not reach an IPv4 socket
    CHECK_FALSE(set.reaches(sa(addr("127.0.0.1", 5268))));
    CHECK_FALSE(set.reaches(sa(addr("10.1.2.3", 5269))));      // not (yet) one of this host's addresses
    // [::]:5270 is dual-stack: IPv6 and IPv4 alike.
    for (const char* ip : {"::1", "::", "127.0.0.1", "0.0.0.0"}) {
        CAPTURE(ip);
        CHECK(set.reaches(sa(addr(ip, 5270))));
    }
    // The host's interface addresses count once they are known, and only those.
    set.set_host_addresses({addr("10.1.2.3"), addr("fd00::5")});
    CHECK(set.reaches(sa(addr("10.1.2.3", 5269))));
    CHECK(set.reaches(sa(addr("::ffff:10.1.2.3", 5269))));
    CHECK(set.reaches(sa(addr("fd00::5", 5270))));
    CHECK_FALSE(set.reaches(sa(addr("fd00::5", 5269))));
    CHECK_FALSE(set.reaches(sa(addr("10.1.2.4", 5269))));
    set.set_host_addresses({});
    CHECK_FALSE(set.reaches(sa(addr("10.1.2.3", 5269))));
}

TEST_CASE("net_address/SocketAddressSet: address and port, either family's form") {
    s2s::SocketAddressSet set;
    auto a = addr("127.0.0.12", 40001);
    CHECK(set.insert(sa(a)));
    CHECK_FALSE(set.insert(sa(addr("::ffff:127.0.0.12", 40001))));  // the same socket address
    CHECK(set.size() == 1);
    CHECK(set.contains(sa(addr("127.0.0.12", 40001))));
    CHECK(set.contains(sa(addr("::ffff:127.0.0.12", 40001))));
    CHECK_FALSE(set.contains(sa(addr("127.0.0.12", 40002))));
    CHECK_FALSE(set.contains(sa(addr("127.0.0.13", 40001))));
    CHECK_FALSE(set.contains(nullptr));
    CHECK(set.insert(sa(addr("::1", 40001))));
    set.erase(sa(a));
    CHECK_FALSE(set.contains(sa(a)));
    CHECK(set.contains(sa(addr("::1", 40001))));
    set.erase(sa(addr("::1", 40001)));
    CHECK(set.size() == 0);
}

TEST_CASE("net_address/is_loopback_or_unspecified") {
    for (const char* ip : {"127.0.0.1", "127.255.0.1", "0.0.0.0", "::1", "::", "::ffff:127.0.0.1", "::ffff:0.0.0.0"}) {
        CAPTURE(ip);
        CHECK(s2s::is_loopback_or_unspecified(sa(addr(ip))));
    }
    for (const char* ip : {"10.0.0.1", "128.0.0.1", "0.0.0.1", "::2", "fe80::1", "::ffff:10.0.0.1"}) {
        CAPTURE(ip);
        CHECK_FALSE(s2s::is_loopback_or_unspecified(sa(addr(ip))));
    }
}

TEST_CASE("net_address/the default denied networks cover both families and the IPv4-mapped forms") {
    auto list = NetworkList::parse({"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
                                    "::/128", "::1/128", "fe80::/10", "ff00::/8"});
    REQUIRE(list);
    for (const char* ip : {"127.0.0.1", "::ffff:127.0.0.1", "0.0.0.0", "::ffff:0.0.0.0", "169.254.1.1",
                           "::ffff:169.254.1.1", "224.0.0.1", "239.1.2.3", "::ffff:224.0.0.5", "255.255.255.255", "::",
                           "::1", "fe80::1", "ff02::1"}) {
        CAPTURE(ip);
        CHECK(list->contains(sa(addr(ip))));
    }
    for (const char* ip : {"10.0.0.1", "192.168.1.1", "8.8.8.8", "2001:db8::1", "fd00::1", "::ffff:10.0.0.1"}) {
        CAPTURE(ip);
        CHECK_FALSE(list->contains(sa(addr(ip))));
    }
}
