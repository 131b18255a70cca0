// From the config's TLS options to TLS modes and contexts for listeners and outgoing links. What a
// mode means is starttls.h's table; here is only which key gives a side its mode.
//
// A listener's or the outgoing side's `tls.mode` wins; a tls subsection without a mode means
// "starttls" (MongooseIM's default), even beside s2s.use_starttls = "false". Otherwise MongooseIM
// 6.x's s2s.use_starttls decides: "false" no TLS, "optional" STARTTLS offered/used, "required" and
// "required_trusted" STARTTLS required (the latter also demands valid peer certificates, per
// domain). Outgoing links with neither s2s.use_starttls nor any s2s.outgoing.tls.* key use
// STARTTLS whenever the remote offers it.
// A listener's own tls subsection with verify_mode "peer" and disconnect_on_failure true refuses
// handshakes without a valid client certificate.
// Certificates come from `tls.certfile`/`tls.keyfile`, else from s2s.certfile (which holds the
// key too).
#pragma once

#include <memory>
#include <string>

#include "common/config/config.h"
#include "common/tls/tls_context.h"
#include "proxy/features/starttls.h"

namespace s2s {

[[nodiscard]] const starttls::Mode& inbound_tls_mode(const Config& config, const Listener& listener);
[[nodiscard]] const starttls::Mode& outbound_tls_mode(const Config& config);
// Whether s2s.use_starttls demands a valid certificate from every remote domain (PolicyRules).
[[nodiscard]] bool trusted_only(const Config& config);
// Whether outgoing links need a TLS client context: the mode above uses TLS, or some remote
// domain must prove itself with a certificate (s2s.secure_auth, s2s.secure_domains), which
// makes its links use TLS whatever the mode says.
[[nodiscard]] bool outgoing_tls_needed(const Config& config);

// The server context for a [[listen.s2s]] listener (null with *error set when it cannot be made;
// not called for a listener without TLS). `listener` is one of config.listen_s2s. An error begins
// with where the key behind it stands: "proxy.toml:14: listen.s2s.0.tls.ciphers: ...".
[[nodiscard]] std::shared_ptr<const tls::Context> make_listener_context(const Config& config, const Listener& listener,
                                                                        std::string* error);
// The client context for outgoing links from `local` ("" for the default one): its certificate is
// the domain's s2s.domain_certfile entry, else tls.certfile or s2s.certfile; *have_certificate
// says whether SASL EXTERNAL is possible with it. Errors are located as above.
[[nodiscard]] std::shared_ptr<const tls::Context> make_outgoing_context(const Config& config, const std::string& local,
                                                                        bool* have_certificate, std::string* error);

// The local link (local_tls.h). The server context for a [[listen.local]] listener with TLS:
// its tls.certfile (else s2s.certfile), no SNI certificates, ALPN xmpp-server in direct mode.
[[nodiscard]] std::shared_ptr<const tls::Context> make_local_listener_context(const Config& config,
                                                                              const Listener& listener,
                                                                              std::string* error);
// The client context for s2s-proxy's streams to the local server (local.tls.*): verify_mode peer
// fails the handshake on a chain that does not lead to local.tls.cacertfile.
[[nodiscard]] std::shared_ptr<const tls::Context> make_local_client_context(const Config& config, std::string* error);

}  // namespace s2s
