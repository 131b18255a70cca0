#include "proxy/xmpp/known_contacts.h"

namespace s2s {

std::string KnownContacts::key_of(std::string_view local, std::string_view remote) {
    std::string key;
    key.reserve(local.size() + 1 + remote.size());
    key.append(local).push_back('\n');  // a character no JID holds
    key.append(remote);
    return key;
}

void KnownContacts::expire(uint64_t now_ms) {
    while (!order_.empty() && now_ms - order_.back().seen_ms > ttl_ms_) {
        index_.erase(order_.back().key);
        order_.pop_back();
    }
}

void KnownContacts::remember(std::string_view local, std::string_view remote, uint64_t now_ms) {
    expire(now_ms);
    std::string key = key_of(local, remote);
    auto it = index_.find(key);
    if (it != index_.end()) {
        it->second->seen_ms = now_ms;
        order_.splice(order_.begin(), order_, it->second);
        return;
    }
    if (index_.size() >= max_pairs_) {
        index_.erase(order_.back().key);
        order_.pop_back();
        ++evicted_;
    }
    order_.push_front(Pair{key, now_ms});
    index_.emplace(std::move(key), order_.begin());
}

bool KnownContacts::knows(std::string_view local, std::string_view remote, uint64_t now_ms) {
    expire(now_ms);
    return index_.count(key_of(local, remote)) != 0;
}

}  // namespace s2s
