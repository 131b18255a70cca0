// DANE on one outbound link (s2s.outgoing.dane; RFC 7673 §4, RFC 7671): what the server being
// dialled demands, and whether the remote's certificate met it. S2SOut holds one and asks it at
// four points:
//
//   on_connected:       dane.reset(candidate);          // that server's TLSA records, if usable
//   STARTTLS decision:  must_secure |= dane.required(); // usable records: TLS whatever the mode
//   TLS established:    if (!dane.verify(tls, remote, log, &why)) fail(why);   // no fallback
//   before anything is sent on the stream:
//                       dane.secure_enough(ctx, tls_or_null, remote, log, &why)
//
// secure_enough() is starttls::secure_enough with DANE on top: a plain stream to a server with
// usable records fails (no fallback to plaintext or dialback over plaintext; the dial plan goes on
// to the next candidate, which is checked against its own records), and a DANE match
// authenticates the remote domain, so a domain that must prove itself with a certificate
// (s2s.secure_domains, s2s.secure_auth) passes without a public CA. verify() logs the outcome
// and counts it (dane_total{outcome="match|mismatch"}); a candidate without usable records
// (DaneState other than Usable) makes every call a no-op that lets the link go on as before.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/base/log.h"
#include "common/tls/dane.h"
#include "common/tls/tls.h"
#include "proxy/resolve/resolver.h"
#include "proxy/xmpp/context.h"

namespace s2s {

class DaneLink {
public:
    // The candidate about to carry the link.
    void reset(const Candidate& c);
    // Usable TLSA records: TLS is mandatory on this link.
    [[nodiscard]] bool required() const noexcept { return tlsa_ != nullptr; }
    // The certificate matched the records (the remote domain is authenticated).
    [[nodiscard]] bool matched() const noexcept { return matched_; }
    // After the handshake: false (logged, counted, `*why` for the bounce) when the records are
    // usable and the peer's chain does not match them.
    [[nodiscard]] bool verify(const tls::Session& session, const std::string& remote, const LogContext& log,
                              std::string* why);
    // See above. `tls`: the session, null on a plain stream.
    [[nodiscard]] bool secure_enough(const ProxyContext& ctx, const tls::Session* tls, const std::string& remote,
                                     const LogContext& log, std::string* why) const;

private:
    std::shared_ptr<const std::vector<tls::TlsaRecord>> tlsa_;
    std::string host_;  // the SRV target (or the domain): a reference identifier for DANE-TA
    bool matched_ = false;
};

}  // namespace s2s
