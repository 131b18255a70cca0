// From the config to the settings objects the streams read: the outgoing links
// (OutboundSettings), the local link and its dialback checker (LocalSettings,
// LocalVerifySettings), and one InboundSettings or LocalInSettings per listener. The server owns
// those objects and fills them in place, at start and on each reload, because open streams hold
// references to them: each function writes only what the config decides, so what a settings
// object counts while it serves (InboundSettings' active connections, per host) is kept.
//
// Deadlines: a "Limit" of infinity is none (0 ms). Parser limits: parse_options().
#pragma once

#include <memory>
#include <vector>

#include "common/config/config.h"
#include "common/net/net_address.h"
#include "common/xmpp/xml_stream.h"
#include "proxy/local/local_in.h"
#include "proxy/local/local_reconnect.h"
#include "proxy/local/local_verify.h"
#include "proxy/s2s/s2s_in.h"
#include "proxy/s2s/s2s_out.h"
#include "proxy/app/tls_contexts.h"

namespace s2s {

// The parser limits for a stream: max_stanza_size, with "infinity" capped (kMaxStanzaSizeCap) so
// one peer cannot make the process buffer without bound; the tree memory that size allows; the
// general element count and stanza deadline; and the small limits that hold until the peer has
// authenticated.
[[nodiscard]] xml::StreamOptions parse_options(const Config& config, const Limit& max_stanza_size);

// s2s.outgoing and the rest of [s2s] that outgoing links read; not the pointers to the process's
// own addresses (own_listeners, own_outgoing), which the server sets.
void fill_outbound_settings(const Config& config, const TlsContexts& tls, OutboundSettings* out);

// [local]: the link to the local server and the checker of its dialback keys. Their TLS name to
// check is local.tls_server_name, by default the host the server was configured by when it is
// a name. Not the addresses, mode and credentials, which only a restart changes (the server sets
// them at start).
void fill_local_settings(const Config& config, const TlsContexts& tls, LocalSettings* link,
                         LocalVerifySettings* verify);

// One entry per [[listen.s2s]] (added as needed; existing ones are updated in place).
void fill_inbound_settings(const Config& config, const TlsContexts& tls,
                           std::vector<std::unique_ptr<InboundSettings>>* out);

// One entry per [[listen.local]], likewise; `own_outgoing` (the local ends of our outgoing links)
// is what the local listeners check a connection against.
void fill_local_in_settings(const Config& config, const TlsContexts& tls, SocketAddressSet* own_outgoing,
                            std::vector<std::unique_ptr<LocalInSettings>>* out);

}  // namespace s2s
