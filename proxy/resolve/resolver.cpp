#include "proxy/resolve/resolver.h"

#include <uv.h>

#include <algorithm>

namespace s2s {

std::string Candidate::describe() const {
    char ip[64] = "?";
    int port = 0;
    if (addr.ss_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
    }
    return host + " (" + ip + " port " + std::to_string(port) + (direct_tls ? ", direct TLS)" : ")");
}

namespace {

bool make_addr(const std::string& ip, int port, sockaddr_storage* out) {
    if (uv_ip4_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in*>(out)) == 0) return true;
    return uv_ip6_addr(ip.c_str(), port, reinterpret_cast<sockaddr_in6*>(out)) == 0;
}

}  // namespace

StaticResolver::StaticResolver(EventLoop& loop, const Config& config) : loop_(loop), config_(config) {}

std::vector<Candidate> StaticResolver::lookup(const std::string& domain) const {
    std::vector<Candidate> out;
    for (auto& a : config_.outgoing.address) {
        if (a.host != domain) continue;
        Candidate c;
        c.host = domain;
        c.configured = true;
        if (make_addr(a.ip_address, a.port.value_or(config_.outgoing.port), &c.addr)) out.push_back(c);
    }
    return out;
}

uint64_t StaticResolver::resolve(const std::string& domain, Done done) {
    uint64_t token = ++next_;
    std::vector<Candidate> found = lookup(domain);
    loop_.defer([this, token, domain, found, done = std::move(done)] {
        auto it = std::find(cancelled_.begin(), cancelled_.end(), token);
        if (it != cancelled_.end()) {
            cancelled_.erase(it);
            return;
        }
        if (found.empty())
            done({}, "no address for " + domain + ": it has no s2s.outgoing.address entry and DNS lookups are not enabled");
        else
            done(found, "");
    });
    return token;
}

void StaticResolver::cancel(uint64_t token) { cancelled_.push_back(token); }

}  // namespace s2s
