// STARTTLS (RFC 6120 §5) and direct TLS (XEP-0368), in both roles.
//
// On a stream s2s-proxy accepts: what the receiving entity offers and how it answers <starttls/>.
// Both listeners use it: the public one (s2s_in, listen.s2s.*.tls) and the local one (local_in,
// listen.local.*.tls).
//
// A listener in Offer mode lists <starttls/> in its features until TLS is up; in Require mode it
// adds <required/>, which makes TLS mandatory-to-negotiate (RFC 6120 §5.3.1): nothing but
// <starttls/> is accepted before TLS, anything else ends the stream with policy-violation (a local
// service policy, RFC 6120 §4.9.3.14, as Prosody answers it too); in Direct mode TLS starts with the first byte and
// <starttls/> is never offered. After <proceed/> the stream restarts (the owner waits for a new
// header), and the new features do not list <starttls/> again.
//
// On a link s2s-proxy opens (s2s_out, s2s.outgoing.tls.mode): whether to ask for STARTTLS from
// the remote's features, when a link must fail for want of TLS, and whether a remote that must
// prove itself with a certificate (s2s.secure_domains, s2s.secure_auth) did.
#pragma once

#include <memory>
#include <string>

#include "common/tls/tls.h"
#include "common/base/log.h"
#include "common/tls/tls_context.h"
#include "common/xml/xml.h"
#include "proxy/xmpp/context.h"
#include "proxy/stream/stream.h"

namespace s2s {

// How a listener treats TLS (listen.*.tls.mode; for listen.s2s also s2s.use_starttls when unset).
enum class InboundTls {
    None,      // plain only
    Offer,     // STARTTLS offered
    Require,   // STARTTLS required before anything else
    Direct,    // TLS from the first byte (XEP-0368), ALPN xmpp-server
};

// How outbound links use TLS (s2s.outgoing.tls.mode, or s2s.use_starttls when unset).
enum class OutboundTls {
    None,             // never (STARTTLS not used even when offered)
    StartTls,         // STARTTLS when offered
    StartTlsRequired, // STARTTLS or fail
    Direct,           // TLS from the first byte (XEP-0368)
};

namespace starttls {

// The <starttls/> feature to list now ("" when TLS is up or not offered here).
[[nodiscard]] std::string feature(InboundTls mode, const Stream& stream);
// Whether the listener requires TLS and the stream is not yet encrypted: only <starttls/> may come.
[[nodiscard]] bool required_first(InboundTls mode, const Stream& stream);
// Whether a <starttls/> from the peer may be answered with <proceed/> (offered, not yet used);
// otherwise `*why` says why not, for the log.
[[nodiscard]] bool may_proceed(InboundTls mode, const Stream& stream, std::string* why);
// RFC 6120 §5.4.3.3: what was learnt before TLS would have to be forgotten, so a peer that
// authenticates first and encrypts later is refused rather than half-forgotten: false (logged,
// `*why` says why) when a domain was `authenticated` or a dialback verification is under way.
[[nodiscard]] bool early_enough(bool authenticated, bool verifying, const LogContext& log, std::string* why);
// RFC 6120 §5.4.2.2: <failure/> (not a stream error), the end of the stream and the connection
// closed, `why` being the reason logged for the close.
void refuse(Stream& stream, const std::string& why);
// RFC 6120 §5.4.2.3: <proceed/>, then TLS with `context` from the next byte; the parser starts a
// new stream. The owner waits for the handshake (Stream::Owner::on_tls_established).
void proceed(Stream& stream, std::shared_ptr<const tls::Context> context);
// The established session in words for the log: version, suite, resumption and the peer's
// certificate ("valid", "none" or why it is not).
[[nodiscard]] std::string describe(const tls::Session& session);

// ---- the initiating side (outbound links) ----

// The request: <proceed/> (or <failure/>) answers it.
inline constexpr std::string_view kRequest = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

// What the remote's features mean for TLS on a link in `mode`.
enum class ClientStep {
    Ask,       // send kRequest and wait for <proceed/>
    Fail,      // the link fails (`*why` says why)
    Continue,  // TLS is up, or not used on this link: on to authentication
};
// `must_secure`: the remote must show a valid certificate (and we have a client context), so
// it gets STARTTLS whatever the mode says.
[[nodiscard]] ClientStep on_features(OutboundTls mode, bool tls_open, bool must_secure, const xml::Element& features,
                                     const std::string& remote, std::string* why);
// A pre-1.0 remote sends no features: whether the link may go on without TLS (else `*why`).
[[nodiscard]] bool pre_1_0_acceptable(OutboundTls mode, bool tls_open, const std::string& remote, std::string* why);
// For a remote that must show a valid certificate (PolicyRules::certificate_rule): true unless
// TLS is not up or the certificate is not valid for `remote`; then the refusal is logged and
// counted (secure_domain_refusals_total{outbound:...}) and `*why` says why. True for any other
// remote. `tls`: the session, null on a plain stream.
[[nodiscard]] bool secure_enough(const ProxyContext& ctx, const tls::Session* tls, const std::string& remote,
                                 const LogContext& log, std::string* why);

}  // namespace starttls
}  // namespace s2s
