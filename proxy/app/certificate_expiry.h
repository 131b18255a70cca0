// When the certificates s2s-proxy presents stop being valid, for /metrics
// (certificate_expiry_timestamp_seconds, written by metrics_text.h).
//
// The certificates are those the config's TLS contexts present (tls_setup.h): a [[listen.s2s]]
// listener's tls.certfile (else s2s.certfile) and every s2s.domain_certfile entry (SNI); the
// outgoing links' client certificate (s2s.outgoing.tls.certfile, else s2s.certfile) and each
// local domain's s2s.domain_certfile entry; a [[listen.local]] listener's tls.certfile (else
// s2s.certfile); local.tls.certfile (else s2s.certfile) toward the local server. Each file counts
// once, named by the config key that gives it, so the rows are as many as the config has keys.
// The server reads them when it builds its TLS contexts (start and each applied SIGHUP reload).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config/config.h"

struct mbedtls_x509_time;

namespace s2s {

// A certificate file in use, by the config key that names it ("listen.s2s.0.tls.certfile",
// "s2s.certfile", "s2s.domain_certfile.1.certfile", "s2s.outgoing.tls.certfile",
// "listen.local.0.tls.certfile", "local.tls.certfile").
struct PresentedCertificate {
    std::string key;
    std::string path;
};

// The certificate files the config's TLS contexts present, each key once, in config order.
[[nodiscard]] std::vector<PresentedCertificate> presented_certificates(const Config& config);

struct CertificateExpiry {
    std::string key;      // as in PresentedCertificate
    std::string subject;  // the leaf's subject CN, else its whole subject name
    int64_t not_after = 0;  // unix time of the leaf's notAfter
};

// Reads the leaf (the first certificate) of each file. A file that cannot be read or parsed is
// left out, with a line in *errors naming it (the TLS context built from it just before would have failed).
[[nodiscard]] std::vector<CertificateExpiry> read_certificate_expiry(const std::vector<PresentedCertificate>& files,
                                                                     std::vector<std::string>* errors);

// An X.509 time (UTC) as unix time.
[[nodiscard]] int64_t unix_time(const mbedtls_x509_time& t);

}  // namespace s2s
