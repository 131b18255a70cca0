#include "common/dns/tlsa_wire.h"

#include <udns.h>

#include <cstdlib>
#include <cstring>

namespace s2s {

// The block: a count, then for each record its RDATA length (2 bytes, big-endian) and RDATA.
int parse_tlsa(const unsigned char* qdn, const unsigned char* pkt, const unsigned char* cur, const unsigned char* end,
               void** result) noexcept {
    dns_parse p;
    dns_rr rr;
    size_t size = sizeof(unsigned);
    unsigned count = 0;
    int r;
    dns_initparse(&p, qdn, pkt, cur, end);
    while ((r = dns_nextrr(&p, &rr)) > 0) {
        if (rr.dnsrr_dsz < 3) return DNS_E_PROTOCOL;
        size += 2 + rr.dnsrr_dsz;
        ++count;
    }
    if (r < 0) return DNS_E_PROTOCOL;
    if (count == 0) return DNS_E_NODATA;
    auto* block = static_cast<unsigned char*>(std::malloc(size));
    if (!block) return DNS_E_NOMEM;
    std::memcpy(block, &count, sizeof count);
    unsigned char* out = block + sizeof count;
    dns_rewind(&p, qdn);
    while (dns_nextrr(&p, &rr) > 0) {
        *out++ = static_cast<unsigned char>(rr.dnsrr_dsz >> 8);
        *out++ = static_cast<unsigned char>(rr.dnsrr_dsz & 0xFF);
        std::memcpy(out, rr.dnsrr_dptr, rr.dnsrr_dsz);
        out += rr.dnsrr_dsz;
    }
    *result = block;
    return 0;
}

std::vector<tls::TlsaRecord> tlsa_records(const void* result) {
    std::vector<tls::TlsaRecord> out;
    if (!result) return out;
    auto* in = static_cast<const unsigned char*>(result);
    unsigned count = 0;
    std::memcpy(&count, in, sizeof count);
    in += sizeof count;
    for (unsigned i = 0; i < count; ++i) {
        size_t len = (static_cast<size_t>(in[0]) << 8) | in[1];
        in += 2;
        out.push_back({in[0], in[1], in[2], std::string(reinterpret_cast<const char*>(in + 3), len - 3)});
        in += len;
    }
    return out;
}

}  // namespace s2s
