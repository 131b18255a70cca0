#include "common/tls/dane.h"

#include <mbedtls/md.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>

#include <cstring>

#include "common/tls/tls_context.h"
#include "common/tls/tls_identity.h"

#ifndef MBEDTLS_PRIVATE
#define MBEDTLS_PRIVATE(member) member
#endif

namespace s2s::tls {

namespace {

std::size_t digest_size(std::uint8_t matching) noexcept { return matching == 1 ? 32 : matching == 2 ? 64 : 0; }

const char* usage_name(std::uint8_t usage) noexcept {
    switch (usage) {
        case kTlsaPkixTa: return "PKIX-TA";
        case kTlsaPkixEe: return "PKIX-EE";
        case kTlsaDaneTa: return "DANE-TA";
        case kTlsaDaneEe: return "DANE-EE";
    }
    return "usage?";
}

// The record's data compared with `bytes` (the selected part of a certificate) under its matching type.
bool association_matches(const TlsaRecord& r, const unsigned char* bytes, std::size_t len) {
    if (r.matching == 0) return r.data.size() == len && std::memcmp(r.data.data(), bytes, len) == 0;
    const mbedtls_md_info_t* md = mbedtls_md_info_from_type(r.matching == 1 ? MBEDTLS_MD_SHA256 : MBEDTLS_MD_SHA512);
    unsigned char out[64];
    if (!md || mbedtls_md(md, bytes, len, out) != 0) return false;
    return r.data.size() == digest_size(r.matching) && std::memcmp(r.data.data(), out, r.data.size()) == 0;
}

// The selected part of a parsed certificate under the record's selector.
bool crt_matches(const TlsaRecord& r, const mbedtls_x509_crt& crt) {
    if (r.selector == 0) return association_matches(r, crt.raw.p, crt.raw.len);
    const mbedtls_x509_buf& spki = crt.MBEDTLS_PRIVATE(pk_raw);
    return spki.p && association_matches(r, spki.p, spki.len);
}

std::string join(const std::vector<std::string>& names) {
    std::string list;
    for (auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return list;
}

bool names_one_of(const mbedtls_x509_crt& leaf, const std::vector<std::string>& names) {
    Identities ids = certificate_identities(leaf);
    for (auto& n : names)
        if (certificate_matches_domain(ids, n)) return true;
    return false;
}

}  // namespace

bool tlsa_usable(const TlsaRecord& r) noexcept {
    if (r.usage != kTlsaDaneTa && r.usage != kTlsaDaneEe) return false;
    if (r.selector > 1 || r.matching > 2) return false;
    return r.matching == 0 ? !r.data.empty() : r.data.size() == digest_size(r.matching);
}

std::vector<TlsaRecord> usable_tlsa(const std::vector<TlsaRecord>& records) {
    std::vector<TlsaRecord> out;
    for (auto& r : records)
        if (tlsa_usable(r)) out.push_back(r);
    return out;
}

std::string describe_tlsa(const TlsaRecord& r) {
    static const char hex[] = "0123456789abcdef";
    std::string s = std::to_string(r.usage) + " " + std::to_string(r.selector) + " " + std::to_string(r.matching) + " ";
    std::size_t shown = r.data.size() > 16 ? 8 : r.data.size();
    auto put = [&](std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
            auto b = static_cast<unsigned char>(r.data[i]);
            s += hex[b >> 4];
            s += hex[b & 15];
        }
    };
    put(0, shown);
    if (shown < r.data.size()) {
        s += "...";
        put(r.data.size() - 8, r.data.size());
    }
    return s;
}

bool tlsa_matches(const TlsaRecord& r, const unsigned char* der, std::size_t len) {
    if (r.selector == 0) return association_matches(r, der, len);
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    bool ok = mbedtls_x509_crt_parse_der(&crt, der, len) == 0 && crt_matches(r, crt);
    mbedtls_x509_crt_free(&crt);
    return ok;
}

DaneCheck dane_verify(const std::vector<TlsaRecord>& usable, const mbedtls_x509_crt& chain,
                      const std::vector<std::string>& names) {
    DaneCheck out;
    if (!chain.raw.p) {
        out.detail = "no certificate";
        return out;
    }
    for (auto& r : usable)
        if (r.usage == kTlsaDaneEe && crt_matches(r, chain)) {
            out.matched = true;
            out.detail = std::string("DANE-EE ") + describe_tlsa(r);
            return out;
        }
    std::string why;
    for (auto& r : usable) {
        if (r.usage != kTlsaDaneTa) continue;
        for (const mbedtls_x509_crt* ta = chain.next; ta && ta->raw.p; ta = ta->next) {
            if (!crt_matches(r, *ta)) continue;
            mbedtls_x509_crt anchor;
            mbedtls_x509_crt_init(&anchor);
            uint32_t flags = 0;
            int rc = mbedtls_x509_crt_parse_der(&anchor, ta->raw.p, ta->raw.len);
            if (rc == 0)
                rc = mbedtls_x509_crt_verify(const_cast<mbedtls_x509_crt*>(&chain), &anchor, nullptr, nullptr, &flags,
                                             nullptr, nullptr);
            mbedtls_x509_crt_free(&anchor);
            if (rc != 0) {
                why = "the chain does not verify up to the DANE-TA anchor " + describe_tlsa(r) + " (" +
                      (flags ? describe_verify_flags(flags) : std::string("unreadable anchor")) + ")";
                continue;
            }
            if (!names_one_of(chain, names)) {
                why = "the certificate chains to the DANE-TA anchor " + describe_tlsa(r) + " but names none of " +
                      join(names);
                continue;
            }
            out.matched = true;
            out.detail = std::string("DANE-TA ") + describe_tlsa(r);
            return out;
        }
    }
    if (why.empty()) {
        std::string list;
        for (auto& r : usable)
            list += (list.empty() ? "" : "; ") + std::string(usage_name(r.usage)) + " " + describe_tlsa(r);
        why = "no certificate of the chain matches the TLSA records (" + list + ")";
    }
    out.detail = why;
    return out;
}

}  // namespace s2s::tls
