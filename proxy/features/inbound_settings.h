// What an inbound public stream needs from its listener ([[listen.s2s]]): TLS, deadlines, parser
// limits, shaper, access rule, the PROXY stage and the per-address limits, and the listener's live
// counts, which outlive a reload. stream_settings fills one per listener; s2s_in reads it, and
// InboundAdmission (inbound_admission.h) keeps the counts.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/config/config.h"
#include "common/net/net_address.h"
#include "common/tls/tls_context.h"
#include "common/xmpp/xml_stream.h"
#include "proxy/net/connection_rate.h"
#include "proxy/features/starttls.h"

namespace s2s {

// What an inbound stream needs from its listener.
struct InboundSettings {
    starttls::Mode tls = starttls::plain();            // listen.s2s.*.tls, or s2s.use_starttls (inbound_tls_mode())
    std::shared_ptr<const tls::Context> tls_context;  // set when tls uses TLS
    uint64_t state_timeout_ms = 5000;                 // negotiation; 0: none
    uint64_t idle_timeout_ms = 600000;                // nothing heard for this long closes; 0: never
    xml::StreamOptions parse;                         // limits (max_stanza_size...)
    std::string listener;                             // "listen.s2s.0", for logs
    Limit max_connections{0, true};                   // beyond it new streams get resource-constraint
    bool bidi = true;                                 // offer XEP-0288 once TLS is up (s2s.bidi)
    bool stream_limits = true;                        // advertise XEP-0478 limits (s2s.stream_limits)
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

}  // namespace s2s
