// STARTTLS (RFC 6120 §5) and direct TLS (XEP-0368), in both roles.
//
// On a stream s2s-proxy accepts: what the receiving entity offers and how it answers <starttls/>.
// Both listeners use it: the public one (s2s_in, listen.s2s.*.tls) and the local one (local_in,
// listen.local.*.tls).
//
// A listener whose mode offers STARTTLS lists <starttls/> in its features until TLS is up; one
// whose mode requires it adds <required/>, which makes TLS mandatory-to-negotiate (RFC 6120 §5.3.1):
// nothing but <starttls/> is accepted before TLS, anything else ends the stream with
// policy-violation (a local service policy, RFC 6120 §4.9.3.14, as Prosody answers it too); in a
// direct mode TLS starts with the first byte and <starttls/> is never offered. After <proceed/>
// the stream restarts (the owner waits for a new header), and the new features do not list
// <starttls/> again.
//
// On a link s2s-proxy opens (s2s_out, s2s.outgoing.tls.mode): whether to ask for STARTTLS from
// the remote's features, when a link must fail for want of TLS, and whether a remote that must
// prove itself with a certificate (s2s.secure_domains, s2s.secure_auth) did.
//
// What each TLS mode means on either side is one table (Mode, below), which every stream machine,
// the TLS set-up and the policy read.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/config/config.h"
#include "common/tls/tls.h"
#include "common/base/log.h"
#include "common/tls/tls_context.h"
#include "common/xml/xml.h"
#include "proxy/xmpp/context.h"
#include "proxy/stream/stream.h"

namespace s2s {
namespace starttls {

// One TLS mode: a value of tls.mode (listen.*.tls, s2s.outgoing.tls, local.tls) or of
// s2s.use_starttls, and what it means on either side of a stream. The listeners, the links
// s2s-proxy opens, the local link, the TLS contexts and the policy decide by these facts, never by
// the name, so a new mode is one row of the table (starttls.cpp) and its name among the choices
// of its keys (config_table.cpp).
struct Mode {
    std::string_view name;         // as the config writes it ("tls", "starttls", "required_trusted"...)
    bool direct = false;           // TLS from the first byte (XEP-0368), ALPN xmpp-server; no <starttls/>
    bool starttls = false;         // a listener offers STARTTLS; a link asks for it when the peer offers it
    bool required = false;         // no plain stream: a listener adds <required/> and takes nothing before
                                   // <starttls/>; a link fails when the peer offers no STARTTLS
    bool trusted = false;          // every remote domain must show a valid certificate (policy.h)
    bool strict_handshake = false; // a listener's verify_mode "peer" with disconnect_on_failure refuses a
                                   // handshake without a valid client certificate (a tls subsection's modes);
                                   // false: certificates are judged per domain only (MongooseIM 6.x's use_starttls)

    // Whether a stream in this mode uses TLS at all, and so needs a context.
    [[nodiscard]] constexpr bool uses_tls() const noexcept { return direct || starttls; }
};

// The mode named `name`. The config admits only names the table has (test_starttls checks every
// choice of the keys above); any other name is the plain mode.
[[nodiscard]] const Mode& mode(std::string_view name);
// No TLS: s2s.use_starttls = "false", and a side that no TLS setting reaches.
[[nodiscard]] const Mode& plain();
// The mode of a side configured by tls subsection `tls`: its tls.mode; a subsection written
// without one means "starttls" (MongooseIM's default), or "starttls_required" when `otherwise`
// requires TLS (a subsection never weakens that); no subsection: `otherwise`.
[[nodiscard]] const Mode& configured(const TlsOptions& tls, const Mode& otherwise);

// ---- the receiving side (listeners) ----

// The <starttls/> feature to list now ("" when TLS is up or not offered here).
[[nodiscard]] std::string feature(const Mode& mode, const Stream& stream);
// Whether the listener requires TLS and the stream is not yet encrypted: only <starttls/> may come.
[[nodiscard]] bool required_first(const Mode& mode, const Stream& stream);
// Whether a <starttls/> from the peer may be answered with <proceed/> (offered, not yet used);
// otherwise `*why` says why not, for the log.
[[nodiscard]] bool may_proceed(const Mode& mode, const Stream& stream, std::string* why);
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
[[nodiscard]] ClientStep on_features(const Mode& mode, bool tls_open, bool must_secure, const xml::Element& features,
                                     const std::string& remote, std::string* why);
// A pre-1.0 remote sends no features: whether the link may go on without TLS (else `*why`).
[[nodiscard]] bool pre_1_0_acceptable(const Mode& mode, bool tls_open, const std::string& remote, std::string* why);
// For a remote that must show a valid certificate (PolicyRules::certificate_rule): true unless
// TLS is not up or the certificate is not valid for `remote`; then the refusal is logged and
// counted (secure_domain_refusals_total{outbound:...}) and `*why` says why. True for any other
// remote. `tls`: the session, null on a plain stream.
[[nodiscard]] bool secure_enough(const ProxyContext& ctx, const tls::Session* tls, const std::string& remote,
                                 const LogContext& log, std::string* why);

}  // namespace starttls
}  // namespace s2s
