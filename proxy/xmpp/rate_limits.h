// The [antispam] rate limits per remote domain, inbound: `domain_rate` (every stanza a remote
// domain sends us) and `subscription_rate` (presence type='subscribe' only, the stricter one),
// each a token bucket per authenticated remote domain with a rate per second and a burst.
// Over a limit nothing is dropped or bounced: the stanza goes on, and the stream it was read
// from stops reading (FlowGate) until the domain's buckets have paid the debt back, so the
// remote server is slowed by TCP. Every stream of that domain that sends while the debt lasts is
// held the same way. The stanzas of one read are always taken in (as with backpressure), so a
// held stream reads at most kHeldReadBytes at a time from then on: what it sent meanwhile comes
// in a few stanzas at a time, each read taking its tokens, instead of 64 KB at once.
//
// Known contacts (known_contacts.h) are exempt from the subscription limit: a subscription
// request from a remote JID to which that local user sent presence type='subscribed' or
// 'subscribe' passes at once. outbound() sees our users' stanzas go out and remembers them.
//
// Bounded (STYLE.md 17): at most max_domains domains are tracked; a domain whose buckets are
// full again and that is not held is forgotten (it is no different from a new one), the least
// recently active first; past the bound the least recently active one goes. One timer for all
// held domains. Used by admission (features/admission, inbound) and the router (to_remote,
// outbound), through ProxyContext::rate_limits; owned by the server.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/base/event_loop.h"
#include "common/config/config.h"
#include "common/xml/xml.h"
#include "proxy/net/shaper.h"
#include "proxy/stream/flow_gate.h"
#include "proxy/stream/queue.h"
#include "proxy/xmpp/known_contacts.h"

namespace s2s {

// A limit: `rate` per second with up to `burst` at once (0: the rate's worth); rate 0: none.
struct RateSetting {
    uint64_t rate = 0;
    uint64_t burst = 0;
    [[nodiscard]] bool on() const noexcept { return rate > 0; }
};

class RateLimits {
public:
    static constexpr std::size_t kDefaultMaxDomains = 10'000;
    static constexpr std::size_t kHeldReadBytes = 1024;

    explicit RateLimits(EventLoop& loop, std::size_t max_domains = kDefaultMaxDomains,
                        KnownContacts contacts = KnownContacts());
    ~RateLimits();  // held streams read again
    RateLimits(const RateLimits&) = delete;
    RateLimits& operator=(const RateLimits&) = delete;

    // The limits in force (at start and on SIGHUP): the buckets of tracked domains take the new
    // rates, keeping what was taken; a limit turned off lets its streams read again.
    void configure(RateSetting stanzas, RateSetting subscriptions);
    // The same from antispam.domain_rate and antispam.subscription_rate.
    void configure(const Config& config);

    // A stanza from `remote` (normalised domain) accepted for one of our domains, read from
    // `source` (null: none to hold): takes its tokens and holds `source` when a bucket is in
    // debt. Addresses are already checked and canonical.
    void inbound(const std::string& remote, const xml::Element& stanza, Stream* source);
    // A stanza from the local server on its way to a remote domain: a subscription presence from
    // our user is remembered as a known contact.
    void outbound(const QueuedStanza& stanza);

    [[nodiscard]] KnownContacts& contacts() noexcept { return contacts_; }
    [[nodiscard]] const KnownContacts& contacts() const noexcept { return contacts_; }
    [[nodiscard]] std::size_t domains() const noexcept { return index_.size(); }
    // Whether `remote`'s streams are held now (for tests and logs).
    [[nodiscard]] bool holding(const std::string& remote) const;

private:
    struct Domain {
        std::string name;
        std::optional<TokenBucket> stanzas, subscriptions;  // with that limit only
        FlowGate gate;                                      // its held streams
        uint64_t resume_ms = 0;                             // 0: none held
        std::multimap<uint64_t, Domain*>::iterator wake;    // in wakes_ while resume_ms != 0
    };
    using Order = std::list<Domain>;

    Domain& track(const std::string& remote, uint64_t now_ms);
    // Forgets the least recently active domains that are back to full and hold nothing.
    void forget_idle(uint64_t now_ms);
    void forget(Order::iterator it);
    void slow(Domain& d, uint64_t wait_ms, Stream* source, const char* what, uint64_t now_ms);
    void release(Domain& d);
    void arm(uint64_t now_ms);
    static void on_timer(uv_timer_t* t) noexcept;
    static void apply(std::optional<TokenBucket>& bucket, RateSetting s, uint64_t now_ms);

    EventLoop& loop_;
    std::size_t max_domains_;
    RateSetting stanzas_, subscriptions_;
    Order order_;  // most recently active first
    std::unordered_map<std::string, Order::iterator> index_;
    std::multimap<uint64_t, Domain*> wakes_;  // when each held domain reads again
    uv_timer_t* timer_ = nullptr;             // freed in its close callback
    KnownContacts contacts_;
};

}  // namespace s2s
