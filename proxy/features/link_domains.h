// The local domains one outbound link (s2s_out) carries: for each, whether the remote has
// accepted it on this link (SASL EXTERNAL for the domain the stream is from, dialback for any
// other) and the stanzas from it waiting until then, in order, within the link's queue limits
// (s2s.outgoing.max_stanzas_queued and max_bytes_queued, per local domain).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>

#include "proxy/xmpp/pair_set.h"
#include "proxy/stream/queue.h"

namespace s2s {

class LinkDomains {
public:
    enum class Auth {
        None,     // not asked for on this link (or refused: asked again when stanzas come)
        Pending,  // db:result sent: waiting for the remote's answer
        Valid,    // accepted: its stanzas go out as they come
    };
    struct Domain {
        Auth auth = Auth::None;
        StanzaQueue queue;
    };

    // The queue limits are read when a domain is first seen (the settings' live values).
    LinkDomains(const size_t& max_stanzas, const size_t& max_bytes) : max_stanzas_(max_stanzas), max_bytes_(max_bytes) {}

    // The domain's entry, created (not asked for, nothing queued) when new.
    Domain& get(const std::string& local);
    // The domain's entry, or null.
    [[nodiscard]] Domain* find(const std::string& local);
    [[nodiscard]] std::map<std::string, Domain>& all() noexcept { return domains_; }

    // Stanzas queued in all, and the fullest queue's fill (0..1).
    [[nodiscard]] size_t queued() const noexcept { return queued_in(domains_); }
    [[nodiscard]] double fill() const noexcept { return fullest_fill(domains_); }
    // Whether a dialback answer is awaited for some domain.
    [[nodiscard]] bool pending() const noexcept;
    // Whether `local` is being authenticated, is authenticated or has stanzas queued.
    [[nodiscard]] bool carries(const std::string& local) const;
    // `pairs` becomes (remote, local) for each accepted local domain.
    void accepted_pairs(const std::string& remote, PairSet& pairs) const;
    // Hands every queued stanza to `out`, emptying the queues.
    void drain(const std::function<void(QueuedStanza)>& out);

private:
    const size_t& max_stanzas_;
    const size_t& max_bytes_;
    std::map<std::string, Domain> domains_;
};

}  // namespace s2s
