// What an inbound public stream needs from its listener (InboundSettings), and what one client
// address may cost there before anything is negotiated (InboundAdmission): max_connections_per_host
// streams at once, max_connection_rate_per_host new ones a second (connection_rate.h), and each
// listener runs at most max_tls_handshakes TLS handshakes at once. s2s_in holds one
// InboundAdmission per stream; what it counted is given back when it goes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/base/log.h"
#include "common/net/net_address.h"
#include "common/tls/tls.h"
#include "common/xmpp/xml_stream.h"
#include "proxy/net/connection_rate.h"
#include "proxy/features/starttls.h"

namespace s2s {

// What an inbound stream needs from its listener.
struct InboundSettings {
    InboundTls tls = InboundTls::None;
    std::shared_ptr<const tls::Context> tls_context;  // set unless tls is None
    uint64_t state_timeout_ms = 5000;                 // negotiation; 0: none
    uint64_t idle_timeout_ms = 600000;                // no stanza for this long closes; 0: never
    xml::StreamOptions parse;                         // limits (max_stanza_size...)
    std::string listener;                             // "listen.s2s.0", for logs
    Limit max_connections{0, true};                   // beyond it new streams get resource-constraint
    bool bidi = true;                                 // offer XEP-0288 once TLS is up (s2s.bidi)
    uint64_t max_rate = 0;                            // listener's shaper, bytes/s read; 0: none
    std::string shaper = "none";                      // its name: a shaper, or an access rule naming one per domain
    std::string access = "all";                       // access rule each authenticated remote domain must pass
    mutable size_t active = 0;                        // streams open on this listener now
    bool proxy_protocol = false;                      // a PROXY header comes first (proxy_stage.h)
    NetworkList proxy_trusted;                        // senders whose PROXY header is believed
    Limit max_connections_per_host{0, true};          // streams at once from one client address
    // Streams open now per client address ("192.0.2.7", "2001:db8::1"), like `active` a live count
    // that a reload of the other fields must keep.
    mutable std::unordered_map<std::string, size_t> per_host;
    Limit max_connection_rate_per_host{20, false};    // new connections per second from one client address
    Limit max_tls_handshakes{256, false};             // TLS handshakes in progress at once
    uint64_t proxy_timeout_ms = 3000;                 // for the PROXY header stage; 0: none
    mutable ConnectionRate rate;                      // recent connections per client address (live)
    mutable size_t handshakes = 0;                    // TLS handshakes in progress now (live)
};

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
