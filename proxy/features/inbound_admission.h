// What one client address may cost an inbound public listener before anything is negotiated:
// max_connections_per_host streams at once, max_connection_rate_per_host new ones a second
// (connection_rate.h), and each listener runs at most max_tls_handshakes TLS handshakes at once.
// s2s_in holds one InboundAdmission per stream; what it counted, in the listener's live counts
// (inbound_settings.h), is given back when it goes.
#pragma once

#include <optional>
#include <string>

#include "common/base/log.h"
#include "proxy/features/inbound_settings.h"

namespace s2s {

// The listener's counts one stream holds. Each refusal is logged and counted
// (connections_refused_total) and comes back as the text of the resource-constraint error.
class InboundAdmission {
public:
    explicit InboundAdmission(const InboundSettings& settings) : settings_(settings) {}
    ~InboundAdmission();
    InboundAdmission(const InboundAdmission&) = delete;
    InboundAdmission& operator=(const InboundAdmission&) = delete;

    // Counts the stream under `host` (until destroyed) and takes one of the address's new
    // connections for this second: nullopt, or the refusal past max_connections_per_host or
    // max_connection_rate_per_host.
    [[nodiscard]] std::optional<std::string> admit_host(std::string host, uint64_t now_ms, const LogContext& log);
    // A TLS handshake may start (counted until end_handshake() or destruction): nullopt, or the
    // refusal when the listener already runs max_tls_handshakes.
    [[nodiscard]] std::optional<std::string> begin_handshake(const LogContext& log);
    void end_handshake() noexcept;

    // The client address counted ("" until admit_host()).
    [[nodiscard]] const std::string& host() const noexcept { return host_; }

private:
    const InboundSettings& settings_;
    std::string host_;           // counted in settings_.per_host; "" until counted
    bool in_handshake_ = false;  // counted in settings_.handshakes
};

}  // namespace s2s
