// STARTTLS (RFC 6120 §5) and direct TLS (XEP-0368) on a stream s2s-proxy accepts: what the
// receiving entity offers and how it answers <starttls/>. Both listeners use it: the public one
// (s2s_in, listen.s2s.*.tls) and the local one (local_in, listen.local.*.tls).
//
// A listener in Offer mode lists <starttls/> in its features until TLS is up; in Require mode it
// adds <required/>, which makes TLS mandatory-to-negotiate (RFC 6120 §5.3.1): nothing but
// <starttls/> is accepted before TLS, anything else ends the stream with policy-violation (a local
// service policy, RFC 6120 §4.9.3.14, as Prosody answers it too); in Direct mode TLS starts with the first byte and
// <starttls/> is never offered. After <proceed/> the stream restarts (the owner waits for a new
// header), and the new features do not list <starttls/> again.
#pragma once

#include <memory>
#include <string>

#include "common/tls.h"
#include "common/tls_context.h"
#include "proxy/stream.h"

namespace s2s {

// How a listener treats TLS (listen.*.tls.mode; for listen.s2s also s2s.use_starttls when unset).
enum class InboundTls {
    None,      // plain only
    Offer,     // STARTTLS offered
    Require,   // STARTTLS required before anything else
    Direct,    // TLS from the first byte (XEP-0368), ALPN xmpp-server
};

namespace starttls {

// The <starttls/> feature to list now ("" when TLS is up or not offered here).
[[nodiscard]] std::string feature(InboundTls mode, const Stream& stream);
// Whether the listener requires TLS and the stream is not yet encrypted: only <starttls/> may come.
[[nodiscard]] bool required_first(InboundTls mode, const Stream& stream);
// Whether a <starttls/> from the peer may be answered with <proceed/> (offered, not yet used);
// otherwise `*why` says why not, for the log.
[[nodiscard]] bool may_proceed(InboundTls mode, const Stream& stream, std::string* why);
// RFC 6120 §5.4.2.2: <failure/> and the end of the stream. The owner closes the connection.
void refuse(Stream& stream);
// RFC 6120 §5.4.2.3: <proceed/>, then TLS with `context` from the next byte; the parser starts a
// new stream. The owner waits for the handshake (Stream::Owner::on_tls_established).
void proceed(Stream& stream, std::shared_ptr<const tls::Context> context);
// The established session in words for the log: version, suite, resumption and the peer's
// certificate ("valid", "none" or why it is not).
[[nodiscard]] std::string describe(const tls::Session& session);

}  // namespace starttls
}  // namespace s2s
