// The PROXY protocol stage of an accepted connection; see proxy_stage.h.
#include "proxy/net/proxy_stage.h"

#include <cstring>

#include "common/net/net_address.h"
#include "proxy/ops/metrics.h"

namespace s2s {

const char* proxy_outcome_name(ProxyOutcome o) noexcept {
    switch (o) {
        case ProxyOutcome::pending: return "pending";
        case ProxyOutcome::proxied: return "proxied";
        case ProxyOutcome::local: return "local";
        case ProxyOutcome::unknown: return "unknown";
        case ProxyOutcome::direct: return "direct";
        case ProxyOutcome::untrusted_sender: return "untrusted_sender";
        case ProxyOutcome::missing_header: return "missing_header";
        case ProxyOutcome::malformed: return "malformed";
    }
    return "?";
}

bool is_refusal(ProxyOutcome o) noexcept {
    return o == ProxyOutcome::untrusted_sender || o == ProxyOutcome::missing_header || o == ProxyOutcome::malformed;
}

ProxyStageFeed ProxyStage::feed(const char* data, std::size_t len) noexcept {
    if (outcome_ != ProxyOutcome::pending) return {outcome_, 0};
    if (len == 0) return {outcome_, 0};
    if (!trusted_) return sniff(data, len);
    ProxyFeed f = parser_.feed(data, len);
    switch (f.status) {
        case ProxyStatus::need_more:
            return {outcome_, f.consumed};
        case ProxyStatus::done:
            outcome_ = parser_.kind() == ProxyKind::proxied ? ProxyOutcome::proxied
                       : parser_.kind() == ProxyKind::local ? ProxyOutcome::local
                                                            : ProxyOutcome::unknown;
            return {outcome_, f.consumed};
        case ProxyStatus::error:
            outcome_ = parser_.error() == ProxyError::bad_signature ? ProxyOutcome::missing_header
                                                                    : ProxyOutcome::malformed;
            return {outcome_, 0};
    }
    return {outcome_, 0};
}

// An untrusted sender: decided as soon as the bytes seen so far, with those held from earlier
// feeds, are or cannot be the start of a header. A direct stream's bytes of this feed are all
// the stream's (consumed 0); what was held before comes back through held().
ProxyStageFeed ProxyStage::sniff(const char* data, std::size_t len) noexcept {
    std::uint8_t look[sizeof held_];
    const std::size_t take = len < sizeof held_ - held_len_ ? len : sizeof held_ - held_len_;
    std::memcpy(look, held_, held_len_);
    std::memcpy(look + held_len_, data, take);
    switch (sniff_proxy_header(look, held_len_ + take)) {
        case ProxySniff::yes:
            outcome_ = ProxyOutcome::untrusted_sender;
            return {outcome_, 0};
        case ProxySniff::no:
            outcome_ = ProxyOutcome::direct;
            return {outcome_, 0};
        case ProxySniff::maybe:
            break;
    }
    // Still a prefix of a signature: shorter than 12 bytes in all, so this feed fitted whole.
    std::memcpy(held_ + held_len_, data, take);
    held_len_ += take;
    return {outcome_, take};
}

std::string ProxyStage::describe() const {
    const std::string v = "PROXY v" + std::to_string(parser_.version());
    switch (outcome_) {
        case ProxyOutcome::pending:
            return trusted_ ? "waiting for the PROXY header" : "waiting for the first bytes";
        case ProxyOutcome::proxied:
            return v + " header for client " +
                   format_sockaddr(reinterpret_cast<const sockaddr*>(&parser_.source()));
        case ProxyOutcome::local:
            return v + " LOCAL header (a health check): the connection's own address stands";
        case ProxyOutcome::unknown:
            return v + " header without a TCP client address: the connection's own address stands";
        case ProxyOutcome::direct:
            return "no PROXY header from a sender outside proxy_trusted: served as a direct connection";
        case ProxyOutcome::untrusted_sender:
            return "a PROXY header from a sender outside proxy_trusted";
        case ProxyOutcome::missing_header:
            return "no PROXY header from a sender in proxy_trusted (its first bytes are not one)";
        case ProxyOutcome::malformed:
            return proxy_error_text(parser_.error());
    }
    return "?";
}

bool ProxyStage::report(const std::string& sender, const LogContext& log) const {
    if (is_refusal(outcome_)) {
        metrics().proxy_headers.add(std::string("refused:") + (outcome_ == ProxyOutcome::malformed
                                                                   ? proxy_error_name(parser_.error())
                                                                   : proxy_outcome_name(outcome_)));
        S2S_LOG_WARNING(log, "proxy-refused", "%s, from %s: connection closed", describe().c_str(), sender.c_str());
        return false;
    }
    if (outcome_ == ProxyOutcome::direct) {
        S2S_LOG_INFO(log, "proxy-direct", "%s (%s)", describe().c_str(), sender.c_str());
    } else {
        metrics().proxy_headers.add(std::string("accepted:") + proxy_outcome_name(outcome_));
        S2S_LOG_INFO(log, "proxy-header", "%s, from %s", describe().c_str(), sender.c_str());
    }
    return true;
}

std::string ProxyStage::report_timeout(uint64_t ms, const std::string& sender, const LogContext& log) const {
    metrics().proxy_headers.add("refused:timeout");
    S2S_LOG_WARNING(log, "proxy-refused", "no PROXY header within %llu ms, from %s: connection closed",
                    static_cast<unsigned long long>(ms), sender.c_str());
    return "no PROXY header within " + std::to_string(ms) + " ms";
}

}  // namespace s2s
