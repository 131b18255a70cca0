#include "common/tls/tls_identity.h"

#include <cstring>

#include <mbedtls/asn1.h>
#include <mbedtls/x509_crt.h>

namespace s2s::tls {
namespace {

// DER contents of the OIDs we look for.
constexpr unsigned char kOidCommonName[] = {0x55, 0x04, 0x03};                                   // 2.5.4.3
constexpr unsigned char kOidSubjectAltName[] = {0x55, 0x1D, 0x11};                               // 2.5.29.17
constexpr unsigned char kOidOnDnsSrv[] = {0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07};    // 1.3.6.1.5.5.7.8.7
constexpr unsigned char kOidOnXmppAddr[] = {0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05};  // 1.3.6.1.5.5.7.8.5

constexpr std::size_t kMaxNameLength = 1023;  // longer presented names are ignored

// GeneralName CHOICE tags (context-specific, RFC 5280 §4.2.1.6).
enum GeneralNameTag : unsigned {
    kOtherName = 0, kRfc822Name = 1, kDnsName = 2, kX400Address = 3, kDirectoryName = 4,
    kEdiPartyName = 5, kUri = 6, kIpAddress = 7, kRegisteredId = 8,
};

template <std::size_t N>
bool oid_is(const unsigned char* p, std::size_t len, const unsigned char (&oid)[N]) {
    return len == N && std::memcmp(p, oid, N) == 0;
}

// mbedtls_asn1_* take `unsigned char**` but never write through it; these wrappers keep the
// const-ness here. Every call is bounded by `end` and checks the length against it.
bool get_tag(const unsigned char*& p, const unsigned char* end, std::size_t& len, int tag) {
    auto* q = const_cast<unsigned char*>(p);
    if (mbedtls_asn1_get_tag(&q, end, &len, tag) != 0) return false;
    p = q;
    return true;
}

// Any element header: one tag byte (low-tag-number form only) and a length that fits.
bool get_any(const unsigned char*& p, const unsigned char* end, unsigned char& tag, std::size_t& len) {
    if (end - p < 1) return false;
    tag = *p;
    if ((tag & 0x1F) == 0x1F) return false;  // high tag numbers never occur in what we parse
    auto* q = const_cast<unsigned char*>(p + 1);
    if (mbedtls_asn1_get_len(&q, end, &len) != 0) return false;
    p = q;
    return true;
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

bool equal_ci(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view strip_trailing_dot(std::string_view s) noexcept {
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);
    return s;
}

bool no_empty_label(std::string_view s) noexcept {
    return !s.empty() && s.front() != '.' && s.back() != '.' && s.find("..") == std::string_view::npos;
}

// What a presented DNS-ID (or CN-ID) may contain: LDH, '_' and '*' (judged when matching).
bool looks_like_dns_id(std::string_view s) noexcept {
    if (s.empty() || s.size() > kMaxNameLength) return false;
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '.' || c == '_' || c == '*';
        if (!ok) return false;
    }
    return no_empty_label(strip_trailing_dot(s));
}

// A reference domain: no wildcard, no empty label, no controls or spaces (UTF-8 allowed).
bool valid_reference(std::string_view s) noexcept {
    if (s.empty() || s.size() > kMaxNameLength || !no_empty_label(s)) return false;
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7F || c == '*' || c == '@' || c == '/') return false;
    }
    return true;
}

// Well-formed UTF-8 without control characters (XmppAddr values).
bool valid_utf8_text(std::string_view s) noexcept {
    if (s.empty() || s.size() > kMaxNameLength) return false;
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = 0;
        unsigned cp = 0;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F) return false;
            ++i;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
        else return false;
        if (s.size() - i - 1 < n) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

std::string_view as_text(const unsigned char* p, std::size_t n) {
    return {reinterpret_cast<const char*>(p), n};
}

// OtherName ::= SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY DEFINED BY type-id }
// (the SEQUENCE header is the GeneralName's own [0] IMPLICIT tag, already read).
DerStatus parse_other_name(const unsigned char* p, const unsigned char* end, Identities& out) {
    std::size_t oid_len = 0, value_len = 0, str_len = 0;
    if (!get_tag(p, end, oid_len, MBEDTLS_ASN1_OID)) return DerStatus::Malformed;
    const unsigned char* oid = p;
    p += oid_len;
    if (!get_tag(p, end, value_len, MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 0))
        return DerStatus::Malformed;
    if (value_len != static_cast<std::size_t>(end - p)) return DerStatus::Malformed;

    if (oid_is(oid, oid_len, kOidOnDnsSrv)) {
        out.has_san_ids = true;
        if (!get_tag(p, end, str_len, MBEDTLS_ASN1_IA5_STRING) || str_len != static_cast<std::size_t>(end - p))
            return DerStatus::Malformed;
        std::string_view v = as_text(p, str_len);
        if (looks_like_dns_id(v)) out.srv_ids.emplace_back(v);
    } else if (oid_is(oid, oid_len, kOidOnXmppAddr)) {
        out.has_san_ids = true;
        if (!get_tag(p, end, str_len, MBEDTLS_ASN1_UTF8_STRING) || str_len != static_cast<std::size_t>(end - p))
            return DerStatus::Malformed;
        std::string_view v = as_text(p, str_len);
        if (valid_utf8_text(v)) out.xmpp_addrs.emplace_back(v);
    }
    // Other otherName types (UPN, hardware module names...) are not identities for XMPP.
    return DerStatus::Ok;
}

}  // namespace

DerStatus parse_general_names(const unsigned char* der, std::size_t len, Identities& out) {
    if (der == nullptr) return DerStatus::Malformed;
    const unsigned char* p = der;
    const unsigned char* end = der + len;
    std::size_t seq_len = 0;
    if (!get_tag(p, end, seq_len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) return DerStatus::Malformed;
    if (seq_len == 0 || seq_len != static_cast<std::size_t>(end - p)) return DerStatus::Malformed;

    while (p < end) {
        unsigned char tag = 0;
        std::size_t n = 0;
        if (!get_any(p, end, tag, n)) return DerStatus::Malformed;
        const unsigned char* body = p;
        p += n;
        if ((tag & 0xC0) != MBEDTLS_ASN1_CONTEXT_SPECIFIC) return DerStatus::Malformed;
        const bool constructed = (tag & MBEDTLS_ASN1_CONSTRUCTED) != 0;
        const unsigned number = tag & 0x1Fu;
        switch (number) {
        case kOtherName:
            if (!constructed || parse_other_name(body, p, out) != DerStatus::Ok) return DerStatus::Malformed;
            break;
        case kDnsName: {
            if (constructed) return DerStatus::Malformed;
            out.has_san_ids = true;
            std::string_view v = as_text(body, n);
            if (looks_like_dns_id(v)) out.dns_ids.emplace_back(v);  // a NUL or space: ignored
            break;
        }
        case kUri:
            if (constructed) return DerStatus::Malformed;
            out.has_san_ids = true;  // a URI-ID turns CN-IDs off, though XMPP does not use it
            break;
        case kRfc822Name:
        case kIpAddress:
        case kRegisteredId:
            if (constructed) return DerStatus::Malformed;
            break;
        case kX400Address:
        case kDirectoryName:
        case kEdiPartyName:
            if (!constructed) return DerStatus::Malformed;
            break;
        default:
            return DerStatus::Malformed;
        }
    }
    return DerStatus::Ok;
}

DerStatus find_subject_alt_name(const unsigned char* tbs, std::size_t len, DerSpan& san) {
    san = {};
    if (tbs == nullptr) return DerStatus::Malformed;
    const unsigned char* p = tbs;
    const unsigned char* end = tbs + len;
    std::size_t n = 0;
    if (!get_tag(p, end, n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) return DerStatus::Malformed;
    if (n != static_cast<std::size_t>(end - p)) return DerStatus::Malformed;

    bool seen_extensions = false;
    while (p < end) {
        unsigned char tag = 0;
        if (!get_any(p, end, tag, n)) return DerStatus::Malformed;
        const unsigned char* body = p;
        p += n;
        if (tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED | 3)) continue;
        if (seen_extensions) return DerStatus::Malformed;
        seen_extensions = true;

        // extensions [3] EXPLICIT SEQUENCE OF Extension
        const unsigned char* q = body;
        const unsigned char* q_end = p;
        std::size_t list_len = 0;
        if (!get_tag(q, q_end, list_len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) ||
            list_len != static_cast<std::size_t>(q_end - q))
            return DerStatus::Malformed;
        while (q < q_end) {
            // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
            std::size_t ext_len = 0, oid_len = 0, bool_len = 0, value_len = 0;
            if (!get_tag(q, q_end, ext_len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
                return DerStatus::Malformed;
            const unsigned char* ext_end = q + ext_len;
            if (!get_tag(q, ext_end, oid_len, MBEDTLS_ASN1_OID)) return DerStatus::Malformed;
            const unsigned char* oid = q;
            q += oid_len;
            if (q < ext_end && *q == MBEDTLS_ASN1_BOOLEAN) {
                if (!get_tag(q, ext_end, bool_len, MBEDTLS_ASN1_BOOLEAN)) return DerStatus::Malformed;
                q += bool_len;
            }
            if (!get_tag(q, ext_end, value_len, MBEDTLS_ASN1_OCTET_STRING) ||
                value_len != static_cast<std::size_t>(ext_end - q))
                return DerStatus::Malformed;
            if (oid_is(oid, oid_len, kOidSubjectAltName)) {
                if (!san.empty()) return DerStatus::Malformed;  // RFC 5280: at most one of each
                san = {q, value_len};
            }
            q = ext_end;
        }
    }
    return DerStatus::Ok;
}

Identities certificate_identities(const mbedtls_x509_crt& crt) {
    Identities ids;
    DerSpan san;
    if (find_subject_alt_name(crt.tbs.p, crt.tbs.len, san) != DerStatus::Ok ||
        (!san.empty() && parse_general_names(san.data, san.size, ids) != DerStatus::Ok)) {
        Identities bad;
        bad.malformed = true;
        bad.has_san_ids = true;
        return bad;
    }
    for (const mbedtls_x509_name* name = &crt.subject; name != nullptr; name = name->next) {
        if (name->oid.p == nullptr || !oid_is(name->oid.p, name->oid.len, kOidCommonName))
            continue;
        const int t = name->val.tag;
        if (t != MBEDTLS_ASN1_UTF8_STRING && t != MBEDTLS_ASN1_PRINTABLE_STRING && t != MBEDTLS_ASN1_IA5_STRING &&
            t != MBEDTLS_ASN1_T61_STRING)
            continue;
        std::string_view v = as_text(name->val.p, name->val.len);
        if (name->val.p != nullptr && looks_like_dns_id(v)) ids.common_names.emplace_back(v);
    }
    return ids;
}

bool dns_id_matches(std::string_view presented, std::string_view reference) noexcept {
    std::string_view pat = strip_trailing_dot(presented);
    std::string_view ref = strip_trailing_dot(reference);
    if (!looks_like_dns_id(pat) || !valid_reference(ref)) return false;
    if (pat.find('*') == std::string_view::npos) return equal_ci(pat, ref);

    // "*." + at least two labels, no other '*'.
    if (pat.size() < 3 || pat[0] != '*' || pat[1] != '.') return false;
    std::string_view rest = pat.substr(2);
    if (rest.find('*') != std::string_view::npos || rest.find('.') == std::string_view::npos) return false;
    std::size_t dot = ref.find('.');
    if (dot == std::string_view::npos || dot == 0) return false;
    return equal_ci(ref.substr(dot + 1), rest);
}

bool srv_id_matches(std::string_view srv_id, std::string_view domain) noexcept {
    static constexpr std::string_view kService = "_xmpp-server.";
    std::string_view id = strip_trailing_dot(srv_id);
    std::string_view ref = strip_trailing_dot(domain);
    if (id.size() <= kService.size() || !equal_ci(id.substr(0, kService.size()), kService)) return false;
    std::string_view name = id.substr(kService.size());
    if (name.find('*') != std::string_view::npos || !looks_like_dns_id(name) || !valid_reference(ref)) return false;
    return equal_ci(name, ref);
}

bool xmpp_addr_matches(std::string_view xmpp_addr, std::string_view domain) noexcept {
    std::string_view id = strip_trailing_dot(xmpp_addr);
    std::string_view ref = strip_trailing_dot(domain);
    if (!valid_reference(id) || !valid_reference(ref)) return false;  // also rules out '@', '/', '*'
    return equal_ci(id, ref);
}

bool certificate_matches_domain(const Identities& ids, std::string_view domain) noexcept {
    if (ids.malformed) return false;
    for (const auto& id : ids.dns_ids)
        if (dns_id_matches(id, domain)) return true;
    for (const auto& id : ids.srv_ids)
        if (srv_id_matches(id, domain)) return true;
    for (const auto& id : ids.xmpp_addrs)
        if (xmpp_addr_matches(id, domain)) return true;
    if (!ids.has_san_ids)
        for (const auto& id : ids.common_names)
            if (dns_id_matches(id, domain)) return true;
    return false;
}

std::string describe_identities(const Identities& ids) {
    if (ids.malformed) return "(malformed subjectAltName)";
    std::string out;
    auto add = [&out](const char* kind, const std::string& value) {
        if (!out.empty()) out += ' ';
        out += kind;
        out += ':';
        for (char c : value) {
            auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u == 0x7F || c == '\\') {
                static const char hex[] = "0123456789abcdef";
                out += "\\x";
                out += hex[u >> 4];
                out += hex[u & 15];
            } else {
                out += c;
            }
        }
    };
    for (const auto& v : ids.dns_ids) add("DNS", v);
    for (const auto& v : ids.srv_ids) add("SRV", v);
    for (const auto& v : ids.xmpp_addrs) add("XmppAddr", v);
    if (!ids.has_san_ids)
        for (const auto& v : ids.common_names) add("CN", v);
    return out.empty() ? "(none)" : out;
}

}  // namespace s2s::tls
