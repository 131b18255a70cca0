// Admission of stanzas from a remote server: the checks every stanza passes before it is routed,
// the same on an inbound stream (s2s_in) and in the reverse direction of a bidirectional outbound
// link (s2s_out), and the refusal that ends the stream when one fails (a sender on the
// [antispam] JID list is refused alone, with a stanza error). Also the domains a remote
// server may never claim, whichever way it authenticates (dialback, SASL EXTERNAL).
#pragma once

#include <optional>
#include <string>

#include "common/xmpp/stream_error.h"
#include "common/xml/xml.h"
#include "proxy/xmpp/context.h"
#include "proxy/xmpp/pair_set.h"

namespace s2s {

// Why a stanza from a remote server was refused: the stream must end with this error.
struct StanzaRefusal {
    StreamError error;
    std::string text;
};

// The checks every stanza from a remote server passes before it is routed, on an inbound stream
// and in the reverse direction of a bidirectional outbound link alike (RFC 6120 §8.1.1.2,
// XEP-0220 §2.4, XEP-0288 §2): both addresses present and valid, the 'from' domain
// authenticated on this stream for the 'to' domain, the remote domain allowed by policy. A
// stanza that passes goes to ctx.router.from_remote() and nullopt is returned; one whose sender
// is on the [antispam] JID list goes to ctx.router.refuse_from_remote() (a stanza error, the
// stream stays) and nullopt is returned; otherwise nothing was forwarded and the stream must end
// with the refusal. `conn_id` names the stream in the log;
// `source` is the stream the stanza was read from (held back when where it goes has no room).
// `access`: the listener's access rule the 'from' domain must still pass ("all" on outbound links).
[[nodiscard]] std::optional<StanzaRefusal> route_remote_stanza(ProxyContext& ctx, uint64_t conn_id, Stream* source,
                                                               xml::Document& doc, const PairSet& pairs,
                                                               const std::string& access = "all");

// A domain a remote server may not claim (by dialback or SASL EXTERNAL), with the dialback error
// condition and the reason: one of our own hosts, or an IP literal that s2s.host_policy does not
// list with policy "allow".
struct ClaimRefusal {
    const char* condition;
    std::string text;
};
[[nodiscard]] std::optional<ClaimRefusal> refuse_claim(const ProxyContext& ctx, const std::string& remote);

}  // namespace s2s
