#include "proxy/resolve/nameservers.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/net/net_address.h"

namespace s2s {
namespace {

// Whether a nameserver `address`, asked on `port`, is `responder`.
bool is_responder(const std::string& address, uint16_t port, const sockaddr_storage& responder) {
    sockaddr_storage ns{};
    std::string why;
    if (!parse_nameserver(address, &ns, &why)) return false;
    if (ns.ss_family != responder.ss_family) return false;
    if (ns.ss_family == AF_INET) {
        const auto& a = reinterpret_cast<const sockaddr_in&>(ns);
        const auto& b = reinterpret_cast<const sockaddr_in&>(responder);
        return a.sin_addr.s_addr == b.sin_addr.s_addr && b.sin_port == htons(port);
    }
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ns);
    const auto& b = reinterpret_cast<const sockaddr_in6&>(responder);
    return std::memcmp(&a.sin6_addr, &b.sin6_addr, sizeof a.sin6_addr) == 0 && b.sin6_port == htons(port);
}

// udns's `port:N` option, in an options line or RES_OPTIONS; `port` unchanged when absent.
void read_port_option(const std::string& options, uint16_t* port) {
    std::istringstream words(options);
    std::string w;
    while (words >> w)
        if (w.rfind("port:", 0) == 0) {
            const long n = std::strtol(w.c_str() + 5, nullptr, 10);
            if (n > 0 && n < 65536) *port = static_cast<uint16_t>(n);
        }
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
    // What udns's dns_init() will ask: the nameservers of NAMESERVERS or NSCACHEIP when set (then
    // resolv.conf's are not read), else resolv.conf's; on the port of an `options port:N` line,
    // overridden by RES_OPTIONS (jabberd2's recipe sets these for its s2s process: a shared
    // environment would hand them to s2s-proxy too).
    std::vector<std::string> servers;
    std::string from = resolv_conf;
    uint16_t port = 53;
    std::ifstream in(resolv_conf);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string keyword, rest;
        if (!(words >> keyword)) continue;
        std::getline(words, rest);
        std::string address;
        if (keyword == "nameserver" && std::istringstream(rest) >> address) servers.push_back(address);
        else if (keyword == "options") read_port_option(rest, &port);
    }
    for (const char* env : {"NAMESERVERS", "NSCACHEIP"}) {
        const char* v = std::getenv(env);
        if (!v || !*v) continue;
        servers.clear();
        std::istringstream words(v);
        for (std::string s; words >> s;) servers.push_back(s);
        from = std::string("the environment (") + env + ")";
        break;
    }
    if (const char* v = std::getenv("RES_OPTIONS")) read_port_option(v, &port);
    for (const std::string& address : servers) {
        if (!is_responder(address, port, responder)) continue;
        *error = from + " names local.dns_responder (nameserver " + address +
                 "), and with s2s.outgoing.dns.nameservers empty s2s-proxy would ask it: every remote domain would "
                 "lead back to s2s-proxy. Set local.dns_upstream to the real resolvers (the responder forwards there, "
                 "and s2s-proxy asks them too), or s2s.outgoing.dns.nameservers";
        return false;
    }
    return true;
}

}  // namespace s2s
