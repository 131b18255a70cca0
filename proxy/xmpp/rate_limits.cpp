#include "proxy/xmpp/rate_limits.h"

#include <algorithm>

#include "common/base/log.h"
#include "common/xmpp/jid.h"
#include "proxy/ops/metrics.h"

namespace s2s {

namespace {
// The normalised bare form of an address, or "" when it is not a JID.
std::string bare_of(std::string_view address) {
    auto jid = Jid::parse(address);
    return jid ? std::string(jid->bare_string()) : std::string();
}
}  // namespace

RateLimits::RateLimits(EventLoop& loop, std::size_t max_domains, KnownContacts contacts)
    : loop_(loop), max_domains_(std::max<std::size_t>(max_domains, 1)), contacts_(std::move(contacts)) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_.uv(), timer_);
    timer_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));  // a held stream keeps the loop alive, not this
}

RateLimits::~RateLimits() {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    // (each Domain's gate opens as it goes)
}

void RateLimits::apply(std::optional<TokenBucket>& bucket, RateSetting s, uint64_t now_ms) {
    if (!s.on()) bucket.reset();
    else if (bucket) bucket->set_rate(s.rate, s.burst);
    else bucket.emplace(s.rate, now_ms, s.burst);
}

void RateLimits::configure(RateSetting stanzas, RateSetting subscriptions) {
    stanzas_ = stanzas;
    subscriptions_ = subscriptions;
    uint64_t now = loop_.now_ms();
    for (Domain& d : order_) {
        apply(d.stanzas, stanzas_, now);
        apply(d.subscriptions, subscriptions_, now);
        if (!d.stanzas && !d.subscriptions) release(d);
    }
    forget_idle(now);
}

void RateLimits::configure(const Config& c) {
    auto setting = [](const Config::RateLimit& l) {
        return RateSetting{static_cast<uint64_t>(l.rate), static_cast<uint64_t>(l.burst)};
    };
    configure(setting(c.antispam_domain_rate), setting(c.antispam_subscription_rate));
}

RateLimits::Domain& RateLimits::track(const std::string& remote, uint64_t now_ms) {
    auto it = index_.find(remote);
    if (it != index_.end()) {
        order_.splice(order_.begin(), order_, it->second);
        return *it->second;
    }
    forget_idle(now_ms);
    if (index_.size() >= max_domains_) forget(std::prev(order_.end()));
    order_.emplace_front();
    Domain& d = order_.front();
    d.name = remote;
    apply(d.stanzas, stanzas_, now_ms);
    apply(d.subscriptions, subscriptions_, now_ms);
    index_.emplace(remote, order_.begin());
    return d;
}

void RateLimits::forget_idle(uint64_t now_ms) {
    while (!order_.empty()) {
        Domain& d = order_.back();
        if (d.resume_ms != 0 || (d.stanzas && !d.stanzas->full(now_ms)) ||
            (d.subscriptions && !d.subscriptions->full(now_ms)))
            return;
        forget(std::prev(order_.end()));
    }
}

void RateLimits::forget(Order::iterator it) {
    release(*it);
    index_.erase(it->name);
    order_.erase(it);
}

void RateLimits::inbound(const std::string& remote, const xml::Element& stanza, Stream* source) {
    if (!stanzas_.on() && !subscriptions_.on()) return;
    uint64_t now = loop_.now_ms();
    Domain& d = track(remote, now);
    if (d.stanzas) {
        if (uint64_t wait = d.stanzas->take(1, now)) slow(d, wait, source, "stanzas", now);
    }
    if (!d.subscriptions || stanza.name() != "presence" || stanza.attr("type").value_or("") != "subscribe") return;
    std::string from = bare_of(stanza.attr("from").value_or("")), to = bare_of(stanza.attr("to").value_or(""));
    if (contacts_.knows(to, from, now)) return;
    if (uint64_t wait = d.subscriptions->take(1, now)) slow(d, wait, source, "subscriptions", now);
}

void RateLimits::outbound(const QueuedStanza& stanza) {
    if (stanza.name != "presence" || (stanza.type != "subscribed" && stanza.type != "subscribe")) return;
    std::string local = bare_of(stanza.from), remote = bare_of(stanza.to);
    if (!local.empty() && !remote.empty()) contacts_.remember(local, remote, loop_.now_ms());
}

void RateLimits::slow(Domain& d, uint64_t wait_ms, Stream* source, const char* what, uint64_t now_ms) {
    std::size_t before = d.gate.held();
    d.gate.hold(source);
    if (d.gate.held() > before) {
        source->cap_reads(kHeldReadBytes);
        metrics().antispam_rate_limited.add(what);
        S2S_LOG_NOTICE(LogContext{source ? std::optional<uint64_t>(source->id()) : std::nullopt, {}, d.name},
                       "rate-limited", "over the [antispam] %s limit: the stream stops reading for %llu ms", what,
                       static_cast<unsigned long long>(wait_ms));
    }
    uint64_t until = now_ms + wait_ms;
    if (d.resume_ms >= until) return;
    if (d.resume_ms != 0) wakes_.erase(d.wake);
    d.resume_ms = until;
    d.wake = wakes_.emplace(until, &d);
    arm(now_ms);
}

void RateLimits::release(Domain& d) {
    if (d.resume_ms != 0) wakes_.erase(d.wake);
    d.resume_ms = 0;
    d.gate.open();
}

bool RateLimits::holding(const std::string& remote) const {
    auto it = index_.find(remote);
    return it != index_.end() && it->second->gate.held() > 0;
}

void RateLimits::arm(uint64_t now_ms) {
    if (wakes_.empty()) {
        uv_timer_stop(timer_);
        return;
    }
    uint64_t first = wakes_.begin()->first;
    uv_timer_start(timer_, on_timer, first > now_ms ? first - now_ms : 0, 0);
}

void RateLimits::on_timer(uv_timer_t* t) noexcept {
    auto* self = static_cast<RateLimits*>(t->data);
    uint64_t now = self->loop_.now_ms();
    while (!self->wakes_.empty() && self->wakes_.begin()->first <= now) self->release(*self->wakes_.begin()->second);
    self->arm(now);
}

}  // namespace s2s
