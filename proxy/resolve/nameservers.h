// Which nameservers s2s-proxy's own resolver (DnsResolver) asks, for DnsResolver::create: never
// the DNS responder it runs for the local server, which answers every remote domain's SRV with
// s2s-proxy's own listener.
//
// In order: s2s.outgoing.dns.nameservers when set (the config refuses the responder's address
// there); else local.dns_upstream when set (the responder forwards there, and the host's
// resolv.conf may well name the responder); else the system's, as udns reads them from
// /etc/resolv.conf (or the NAMESERVERS / NSCACHEIP environment, on the port of an `options
// port:N` or RES_OPTIONS), unless they name local.dns_responder: then an error that says what
// to set.
#pragma once

#include <string>

#include "common/config/config.h"
#include "common/dns/dns.h"

namespace s2s {

// The options for the resolver's DnsClient, or false and *error. `resolv_conf` is the file the
// system's nameservers come from (the tests give another).
[[nodiscard]] bool resolver_dns_options(const Config& config, const std::string& resolv_conf, DnsOptions* out,
                                        std::string* error);

}  // namespace s2s
