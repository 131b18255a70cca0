// What --check-config checks beyond the config file's own rules: that the TLS contexts can be
// built from the certificates, keys, CAs and cipher lists given, that the DNS responder's
// address and the local listener fit together, that s2s-proxy's own resolver would not ask that
// responder (/etc/resolv.conf naming it), and that the [antispam] list files parse — the things
// that otherwise fail only at start.
#pragma once

#include <string>
#include <vector>

#include "common/config/config.h"

namespace s2s {

// One sentence per problem, each beginning with where the key behind it stands
// ("proxy.toml:14: listen.s2s.0.tls.ciphers: ..."); empty when the proxy would start.
[[nodiscard]] std::vector<std::string> preflight(const Config& config);

// What --check-config reports when all is well: the entries read from each [antispam] list file.
[[nodiscard]] std::vector<std::string> preflight_notes(const Config& config);

}  // namespace s2s
