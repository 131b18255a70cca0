// DANE's DNS side for outbound links (RFC 7673 §3, RFC 7671), used by DnsResolver when
// s2s.outgoing.dane is on: which TLSA name to ask for a server, what an answer means, and what
// that makes of the resolver's candidates.
//
// A server's TLSA records (_PORT._tcp.HOST) are asked only when everything that led to it was
// authenticated by the validating resolver (AD): the SRV answer it came from (or, without SRV,
// the answers saying there is none) and its address answers. Otherwise the server is Insecure
// and nothing is asked. The answer then gives (judge_tlsa):
//   records with AD, some usable      -> Usable: TLS required, the certificate must match them
//   records with AD, none usable      -> NoRecords (PKIX-TA/EE, unknown selectors... are ignored)
//   no data / NXDOMAIN with AD        -> NoRecords
//   any answer without AD             -> Insecure
//   SERVFAIL (what a validating resolver answers for bogus data), timeout, error -> Bogus: the
//                                        server is not dialled (RFC 7673 §3.1: a failed lookup
//                                        must not become a downgrade)
// apply_tlsa logs one line and counts one outcome (dane_total{outcome="insecure|none|bogus"})
// for each server, and drops the candidates of Bogus servers.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/base/log.h"
#include "common/dns/dns.h"
#include "proxy/resolve/resolver.h"

namespace s2s {

struct TlsaVerdict {
    enum class Kind { Insecure, NoRecords, Usable, Bogus };
    Kind kind = Kind::Insecure;
    std::vector<tls::TlsaRecord> usable;  // Usable: the usable records
    std::string why;                      // a sentence for the log (Bogus: also for the bounce)
};

// "_5269._tcp.xmpp.example.org": the TLSA name for a server.
[[nodiscard]] std::string tlsa_name(const std::string& host, int port);
// The TLSA name for a candidate (its host and the port it is dialled on).
[[nodiscard]] std::string tlsa_name(const Candidate& c);
// What a TLSA answer means (see above).
[[nodiscard]] TlsaVerdict judge_tlsa(const DnsAnswer& answer);
// The candidates with their DANE state from `verdicts` (by tlsa_name; a candidate whose name is
// missing there is Insecure); those of Bogus servers are left out, and when none is left
// *error says why. Logs and counts one outcome per server.
[[nodiscard]] std::vector<Candidate> apply_tlsa(std::vector<Candidate> candidates,
                                                const std::map<std::string, TlsaVerdict>& verdicts,
                                                const LogContext& log, std::string* error);

}  // namespace s2s
