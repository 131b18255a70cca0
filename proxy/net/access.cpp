#include "proxy/net/access.h"

#include <algorithm>

namespace s2s {
namespace {

bool acl_matches(const Config& c, const std::string& acl, std::string_view server) {
    if (acl == "all") return true;
    if (acl == "none") return false;
    auto it = c.acl.find(acl);
    if (it == c.acl.end()) return false;
    for (auto& p : it->second) {
        if (p.match == "all") return true;
        if (server.empty()) continue;  // no domain known yet: only {match = "all"} matches
        if (!p.server.empty() && p.server == server) return true;
        if (p.match == "current_domain" && std::find(c.hosts.begin(), c.hosts.end(), server) != c.hosts.end())
            return true;
    }
    return false;
}

}  // namespace

bool access_allows(const Config& c, const std::string& rule, std::string_view server) {
    if (rule == "all") return true;
    auto it = c.access.find(rule);
    if (it == c.access.end()) return false;
    for (auto& clause : it->second)
        if (acl_matches(c, clause.acl, server)) return clause.value == "allow";
    return false;
}

std::string access_value(const Config& c, const std::string& rule, std::string_view server) {
    auto it = c.access.find(rule);
    if (it == c.access.end()) return "";
    for (auto& clause : it->second)
        if (acl_matches(c, clause.acl, server)) return clause.value;
    return "";
}

bool some_listener_admits(const Config& c, std::string_view server) {
    if (c.listen_s2s.empty()) return true;
    for (const Listener& l : c.listen_s2s)
        if (access_allows(c, l.access, server)) return true;
    return false;
}

}  // namespace s2s
