// How many dialback verifications may be under way at once for peers that have not
// authenticated: each may open a connection to another server, so a peer could otherwise make
// the proxy dial out as often as it claims domains. Counted per client address of the asking
// stream (all its streams together) and in total; the per-stream bound is the stream's own.
//
// A verification takes one unit from take() and gives it back with give_back() when it ends
// (answered, given up or cancelled). The table holds one entry per address that has a
// verification under way, so it is never larger than the total bound; lookups are hashes.
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>

namespace s2s {

class VerifyBudget {
public:
    enum class Refusal {
        None,     // taken
        PerHost,  // `host` has max_per_host verifications under way
        Total,    // max_total are under way
    };
    // Takes one unit for `host` unless a bound would be passed (0: no bound).
    [[nodiscard]] Refusal take(const std::string& host, size_t max_per_host, size_t max_total);
    // Gives back a unit taken for `host`.
    void give_back(const std::string& host);

    [[nodiscard]] size_t total() const noexcept { return total_; }
    [[nodiscard]] size_t of(const std::string& host) const;
    // Client addresses with a verification under way.
    [[nodiscard]] size_t hosts() const noexcept { return per_host_.size(); }

private:
    std::unordered_map<std::string, size_t> per_host_;
    size_t total_ = 0;
};

}  // namespace s2s
