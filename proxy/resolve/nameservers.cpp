#include "proxy/resolve/nameservers.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "common/net/net_address.h"

namespace s2s {
namespace {

// Whether a resolv.conf `nameserver` address (always port 53) is `responder`.
bool is_responder(const std::string& address, const sockaddr_storage& responder) {
    sockaddr_storage ns{};
    std::string why;
    if (!parse_nameserver(address, &ns, &why)) return false;
    if (ns.ss_family != responder.ss_family) return false;
    if (ns.ss_family == AF_INET) {
        const auto& a = reinterpret_cast<const sockaddr_in&>(ns);
        const auto& b = reinterpret_cast<const sockaddr_in&>(responder);
        return a.sin_addr.s_addr == b.sin_addr.s_addr && b.sin_port == htons(53);
    }
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ns);
    const auto& b = reinterpret_cast<const sockaddr_in6&>(responder);
    return std::memcmp(&a.sin6_addr, &b.sin6_addr, sizeof a.sin6_addr) == 0 && b.sin6_port == htons(53);
}

}  // namespace

bool resolver_dns_options(const Config& config, const std::string& resolv_conf, DnsOptions* out, std::string* error) {
    *out = dns_options(config.outgoing);
    if (!out->nameservers.empty()) return true;
    if (!config.local_dns_upstream.empty()) {
        out->nameservers = config.local_dns_upstream;
        return true;
    }
    sockaddr_storage responder{};
    if (config.local_dns_responder.empty() || !parse_socket_address(config.local_dns_responder, &responder))
        return true;
    std::ifstream in(resolv_conf);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string keyword, address;
        if (!(words >> keyword >> address) || keyword != "nameserver") continue;
        if (!is_responder(address, responder)) continue;
        *error = resolv_conf + " names local.dns_responder (nameserver " + address +
                 "), and with s2s.outgoing.dns.nameservers empty s2s-proxy would ask it: every remote domain would "
                 "lead back to s2s-proxy. Set local.dns_upstream to the real resolvers (the responder forwards there, "
                 "and s2s-proxy asks them too), or s2s.outgoing.dns.nameservers";
        return false;
    }
    return true;
}

}  // namespace s2s
