#include "proxy/app/stream_settings.h"

#include <algorithm>
#include <string>

#include "proxy/local/local_tls.h"
#include "proxy/net/shaper.h"
#include "proxy/app/tls_setup.h"
#include "proxy/features/stream_limits.h"

namespace s2s {
namespace {

// "Limit" values in ms for deadlines: infinity means none (0).
uint64_t ms(const s2s::Limit& l) { return l.infinite ? 0 : static_cast<uint64_t>(l.value); }

// A shaper's rate in bytes per second, or 0 for "none" (the config checked that the name exists);
// a listener's access-rule shaper as it is when a connection is accepted (no domain known yet).
uint64_t rate_of(const Config& c, const std::string& shaper) { return shaper_rate(c, shaper, ""); }

}  // namespace

xml::StreamOptions parse_options(const Config& c, const s2s::Limit& max_stanza_size) {
    xml::StreamOptions o;
    o.limits.max_stanza_size = static_cast<size_t>(max_stanza_size.infinite ? kMaxStanzaSizeCap : max_stanza_size.value);
    o.limits.max_stanza_memory = xml::StreamLimits::memory_for(o.limits.max_stanza_size);
    o.limits.max_stanza_elements = static_cast<size_t>(c.max_stanza_elements);
    o.unauthenticated = xml::StreamLimits::unauthenticated();
    o.stanza_timeout_ms = ms(c.stanza_timeout);
    o.send_timeout_ms = ms(c.send_timeout);
    return o;
}

void fill_outbound_settings(const Config& c, const TlsContexts& tls, OutboundSettings* out) {
    OutboundSettings& o = *out;
    o.tls = outbound_tls_mode(c);
    o.tls_context = tls.outgoing;
    o.have_certificate = tls.outgoing_has_certificate;
    o.sni = c.outgoing.tls.sni_enabled;
    o.sni_host = c.outgoing.tls.sni_host;
    o.domain_contexts = tls.domains;
    o.connect_timeout_ms = ms(c.outgoing.connection_timeout);
    // 0 ms (MongooseIM allows it) is a deadline that passes at once, not none: the smallest the timer has.
    o.state_timeout_ms = c.outgoing.state_timeout.infinite ? 0 : std::max<uint64_t>(1, ms(c.outgoing.state_timeout));
    o.idle_timeout_ms = ms(c.outgoing.stream_timeout);
    o.parse = parse_options(c, c.outgoing.max_stanza_size);
    o.limits = c.stream_limits ? limits_feature(o.parse.limits.max_stanza_size, o.idle_timeout_ms) : "";
    o.max_retry_delay_ms = static_cast<uint64_t>(c.outgoing.max_retry_delay) * 1000;
    o.queue_max_stanzas = static_cast<size_t>(c.outgoing.queue_max_stanzas);
    o.queue_max_bytes = static_cast<size_t>(c.outgoing.queue_max_bytes);
    o.max_rate = rate_of(c, c.outgoing.shaper);
    o.bidi = c.bidi;
}

void fill_local_settings(const Config& c, const TlsContexts& tls, LocalSettings* link, LocalVerifySettings* verify) {
    for (LocalTlsSettings* t : {&link->tls, &verify->tls}) {
        t->mode = local_client_tls_mode(c);
        t->context = tls.local_client;
        t->check_name = c.local_tls.verify_mode != VerifyMode::None;
        t->server_name = c.local_tls_server_name;
    }
    // By default the name to check is the one the server was configured by, when it is a name.
    if (c.local_tls_server_name.empty()) {
        link->tls.server_name = host_name_of(c.local_server);
        verify->tls.server_name = host_name_of(c.local_verify_server.empty() ? c.local_server : c.local_verify_server);
    }
    link->queue_timeout_ms = ms(c.local_queue_timeout);
    link->remote_idle_ms = static_cast<uint64_t>(c.local_remote_idle_timeout);
    verify->max_verifications = static_cast<size_t>(c.local_max_verifications);
    // The streams we open to the local server (s2s or component) take the first local
    // listener's stanza size: in component mode the server's stanzas arrive on them.
    link->parse = parse_options(c, c.listen_local.empty() ? s2s::Listener{}.max_stanza_size
                                                          : c.listen_local[0].max_stanza_size);
}

void fill_inbound_settings(const Config& c, const TlsContexts& tls, std::vector<std::unique_ptr<InboundSettings>>* out) {
    while (out->size() < c.listen_s2s.size()) out->push_back(std::make_unique<InboundSettings>());
    for (size_t i = 0; i < c.listen_s2s.size(); ++i) {
        const s2s::Listener& l = c.listen_s2s[i];
        InboundSettings& s = *(*out)[i];  // its live counts (active, per host) are kept
        s.listener = "listen.s2s." + std::to_string(i);
        s.tls = inbound_tls_mode(c, l);
        s.tls_context = tls.listeners[i];
        s.state_timeout_ms = ms(l.state_timeout);
        s.idle_timeout_ms = ms(c.outgoing.stream_timeout);
        s.parse = parse_options(c, l.max_stanza_size);
        s.max_connections = l.max_connections;
        s.max_rate = rate_of(c, l.shaper);
        s.shaper = l.shaper;
        s.access = l.access;
        s.bidi = c.bidi;
        s.stream_limits = c.stream_limits;
        s.proxy_protocol = l.proxy_protocol;
        s.proxy_trusted = l.proxy_trusted;
        s.max_connections_per_host = l.max_connections_per_host;
        s.max_connection_rate_per_host = l.max_connection_rate_per_host;
        s.max_tls_handshakes = l.max_tls_handshakes;
        s.proxy_timeout_ms = ms(l.proxy_protocol_timeout);
    }
}

void fill_local_in_settings(const Config& c, const TlsContexts& tls, SocketAddressSet* own_outgoing,
                            std::vector<std::unique_ptr<LocalInSettings>>* out) {
    while (out->size() < c.listen_local.size()) out->push_back(std::make_unique<LocalInSettings>());
    for (size_t i = 0; i < c.listen_local.size(); ++i) {
        const s2s::Listener& l = c.listen_local[i];
        LocalInSettings& s = *(*out)[i];
        s.listener = "listen.local." + std::to_string(i);
        s.access = l.access;
        s.state_timeout_ms = ms(l.state_timeout);
        s.max_rate = rate_of(c, l.shaper);
        s.own_outgoing = own_outgoing;
        s.verify_dialback = c.local_verify_dialback;
        s.max_connections = l.max_connections;
        s.max_tls_handshakes = l.max_tls_handshakes;
        s.parse = parse_options(c, l.max_stanza_size);
        s.tls = local_tls_mode(l);
        s.tls_context = tls.local_listeners[i];
    }
}

}  // namespace s2s
