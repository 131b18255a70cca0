// The (remote domain, local domain) pairs authenticated on one stream, as a hash set: a claim and
// the check of every stanza cost one lookup, however many pairs the stream carries.
//
// Domains are kept in canonical form (common/xmpp/jid.h normalize_domain); contains() normalises what
// it is asked about, so a stanza's 'from'/'to' domains may be passed as written. The set itself
// has no bound: the stream refuses claims past s2s.max_domain_pairs before it inserts.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace s2s {

// A (remote domain, local domain) pair authenticated on a stream.
struct AuthenticatedPair {
    std::string remote, local;
};

class PairSet {
public:
    // Adds the pair (both domains valid); false when it was there already or a domain is not valid.
    bool insert(std::string_view remote, std::string_view local);
    // Whether the pair is in the set; either domain may be in any valid spelling ("A.Test.").
    [[nodiscard]] bool contains(std::string_view remote, std::string_view local) const;
    void clear() noexcept {
        keys_.clear();
        pairs_.clear();
    }
    [[nodiscard]] size_t size() const noexcept { return pairs_.size(); }
    [[nodiscard]] bool empty() const noexcept { return pairs_.empty(); }
    // The pairs in the order they were added (canonical domains).
    [[nodiscard]] const std::vector<AuthenticatedPair>& pairs() const noexcept { return pairs_; }

private:
    std::unordered_set<std::string> keys_;  // "remote\0local", canonical
    std::vector<AuthenticatedPair> pairs_;
};

}  // namespace s2s
