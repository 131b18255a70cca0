#include "proxy/routing/router.h"

#include <algorithm>

#include "common/xmpp/jid.h"
#include "common/base/log.h"
#include "proxy/ops/metrics.h"

namespace s2s {
namespace {

// The canonical domain of a JID that was checked when the stanza was accepted ("" if none).
std::string domain_of_jid(const std::string& jid) {
    auto v = JidView::parse(jid);
    return v ? normalize_domain(v->domain()).value_or("") : "";
}

}  // namespace

ProxyRouter::ProxyRouter(const OutboundSettings& outbound, Resolver& resolver)
    : outbound_(outbound), resolver_(resolver) {}

ProxyRouter::~ProxyRouter() = default;

S2SOut& ProxyRouter::link(const std::string& remote, const std::string& local) {
    auto it = links_.find(remote);
    if (it != links_.end()) return *it->second;
    auto* l = new S2SOut(*ctx_, outbound_, resolver_, *this, remote, local);  // frees itself when closed
    links_[remote] = l;
    return *l;
}

void ProxyRouter::to_remote(const std::string& local, const std::string& remote, QueuedStanza stanza) {
    ++counters_.to_remote;
    if (ctx_->rate_limits) ctx_->rate_limits->outbound(stanza);
    if (!ctx_->policy.allowed(remote)) {
        bounce(stanza, StanzaError::PolicyViolation, "s2s to " + remote + " is not allowed: " + ctx_->policy.refusal(remote));
        return;
    }
    if (send_reverse(local, remote, stanza)) return;
    if (backoff_ms(remote) > 0 && !links_.count(remote)) {
        ++counters_.backoff_bounces;
        bounce(stanza, StanzaError::RemoteServerNotFound, backoff_text(remote));
        return;
    }
    link(remote, local).send(local, std::move(stanza));
}

bool ProxyRouter::send_reverse(const std::string& local, const std::string& remote, const QueuedStanza& stanza) {
    auto it = reverse_.find({remote, local});
    if (it == reverse_.end()) return false;
    auto l = links_.find(remote);
    if (l != links_.end() && l->second->carries(local)) return false;
    for (auto r = it->second.rbegin(); r != it->second.rend(); ++r) {
        if (!(*r)->send_reverse(local, remote, stanza)) continue;
        ++(stanza.reply ? counters_.replies_delivered : counters_.delivered_remote);
        if (!stanza.reply) ++counters_.delivered_bidi;
        return true;
    }
    return false;
}

void ProxyRouter::offer_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) {
    auto& routes = reverse_[{remote, local}];
    if (std::find(routes.begin(), routes.end(), &route) == routes.end()) routes.push_back(&route);
}

void ProxyRouter::withdraw_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) {
    auto it = reverse_.find({remote, local});
    if (it == reverse_.end()) return;
    it->second.erase(std::remove(it->second.begin(), it->second.end(), &route), it->second.end());
    if (it->second.empty()) reverse_.erase(it);
}

// The worst case of a verification over a new link: DNS (SRV, then the targets' addresses, each
// query with its retries), one TCP connect, then one state_timeout for each step that waits for
// the remote: its header, the TLS handshake, its header again, SASL, its header once more, and
// the answer itself.
uint64_t ProxyRouter::verify_timeout_ms() const {
    constexpr uint64_t kSteps = 6;
    if (!ctx_ || outbound_.connect_timeout_ms == 0 || outbound_.state_timeout_ms == 0) return 0;  // unbounded
    const Outgoing& o = ctx_->config.outgoing;
    uint64_t dns = 2 * static_cast<uint64_t>(std::max<int64_t>(o.dns_timeout, 0)) * 1000 *
                   static_cast<uint64_t>(std::max(o.dns_retries, 1));
    return dns + outbound_.connect_timeout_ms + kSteps * outbound_.state_timeout_ms;
}

void ProxyRouter::from_remote(std::string_view remote, std::string_view local, xml::Document& stanza, Stream* source) {
    ++counters_.from_remote;
    QueuedStanza s = QueuedStanza::capture(stanza.root(), xml::NamespaceScope::server_stream());
    s.source = source;
    local_->deliver(std::string(remote), std::string(local), std::move(s));
}

uint64_t ProxyRouter::verify_dialback(const std::string& receiving, const std::string& originating,
                                      const std::string& stream_id, const std::string& key, VerifyDone done) {
    uint64_t token = ++next_token_;
    if (backoff_ms(originating) > 0 && !links_.count(originating)) {
        std::string why = backoff_text(originating);
        ctx_->loop.defer([this, token, done, why] {
            if (verifies_.erase(token)) done(Verdict::Unreachable, why);
        });
        verifies_[token] = {nullptr, 0};
        return token;
    }
    S2SOut& l = link(originating, receiving);
    uint64_t link_token = l.verify(receiving, stream_id, key, [this, token, done](Verdict v, const std::string& why) {
        verifies_.erase(token);
        done(v, why);
    });
    verifies_[token] = {&l, link_token};
    return token;
}

void ProxyRouter::cancel_verify(uint64_t token) {
    auto it = verifies_.find(token);
    if (it == verifies_.end()) return;
    if (it->second.link) it->second.link->cancel_verify(it->second.link_token);
    verifies_.erase(it);
}

void ProxyRouter::bounce(const QueuedStanza& stanza, StanzaError condition, const std::string& text) {
    auto reply = error_reply(stanza, condition, std::nullopt, text);
    if (!reply) return;
    S2S_LOG_INFO(LogContext{std::nullopt, domain_of_jid(stanza.from), domain_of_jid(stanza.to)}, "bounced", "%s %s: %s",
                 stanza.name.c_str(), stanza.id.c_str(), text.c_str());
    send_back(std::move(*reply));
}

void ProxyRouter::refuse_from_remote(std::string_view remote, std::string_view local, xml::Document& stanza,
                                     const std::string& why, Stream* source) {
    ++counters_.from_remote;
    QueuedStanza s = QueuedStanza::capture(stanza.root(), xml::NamespaceScope::server_stream());
    s.source = source;
    LogContext log{std::nullopt, local, remote};
    const char* what = s.type == "error" || s.name == "presence" ? "dropped" : "bounced";
    const char* id = s.id.empty() ? "-" : s.id.c_str();
    if (auto held = refusal_log_.take(ctx_->loop.now_ms()))
        S2S_LOG_NOTICE(log, "refused", "%s %s from %s %s: %s%s", s.name.c_str(), id, s.from.c_str(), what, why.c_str(),
                       held_note(*held).c_str());
    else
        S2S_LOG_DEBUG(log, "refused", "%s %s from %s %s: %s", s.name.c_str(), id, s.from.c_str(), what, why.c_str());
    // Being listed is not cured by trying again: type cancel.
    if (auto reply = error_reply(s, StanzaError::PolicyViolation, StanzaErrorType::Cancel, why)) send_back(std::move(*reply));
}

std::optional<QueuedStanza> ProxyRouter::error_reply(const QueuedStanza& stanza, StanzaError condition,
                                                     std::optional<StanzaErrorType> type, const std::string& text) {
    if (stanza.reply) {  // our own error reply, undeliverable in its turn: not answered again
        ++counters_.replies_dropped;
        return std::nullopt;
    }
    if (stanza.type == "error") {
        ++counters_.dropped_error;
        return std::nullopt;
    }
    if (stanza.name == "presence") {
        ++counters_.dropped_presence;
        return std::nullopt;
    }
    auto reply = make_bounce(stanza, condition, text, {}, type);
    if (!reply || !JidView::parse(stanza.from) || !JidView::parse(stanza.to)) {
        ++counters_.dropped_error;
        return std::nullopt;
    }
    ++counters_.bounced;
    metrics().stanza_bounces.add(name(condition));
    QueuedStanza b;
    b.bytes = std::move(*reply);
    b.name = stanza.name;
    b.from = stanza.to;
    b.to = stanza.from;
    b.id = stanza.id;
    b.type = "error";
    b.reply = true;
    b.source = stanza.source;
    return b;
}

// The error goes back the way the stanza came: to a local sender over the local link, to a
// remote sender over the link to its domain.
void ProxyRouter::send_back(QueuedStanza reply) {
    std::string sender = domain_of_jid(reply.to), target = domain_of_jid(reply.from);
    if (ctx_->is_local(sender)) {
        local_->deliver(target, sender, std::move(reply));
    } else if (send_reverse(target, sender, reply)) {
        // back on the sender's own bidi stream
    } else if (backoff_ms(sender) > 0 && !links_.count(sender)) {
        // The sender's host is unreachable right now: no new attempt just to carry an error.
        ++counters_.bounces_undeliverable;
    } else {
        link(sender, target).send(target, std::move(reply));
    }
}

void ProxyRouter::undeliverable(const QueuedStanza& stanza, StanzaError condition, const std::string& text) {
    bounce(stanza, condition, text);
}

uint64_t ProxyRouter::backoff_ms(const std::string& remote) const {
    return backoff_.remaining(remote, ctx_->loop.now_ms());
}

size_t ProxyRouter::hosts_in_backoff() {
    uint64_t now = ctx_->loop.now_ms();
    backoff_.sweep(now);
    return backoff_.waiting(now);
}

std::string ProxyRouter::backoff_text(const std::string& remote) const {
    const BackoffTable::Entry* b = backoff_.find(remote);
    return "s2s to " + remote + " failed: " + (b ? b->error : std::string("unknown")) + "; next attempt in " +
           std::to_string((backoff_ms(remote) + 999) / 1000) + " s";
}

void ProxyRouter::link_ready(const std::string& remote) { backoff_.forget(remote); }

// Backoff per remote host (see backoff.h). A link that had worked is not a failure of reachability.
std::string ProxyRouter::link_failed(const std::string& remote, const std::string& why, bool was_ready) {
    if (was_ready) {
        backoff_.forget(remote);
        return "";
    }
    uint64_t evicted = backoff_.evicted();
    size_t max = static_cast<size_t>(std::max<int64_t>(ctx_->config.outgoing.max_hosts_in_backoff, 1));
    uint64_t delay = backoff_.failed(remote, why, ctx_->loop.now_ms(), outbound_.max_retry_delay_ms, max);
    if (backoff_.evicted() != evicted) {
        metrics().limits_reached.add("max_hosts_in_backoff", backoff_.evicted() - evicted);
        // Logged at the first eviction and every thousandth after it: an attack must not flood the log.
        if (evicted == 0 || evicted / 1000 != backoff_.evicted() / 1000)
            S2S_LOG_NOTICE(LogContext{std::nullopt, "", remote}, "backoff-full",
                           "s2s.outgoing.max_hosts_in_backoff (%zu) reached: the oldest failing hosts are forgotten "
                           "(%llu so far)",
                           max, static_cast<unsigned long long>(backoff_.evicted()));
    }
    S2S_LOG_INFO(LogContext{std::nullopt, "", remote}, "backoff", "next attempt in %llu ms",
                 static_cast<unsigned long long>(delay));
    return "; next attempt in " + std::to_string((delay + 999) / 1000) + " s";
}

void ProxyRouter::link_closed(S2SOut* l) {
    auto it = links_.find(l->remote());
    if (it != links_.end() && it->second == l) links_.erase(it);
    for (auto v = verifies_.begin(); v != verifies_.end();) {
        if (v->second.link == l) v = verifies_.erase(v);
        else ++v;
    }
}

}  // namespace s2s
