#include "proxy/xmpp/pair_set.h"

#include <optional>

#include "common/xmpp/jid.h"

namespace s2s {
namespace {

std::optional<std::string> key_of(std::string_view remote, std::string_view local) {
    auto r = normalize_domain(remote);
    auto l = normalize_domain(local);
    if (!r || !l) return std::nullopt;
    std::string key = std::move(*r);
    key += '\0';
    key += *l;
    return key;
}

}  // namespace

bool PairSet::insert(std::string_view remote, std::string_view local) {
    auto key = key_of(remote, local);
    if (!key) return false;
    auto [it, added] = keys_.insert(std::move(*key));
    if (!added) return false;
    size_t nul = it->find('\0');
    pairs_.push_back({it->substr(0, nul), it->substr(nul + 1)});
    return true;
}

bool PairSet::contains(std::string_view remote, std::string_view local) const {
    if (keys_.empty()) return false;
    auto key = key_of(remote, local);
    return key && keys_.count(*key) != 0;
}

}  // namespace s2s
