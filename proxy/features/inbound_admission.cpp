#include "proxy/features/inbound_admission.h"

#include "proxy/ops/metrics.h"

namespace s2s {

InboundAdmission::~InboundAdmission() {
    end_handshake();
    if (!host_.empty()) {
        auto it = settings_.per_host.find(host_);
        if (it != settings_.per_host.end() && --it->second == 0) settings_.per_host.erase(it);
    }
}

std::optional<std::string> InboundAdmission::admit_host(std::string host, uint64_t now_ms, const LogContext& log) {
    host_ = std::move(host);
    size_t n = ++settings_.per_host[host_];
    if (!settings_.max_connections_per_host.allows(static_cast<int64_t>(n))) {
        metrics().connections_refused.add("max_connections_per_host");
        S2S_LOG_NOTICE(log, "refused", "%s has reached max_connections_per_host (%lld) on %s", host_.c_str(),
                       static_cast<long long>(settings_.max_connections_per_host.value), settings_.listener.c_str());
        return "too many connections from your address";
    }
    ConnectionRate::Verdict v = settings_.rate.admit(host_, settings_.max_connection_rate_per_host, now_ms);
    if (v != ConnectionRate::Verdict::Allowed) {
        metrics().connections_refused.add("max_connection_rate_per_host");
        S2S_LOG_NOTICE(log, "refused", "%s",
                       (v == ConnectionRate::Verdict::OverRate
                            ? host_ + " opened more than max_connection_rate_per_host (" +
                                  std::to_string(settings_.max_connection_rate_per_host.value) +
                                  ") connections a second on " + settings_.listener
                            : "too many client addresses opened connections on " + settings_.listener + " at once")
                           .c_str());
        return "too many new connections from your address; try again later";
    }
    return std::nullopt;
}

std::optional<std::string> InboundAdmission::begin_handshake(const LogContext& log) {
    if (!settings_.max_tls_handshakes.allows(static_cast<int64_t>(settings_.handshakes) + 1)) {
        metrics().connections_refused.add("max_tls_handshakes");
        S2S_LOG_NOTICE(log, "refused", "%s has max_tls_handshakes (%lld) in progress", settings_.listener.c_str(),
                       static_cast<long long>(settings_.max_tls_handshakes.value));
        return "too many TLS handshakes in progress; try again later";
    }
    ++settings_.handshakes;
    in_handshake_ = true;
    return std::nullopt;
}

void InboundAdmission::end_handshake() noexcept {
    if (!in_handshake_) return;
    in_handshake_ = false;
    --settings_.handshakes;
}

}  // namespace s2s
