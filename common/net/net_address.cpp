// IP networks for allow-lists and socket addresses as text; see net_address.h for the rules.
#include "common/net/net_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace s2s {
namespace {

constexpr unsigned kIpv4Bits = 32;
constexpr unsigned kIpv6Bits = 128;
constexpr unsigned kMappedPrefixBits = 96;  // ::ffff:0:0/96 holds the IPv4-mapped addresses

std::optional<IpNetwork> fail(std::string* error, std::string_view text, const std::string& reason) {
    if (error) *error = "\"" + std::string(text) + "\": " + reason;
    return std::nullopt;
}

// True if the first `bits` bits of a and b are equal.
bool same_prefix(const std::uint8_t* a, const std::uint8_t* b, unsigned bits) noexcept {
    const unsigned whole = bits / 8;
    if (std::memcmp(a, b, whole) != 0) return false;
    const unsigned rest = bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
    return ((a[whole] ^ b[whole]) & mask) == 0;
}

// Clears every bit after the first `bits` of the `len`-byte address.
void clear_host_bits(std::uint8_t* addr, std::size_t len, unsigned bits) noexcept {
    for (std::size_t i = 0; i < len; ++i) {
        if (bits >= 8) {
            bits -= 8;
        } else {
            addr[i] &= static_cast<std::uint8_t>(0xFF << (8 - bits));
            bits = 0;
        }
    }
}

// A decimal prefix length: 1..3 digits, no leading zero (except "0" itself).
std::optional<unsigned> parse_prefix(std::string_view s) noexcept {
    if (s.empty() || s.size() > 3 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
}

// The address of `sa` as (is IPv4, bytes); IPv4-mapped IPv6 addresses come back as IPv4.
const std::uint8_t* address_bytes(const sockaddr* sa, bool* ipv4) noexcept {
    if (sa == nullptr) return nullptr;
    if (sa->sa_family == AF_INET) {
        *ipv4 = true;
        return reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr);
    }
    if (sa->sa_family == AF_INET6) {
        const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
        *ipv4 = IN6_IS_ADDR_V4MAPPED(&a);
        return a.s6_addr + (*ipv4 ? 12 : 0);
    }
    return nullptr;
}

}  // namespace

std::optional<IpNetwork> IpNetwork::parse(std::string_view text, std::string* error) {
    if (text.empty()) return fail(error, text, "empty network (expected e.g. \"10.0.0.0/8\" or \"fd00::/8\")");
    const std::size_t slash = text.find('/');
    const std::string_view addr_text = text.substr(0, slash);

    IpNetwork n;
    char buf[INET6_ADDRSTRLEN] = {};
    const bool fits = !addr_text.empty() && addr_text.size() < sizeof buf;
    if (fits) std::memcpy(buf, addr_text.data(), addr_text.size());
    if (fits && inet_pton(AF_INET, buf, n.bytes_.data()) == 1) {
        n.ipv4_ = true;
    } else if (!fits || inet_pton(AF_INET6, buf, n.bytes_.data()) != 1) {
        return fail(error, text, "\"" + std::string(addr_text) + "\" is not an IPv4 or IPv6 address");
    }
    const unsigned max_bits = n.ipv4_ ? kIpv4Bits : kIpv6Bits;

    unsigned prefix = max_bits;
    if (slash != std::string_view::npos) {
        const std::string_view prefix_text = text.substr(slash + 1);
        if (prefix_text.empty()) return fail(error, text, "prefix length missing after '/'");
        const auto p = parse_prefix(prefix_text);
        if (!p) return fail(error, text, "prefix length \"" + std::string(prefix_text) + "\" is not a number 0.." +
                                             std::to_string(max_bits));
        if (*p > max_bits)
            return fail(error, text, "prefix length " + std::to_string(*p) + " is over " + std::to_string(max_bits) +
                                         (n.ipv4_ ? " for IPv4" : " for IPv6"));
        prefix = *p;
    }

    if (!n.ipv4_ && IN6_IS_ADDR_V4MAPPED(reinterpret_cast<const in6_addr*>(n.bytes_.data()))) {
        if (prefix < kMappedPrefixBits)
            return fail(error, text, "an IPv4-mapped network needs a prefix length of at least 96 (it stands for "
                                     "an IPv4 network; write that instead)");
        std::memmove(n.bytes_.data(), n.bytes_.data() + 12, 4);
        std::memset(n.bytes_.data() + 4, 0, 12);
        n.ipv4_ = true;
        prefix -= kMappedPrefixBits;
    }
    n.prefix_ = static_cast<std::uint8_t>(prefix);

    IpNetwork masked = n;
    clear_host_bits(masked.bytes_.data(), masked.bytes_.size(), prefix);
    if (masked.bytes_ != n.bytes_)
        return fail(error, text, "host bits are set after the prefix (did you mean " + masked.to_string() + "?)");
    return n;
}

bool IpNetwork::contains(const sockaddr* sa) const noexcept {
    bool ipv4 = false;
    const std::uint8_t* bytes = address_bytes(sa, &ipv4);
    return bytes != nullptr && ipv4 == ipv4_ && same_prefix(bytes, bytes_.data(), prefix_);
}

std::string IpNetwork::to_string() const {
    char buf[INET6_ADDRSTRLEN] = "?";
    inet_ntop(ipv4_ ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(prefix_);
}

std::optional<NetworkList> NetworkList::parse(const std::vector<std::string>& entries, std::string* error) {
    NetworkList list;
    for (const auto& e : entries)
        if (!list.add(e, error)) return std::nullopt;
    return list;
}

bool NetworkList::add(std::string_view text, std::string* error) {
    auto n = IpNetwork::parse(text, error);
    if (!n) return false;
    networks_.push_back(*n);
    return true;
}

bool NetworkList::contains(const sockaddr* sa) const noexcept {
    for (const auto& n : networks_)
        if (n.contains(sa)) return true;
    return false;
}

std::string format_sockaddr(const sockaddr* sa) {
    bool ipv4 = false;
    const std::uint8_t* bytes = address_bytes(sa, &ipv4);
    if (bytes == nullptr) return "?";
    char buf[INET6_ADDRSTRLEN] = "?";
    inet_ntop(ipv4 ? AF_INET : AF_INET6, bytes, buf, sizeof buf);
    if (sa->sa_family == AF_INET) {
        const auto port = ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
        return std::string(buf) + ":" + std::to_string(port);
    }
    const auto port = ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
    return ipv4 ? std::string(buf) + ":" + std::to_string(port) : "[" + std::string(buf) + "]:" + std::to_string(port);
}

std::string format_ip(const sockaddr* sa) {
    bool ipv4 = false;
    const std::uint8_t* bytes = address_bytes(sa, &ipv4);
    if (bytes == nullptr) return "?";
    char buf[INET6_ADDRSTRLEN] = "?";
    inet_ntop(ipv4 ? AF_INET : AF_INET6, bytes, buf, sizeof buf);
    return buf;
}

namespace {

// 16 bytes of address (IPv4 as its IPv4-mapped IPv6 form), or empty for another family.
std::string address_key(const sockaddr* sa) {
    bool ipv4 = false;
    const std::uint8_t* bytes = address_bytes(sa, &ipv4);
    if (bytes == nullptr) return {};
    std::string key(16, '\0');
    if (ipv4) {
        key[10] = key[11] = '\xff';
        std::memcpy(&key[12], bytes, 4);
    } else {
        std::memcpy(&key[0], bytes, 16);
    }
    return key;
}

uint16_t port_of(const sockaddr* sa) noexcept {
    if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
    return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
}

// The address key and the port: 18 bytes, or empty for another family.
std::string socket_key(const sockaddr* sa) {
    std::string key = address_key(sa);
    if (key.empty()) return key;
    uint16_t port = port_of(sa);
    key += static_cast<char>(port >> 8);
    key += static_cast<char>(port & 0xFF);
    return key;
}

bool key_is_ipv4(const std::string& key) {
    static const std::string mapped("\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
    return key.compare(0, 12, mapped) == 0;
}

}  // namespace

bool is_loopback_or_unspecified(const sockaddr* sa) noexcept {
    bool ipv4 = false;
    const std::uint8_t* b = address_bytes(sa, &ipv4);
    if (b == nullptr) return false;
    if (ipv4) return b[0] == 127 || (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0);
    static const std::uint8_t zero[16] = {};
    if (std::memcmp(b, zero, 15) != 0) return false;
    return b[15] == 0 || b[15] == 1;
}

void ListenerSet::add(const sockaddr* bound) {
    std::string key = address_key(bound);
    if (key.empty()) return;
    static const std::string any6(16, '\0');
    static const std::string any4 = std::string(10, '\0') + "\xff\xff" + std::string(4, '\0');
    if (bound->sa_family == AF_INET6 && key == any6) any_v6_.insert(port_of(bound));
    else if (key == any4) any_v4_.insert(port_of(bound));
    else exact_.insert(socket_key(bound));
}

void ListenerSet::set_host_addresses(const std::vector<sockaddr_storage>& addresses) {
    host_.clear();
    for (auto& a : addresses) {
        std::string key = address_key(reinterpret_cast<const sockaddr*>(&a));
        if (!key.empty()) host_.insert(key);
    }
}

bool ListenerSet::is_host_address(const std::string& key) const { return host_.count(key) != 0; }

bool ListenerSet::reaches(const sockaddr* dest) const {
    std::string key = socket_key(dest);
    if (key.empty()) return false;
    if (exact_.count(key)) return true;
    uint16_t port = port_of(dest);
    bool v4 = key_is_ipv4(key);
    if (!any_v6_.count(port) && !(v4 && any_v4_.count(port))) return false;
    return is_loopback_or_unspecified(dest) || is_host_address(key.substr(0, 16));
}

bool SocketAddressSet::insert(const sockaddr* sa) {
    std::string key = socket_key(sa);
    return !key.empty() && set_.insert(std::move(key)).second;
}

void SocketAddressSet::erase(const sockaddr* sa) {
    std::string key = socket_key(sa);
    if (!key.empty()) set_.erase(key);
}

bool SocketAddressSet::contains(const sockaddr* sa) const {
    std::string key = socket_key(sa);
    return !key.empty() && set_.count(key) != 0;
}

bool parse_socket_address(const std::string& text, sockaddr_storage* out) {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    std::string host = text.substr(0, colon);
    std::string port_text = text.substr(colon + 1);
    if (port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos)
        return false;
    int port = std::stoi(port_text);
    if (port < 1 || port > 65535) return false;
    if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host == "localhost") host = "127.0.0.1";
    *out = sockaddr_storage{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(out);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
    if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        return true;
    }
    return false;
}

}  // namespace s2s
