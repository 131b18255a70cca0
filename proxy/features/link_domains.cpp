#include "proxy/features/link_domains.h"

namespace s2s {

LinkDomains::Domain& LinkDomains::get(const std::string& local) {
    auto it = domains_.find(local);
    if (it == domains_.end()) it = domains_.emplace(local, Domain{Auth::None, StanzaQueue(max_stanzas_, max_bytes_)}).first;
    return it->second;
}

LinkDomains::Domain* LinkDomains::find(const std::string& local) {
    auto it = domains_.find(local);
    return it == domains_.end() ? nullptr : &it->second;
}

bool LinkDomains::pending() const noexcept {
    for (auto& [local, d] : domains_)
        if (d.auth == Auth::Pending) return true;
    return false;
}

bool LinkDomains::carries(const std::string& local) const {
    auto it = domains_.find(local);
    return it != domains_.end() && (it->second.auth != Auth::None || !it->second.queue.empty());
}

void LinkDomains::accepted_pairs(const std::string& remote, PairSet& pairs) const {
    pairs.clear();
    for (auto& [local, d] : domains_)
        if (d.auth == Auth::Valid) pairs.insert(remote, local);
}

void LinkDomains::drain(const std::function<void(QueuedStanza)>& out) {
    for (auto& [local, d] : domains_)
        while (!d.queue.empty()) out(d.queue.pop());
}

}  // namespace s2s
