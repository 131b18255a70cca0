// TLS on the local link, for when the local server is not on this host: what the config's TLS
// keys mean for each side of it. The streams to the local server negotiate it as
// local_tls_client.h says.
//
// [[listen.local]] (the local server's outgoing s2s): its `tls` subsection works as on
// [[listen.s2s]] (starttls.h): mode "tls" is direct TLS, "starttls" offers STARTTLS,
// "starttls_required" refuses anything before it; a subsection written without `mode` means
// "starttls" (MongooseIM's default for a listener's tls); no subsection means plain, and so does
// s2s.use_starttls, which is about the public side only. The dialback key check (local_verify.h)
// is the same with or without TLS.
//
// local.tls (the streams s2s-proxy opens to the local server: LocalOut's per-domain streams,
// LocalVerify's key checks, LocalComponent's component stream): mode "tls" starts TLS with the
// first byte, "starttls" uses STARTTLS when the server offers it, "starttls_required" fails the
// link when it does not; unset means plain. With verify_mode "peer" the server's certificate must
// chain to local.tls.cacertfile and name local.tls.server_name (default: the host of local.server
// when it is a name, else the local domain the stream is for); otherwise the link fails as one to
// an unreachable server does (retries, then bounces), with the reason logged.
#pragma once

#include <memory>
#include <string>

#include "common/config/config.h"
#include "common/tls/tls_context.h"
#include "proxy/features/starttls.h"

namespace s2s {

// The TLS mode of a [[listen.local]] listener (see above).
[[nodiscard]] const starttls::Mode& local_tls_mode(const Listener& listener);

// How s2s-proxy's streams to the local server use TLS (local.tls.mode; plain when unset). In plain
// mode an offered STARTTLS is ignored and a required one fails the link.
[[nodiscard]] const starttls::Mode& local_client_tls_mode(const Config& config);

struct LocalTlsSettings {
    starttls::Mode mode = starttls::plain();
    std::shared_ptr<const tls::Context> context;  // set when mode uses TLS
    std::string server_name;  // local.tls.server_name, else a name local.server holds; empty: the stream's domain
    bool check_name = true;   // verify_mode peer or selfsigned_peer: the certificate must name the server, and STARTTLS must be offered
};

// The name local.server (or local.verify_server) holds, when its host is a name rather than an IP
// address ("localhost:5269" -> "localhost"); "" otherwise.
[[nodiscard]] std::string host_name_of(const std::string& host_port);

namespace local_tls {

// The name expected in the server's certificate (and sent with SNI) on a stream for `domain`.
[[nodiscard]] std::string server_name(const LocalTlsSettings& settings, const std::string& domain);

}  // namespace local_tls
}  // namespace s2s
