// TLSA records (RFC 6698 §2.1) out of a DNS answer, for DnsClient: the udns parse routine for
// type 52 (udns 0.4 knows no TLSA) and the conversion of what it kept into tls::TlsaRecord.
//
// parse_tlsa is a udns dns_parse_fn: it copies the RDATA of every TLSA record in the answer
// section that belongs to the question's name (CNAMEs followed by udns) into one malloc'd
// block (DNS_E_NODATA when there is none), which udns hands to the query callback;
// tlsa_records() reads that block, and the callback frees it with free(). RDATA shorter than its three fixed bytes makes the answer a
// protocol error (DNS_E_PROTOCOL).
#pragma once

#include <vector>

#include "common/tls/dane.h"

namespace s2s {

inline constexpr int kDnsTypeTlsa = 52;

// udns's dns_parse_fn signature (dnscc_t is const unsigned char).
int parse_tlsa(const unsigned char* qdn, const unsigned char* pkt, const unsigned char* cur, const unsigned char* end,
               void** result) noexcept;

// The records parse_tlsa kept, in the answer's order (null: none).
[[nodiscard]] std::vector<tls::TlsaRecord> tlsa_records(const void* result);

}  // namespace s2s
