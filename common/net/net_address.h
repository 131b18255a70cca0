// IP networks in CIDR form for allow-lists ("10.0.0.0/8", "fd00::/8", "127.0.0.1"), and socket
// addresses as text for logs.
//
// Matching rules:
//  - An address without "/n" is a single host: /32 for IPv4, /128 for IPv6.
//  - IPv4 networks match IPv4 addresses, including IPv4-mapped IPv6 ones (::ffff:a.b.c.d), which is
//    how a dual-stack socket reports an IPv4 peer. IPv6 networks match only native IPv6 addresses:
//    "::/0" is every IPv6 address, not every address. To allow everyone, list 0.0.0.0/0 and ::/0.
//  - A network written in the mapped form ("::ffff:10.0.0.0/104") is the IPv4 network it maps
//    ("10.0.0.0/8"); its prefix must then be at least 96.
//  - Host bits set below the prefix ("10.1.2.3/8") are REJECTED, not masked: in an allow-list such
//    an entry is most likely a typo for a single host, and masking would silently trust a whole
//    network. The error message names the network that was probably meant.
//  - No scope ids ("fe80::1%eth0"), no spaces, no leading zeros in the prefix length.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace s2s {

/// One IPv4 or IPv6 network: an address and a prefix length, host bits zero.
class IpNetwork {
public:
    /// Parses "addr" or "addr/prefix" (see the file comment). On failure returns nullopt and, if
    /// `error` is given, sets it to a message that quotes the input ("\"10.0.0.0/33\": ...").
    [[nodiscard]] static std::optional<IpNetwork> parse(std::string_view text, std::string* error = nullptr);

    /// True if the address of `sa` (AF_INET or AF_INET6; the port is ignored) lies in this network.
    /// False for a null pointer or any other family.
    [[nodiscard]] bool contains(const sockaddr* sa) const noexcept;

    [[nodiscard]] bool is_ipv4() const noexcept { return ipv4_; }
    /// Prefix length in the network's own family: 0..32 for IPv4, 0..128 for IPv6.
    [[nodiscard]] unsigned prefix_length() const noexcept { return prefix_; }
    /// Canonical text, always with the prefix: "10.0.0.0/8", "fd00::/8", "127.0.0.1/32".
    [[nodiscard]] std::string to_string() const;

    friend bool operator==(const IpNetwork& a, const IpNetwork& b) noexcept {
        return a.ipv4_ == b.ipv4_ && a.prefix_ == b.prefix_ && a.bytes_ == b.bytes_;
    }
    friend bool operator!=(const IpNetwork& a, const IpNetwork& b) noexcept { return !(a == b); }

private:
    IpNetwork() = default;
    std::array<std::uint8_t, 16> bytes_{};  // network address; IPv4 uses the first 4 bytes
    std::uint8_t prefix_ = 0;
    bool ipv4_ = false;
};

/// An allow-list: an address is in it if any of its networks contains it. Empty = matches nothing.
class NetworkList {
public:
    NetworkList() = default;

    /// Parses every entry; nullopt with the first entry's error if any is invalid.
    [[nodiscard]] static std::optional<NetworkList> parse(const std::vector<std::string>& entries,
                                                          std::string* error = nullptr);

    /// Parses and appends one entry; false (and `error` set) if it is invalid.
    [[nodiscard]] bool add(std::string_view text, std::string* error = nullptr);
    void add(const IpNetwork& network) { networks_.push_back(network); }

    [[nodiscard]] bool contains(const sockaddr* sa) const noexcept;
    [[nodiscard]] bool empty() const noexcept { return networks_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return networks_.size(); }
    [[nodiscard]] const std::vector<IpNetwork>& networks() const noexcept { return networks_; }

private:
    std::vector<IpNetwork> networks_;
};

/// "1.2.3.4:5", "[::1]:5"; an IPv4-mapped IPv6 address is shown as IPv4 ("10.1.2.3:5"); "?" for a
/// null pointer or a family other than AF_INET/AF_INET6.
[[nodiscard]] std::string format_sockaddr(const sockaddr* sa);

/// The address alone, without the port: "1.2.3.4", "::1"; an IPv4-mapped IPv6 address is shown
/// as IPv4, so one client has one text whichever socket family saw it. "?" as format_sockaddr.
[[nodiscard]] std::string format_ip(const sockaddr* sa);

// Where this process listens, to tell whether a connection to an address would come back to it.
//
// A listener bound to one address is reached at that address and port only. One bound to the
// unspecified address is reached at its port on any address of this host: loopback (127.0.0.0/8,
// ::1), the unspecified address itself, and the host's interface addresses (set_host_addresses).
// 0.0.0.0 takes IPv4 only; :: takes IPv6 and IPv4 too (dual-stack, as libuv binds it). IPv4-mapped
// IPv6 addresses count as the IPv4 address they map. Lookups are hash lookups: O(1).
class ListenerSet {
public:
    // A bound listener (AF_INET or AF_INET6; others are ignored).
    void add(const sockaddr* bound);
    // This host's own addresses (replacing the previous ones), for listeners on the unspecified address.
    void set_host_addresses(const std::vector<sockaddr_storage>& addresses);
    // Whether a TCP connection to `dest` (address and port) would arrive at one of the listeners.
    [[nodiscard]] bool reaches(const sockaddr* dest) const;
    [[nodiscard]] bool empty() const noexcept { return exact_.empty() && any_v4_.empty() && any_v6_.empty(); }

private:
    [[nodiscard]] bool is_host_address(const std::string& address) const;
    std::unordered_set<std::string> exact_;      // address key + port
    std::unordered_set<uint16_t> any_v4_, any_v6_;  // ports bound on 0.0.0.0 and on ::
    std::unordered_set<std::string> host_;        // address keys of this host's interfaces
};

// A set of socket addresses (address and port; IPv4-mapped IPv6 counts as IPv4), with hash lookups.
class SocketAddressSet {
public:
    // False when it was already there (or is not AF_INET/AF_INET6).
    bool insert(const sockaddr* sa);
    void erase(const sockaddr* sa);
    [[nodiscard]] bool contains(const sockaddr* sa) const;
    [[nodiscard]] std::size_t size() const noexcept { return set_.size(); }

private:
    std::unordered_set<std::string> set_;
};

// Whether `sa` is a loopback (127.0.0.0/8, ::1) or the unspecified address (0.0.0.0, ::), in
// either family's form: a connection there stays on this host.
[[nodiscard]] bool is_loopback_or_unspecified(const sockaddr* sa) noexcept;

// "ip:port", "[v6]:port" or "localhost:port" (taken as 127.0.0.1) into a socket address;
// false when it is not one (names other than localhost are not resolved).
[[nodiscard]] bool parse_socket_address(const std::string& text, sockaddr_storage* out);

}  // namespace s2s
