#include "common/tls/tls_ciphers.h"

#include <algorithm>
#include <cstdint>

#include <mbedtls/cipher.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <mbedtls/version.h>

#ifndef MBEDTLS_PRIVATE
#define MBEDTLS_PRIVATE(member) member
#endif

namespace s2s::tls {
namespace {

// What a suite is made of, as OpenSSL's keywords see it: one bit per property.
enum Attr : std::uint32_t {
    kRSA = 1u << 0,      // key exchange
    kECDHE = 1u << 1,
    kDHE = 1u << 2,
    kPSK = 1u << 3,
    kDHEPSK = 1u << 4,
    kECDHEPSK = 1u << 5,
    kRSAPSK = 1u << 6,
    kECDH = 1u << 7,     // static ECDH (OpenSSL 1.1 dropped these suites)
    kOther = 1u << 8,    // EC J-PAKE
    aRSA = 1u << 9,      // authentication
    aECDSA = 1u << 10,
    aPSK = 1u << 11,
    aECDH = 1u << 12,
    aAny = 1u << 13,     // TLS 1.3: authentication is chosen apart from the suite
    eAES128 = 1u << 14,  // encryption
    eAES256 = 1u << 15,
    eGCM = 1u << 16,
    eCCM = 1u << 17,
    eCCM8 = 1u << 18,
    eCHACHA20 = 1u << 19,
    eCAMELLIA = 1u << 20,
    eARIA = 1u << 21,
    e3DES = 1u << 22,
    eRC4 = 1u << 23,
    eNULL = 1u << 24,
    mSHA1 = 1u << 25,    // MAC (AEAD suites have none)
    mSHA256 = 1u << 26,
    mSHA384 = 1u << 27,
    mMD5 = 1u << 28,
    vTLS12 = 1u << 29,   // needs TLS 1.2 (AEAD or a SHA-2 MAC), as OpenSSL's "TLSv1.2"
    vTLS13 = 1u << 30,
    vTLS10 = 1u << 31,   // usable since TLS 1.0/SSLv3 (CBC with SHA-1 or MD5)
};
constexpr std::uint32_t kAES = eAES128 | eAES256;
constexpr std::uint32_t kAnyKx = kRSA | kECDHE | kDHE | kPSK | kDHEPSK | kECDHEPSK | kRSAPSK | kECDH | kOther;

// Key exchanges: the attributes and the OpenSSL name prefix. OpenSSL spells the CBC suites of the
// PSK families with "-CBC" ("PSK-AES128-CBC-SHA"), the others without ("DHE-RSA-AES128-SHA").
struct KxRow {
    mbedtls_key_exchange_type_t kx;
    std::uint32_t attrs;
    const char* prefix;
    bool cbc_infix;
};
const KxRow kKx[] = {
    {MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA, kECDHE | aECDSA, "ECDHE-ECDSA-", false},
    {MBEDTLS_KEY_EXCHANGE_ECDHE_RSA, kECDHE | aRSA, "ECDHE-RSA-", false},
    {MBEDTLS_KEY_EXCHANGE_DHE_RSA, kDHE | aRSA, "DHE-RSA-", false},
    {MBEDTLS_KEY_EXCHANGE_RSA, kRSA | aRSA, "", false},
    {MBEDTLS_KEY_EXCHANGE_PSK, kPSK | aPSK, "PSK-", true},
    {MBEDTLS_KEY_EXCHANGE_DHE_PSK, kDHEPSK | aPSK, "DHE-PSK-", true},
    {MBEDTLS_KEY_EXCHANGE_ECDHE_PSK, kECDHEPSK | aPSK, "ECDHE-PSK-", true},
    {MBEDTLS_KEY_EXCHANGE_RSA_PSK, kRSAPSK | aRSA, "RSA-PSK-", true},
    {MBEDTLS_KEY_EXCHANGE_ECDH_RSA, kECDH | aECDH, "ECDH-RSA-", false},
    {MBEDTLS_KEY_EXCHANGE_ECDH_ECDSA, kECDH | aECDH, "ECDH-ECDSA-", false},
    {MBEDTLS_KEY_EXCHANGE_ECJPAKE, kOther, "ECJPAKE-", false},
};

// Ciphers: the attributes, key bits (for @STRENGTH) and the OpenSSL name part; `aead` ciphers carry
// no MAC, and OpenSSL leaves the PRF hash out of the name of CCM and ChaCha20 suites.
struct CipherRow {
    mbedtls_cipher_type_t cipher;
    std::uint32_t attrs;
    int bits;
    const char* name;
    bool aead;
    bool hash_in_name;
};
const CipherRow kCiphers[] = {
    {MBEDTLS_CIPHER_AES_128_GCM, eAES128 | eGCM, 128, "AES128-GCM", true, true},
    {MBEDTLS_CIPHER_AES_256_GCM, eAES256 | eGCM, 256, "AES256-GCM", true, true},
    {MBEDTLS_CIPHER_AES_128_CCM, eAES128 | eCCM, 128, "AES128-CCM", true, false},
    {MBEDTLS_CIPHER_AES_256_CCM, eAES256 | eCCM, 256, "AES256-CCM", true, false},
    {MBEDTLS_CIPHER_CHACHA20_POLY1305, eCHACHA20, 256, "CHACHA20-POLY1305", true, false},
    {MBEDTLS_CIPHER_AES_128_CBC, eAES128, 128, "AES128", false, true},
    {MBEDTLS_CIPHER_AES_256_CBC, eAES256, 256, "AES256", false, true},
    {MBEDTLS_CIPHER_CAMELLIA_128_GCM, eCAMELLIA | eGCM, 128, "CAMELLIA128-GCM", true, true},
    {MBEDTLS_CIPHER_CAMELLIA_256_GCM, eCAMELLIA | eGCM, 256, "CAMELLIA256-GCM", true, true},
    {MBEDTLS_CIPHER_CAMELLIA_128_CBC, eCAMELLIA, 128, "CAMELLIA128", false, true},
    {MBEDTLS_CIPHER_CAMELLIA_256_CBC, eCAMELLIA, 256, "CAMELLIA256", false, true},
    {MBEDTLS_CIPHER_ARIA_128_GCM, eARIA | eGCM, 128, "ARIA128-GCM", true, true},
    {MBEDTLS_CIPHER_ARIA_256_GCM, eARIA | eGCM, 256, "ARIA256-GCM", true, true},
    {MBEDTLS_CIPHER_ARIA_128_CBC, eARIA, 128, "ARIA128", false, true},
    {MBEDTLS_CIPHER_ARIA_256_CBC, eARIA, 256, "ARIA256", false, true},
    {MBEDTLS_CIPHER_DES_EDE3_CBC, e3DES, 112, "DES-CBC3", false, true},
#if MBEDTLS_VERSION_NUMBER < 0x03000000
    {MBEDTLS_CIPHER_ARC4_128, eRC4, 128, "RC4", false, true},
#endif
    {MBEDTLS_CIPHER_NULL, eNULL, 0, "NULL", false, true},
};

struct MacRow {
    mbedtls_md_type_t md;
    std::uint32_t attrs;
    const char* suffix;
};
const MacRow kMacs[] = {
    {MBEDTLS_MD_SHA1, mSHA1, "-SHA"},
    {MBEDTLS_MD_SHA256, mSHA256, "-SHA256"},
    {MBEDTLS_MD_SHA384, mSHA384, "-SHA384"},
    {MBEDTLS_MD_MD5, mMD5, "-MD5"},
};

// OpenSSL's keywords and what each matches. A keyword whose `none` is every bit matches no suite
// of any mbedTLS build: it is accepted so that "!aNULL" and the like can be written.
struct Keyword {
    const char* word;
    std::uint32_t any;   // the suite has at least one of these (0: no condition)
    std::uint32_t also;  // and at least one of these (0: no condition)
    std::uint32_t none;  // and none of these
};
const Keyword kKeywords[] = {
    {"ALL", 0, 0, eNULL},
    {"COMPLEMENTOFALL", eNULL, 0, 0},
    // OpenSSL's DEFAULT: ALL without the unauthenticated, PSK/SRP and NULL suites.
    {"DEFAULT", 0, 0, eNULL | aPSK | kPSK | kDHEPSK | kECDHEPSK | kRSAPSK | e3DES | eRC4},
    {"COMPLEMENTOFDEFAULT", aPSK | kPSK | kDHEPSK | kECDHEPSK | kRSAPSK | e3DES | eRC4, 0, eNULL},
    // HIGH: keys of 128 bits and more, 3DES not included (OpenSSL 1.1+).
    {"HIGH", kAES | eCHACHA20 | eCAMELLIA | eARIA, 0, 0},
    {"MEDIUM", e3DES | eRC4, 0, 0},
    {"LOW", 0, 0, ~0u},
    {"EXPORT", 0, 0, ~0u},
    {"EXP", 0, 0, ~0u},
    {"TLSv1.3", vTLS13, 0, 0},
    {"TLSv1.2", vTLS12, 0, 0},
    {"TLSv1.0", vTLS10, 0, 0},
    {"TLSv1", vTLS10, 0, 0},
    {"SSLv3", vTLS10, 0, 0},
    {"kRSA", kRSA, 0, 0},
    {"RSA", kRSA, 0, 0},
    {"aRSA", aRSA, 0, 0},
    {"kECDHE", kECDHE, 0, 0},
    {"kEECDH", kECDHE, 0, 0},
    {"ECDHE", kECDHE, 0, 0},
    {"EECDH", kECDHE, 0, 0},
    {"ECDH", kECDHE | kECDHEPSK, 0, 0},
    {"kDHE", kDHE, 0, 0},
    {"kEDH", kDHE, 0, 0},
    {"DHE", kDHE, 0, 0},
    {"EDH", kDHE, 0, 0},
    {"DH", kDHE | kDHEPSK, 0, 0},
    {"kECDH", kECDH, 0, 0},
    {"aECDSA", aECDSA, 0, 0},
    {"ECDSA", aECDSA, 0, 0},
    {"aECDH", aECDH, 0, 0},
    {"PSK", kPSK | kDHEPSK | kECDHEPSK | kRSAPSK | aPSK, 0, 0},
    {"kPSK", kPSK, 0, 0},
    {"aPSK", aPSK, 0, 0},
    {"kDHEPSK", kDHEPSK, 0, 0},
    {"kECDHEPSK", kECDHEPSK, 0, 0},
    {"kRSAPSK", kRSAPSK, 0, 0},
    // Anonymous key exchange, SRP, DSS, GOST, IDEA, SEED, RC2 and DES do not exist in mbedTLS.
    {"aNULL", 0, 0, ~0u},
    {"ADH", 0, 0, ~0u},
    {"AECDH", 0, 0, ~0u},
    {"SRP", 0, 0, ~0u},
    {"kSRP", 0, 0, ~0u},
    {"aSRP", 0, 0, ~0u},
    {"aDSS", 0, 0, ~0u},
    {"DSS", 0, 0, ~0u},
    {"DES", 0, 0, ~0u},
    {"IDEA", 0, 0, ~0u},
    {"SEED", 0, 0, ~0u},
    {"RC2", 0, 0, ~0u},
    // Protocols and key exchanges no mbedTLS build has (SSLv2, fixed DH, Kerberos, GOST, Fortezza):
    // "!SSLv2" and the like, as in fast_tls's own default, load and remove nothing.
    {"SSLv2", 0, 0, ~0u},
    {"kDH", 0, 0, ~0u},
    {"kDHr", 0, 0, ~0u},
    {"kDHd", 0, 0, ~0u},
    {"aDH", 0, 0, ~0u},
    {"kECDHr", 0, 0, ~0u},
    {"kECDHe", 0, 0, ~0u},
    {"KRB5", 0, 0, ~0u},
    {"kKRB5", 0, 0, ~0u},
    {"aKRB5", 0, 0, ~0u},
    {"aGOST", 0, 0, ~0u},
    {"aGOST01", 0, 0, ~0u},
    {"kGOST", 0, 0, ~0u},
    {"GOST89MAC", 0, 0, ~0u},
    {"GOST94", 0, 0, ~0u},
    {"FZA", 0, 0, ~0u},
    {"aFZA", 0, 0, ~0u},
    {"kFZA", 0, 0, ~0u},
    {"eFZA", 0, 0, ~0u},
    {"eNULL", eNULL, 0, 0},
    {"NULL", eNULL, 0, 0},
    {"RC4", eRC4, 0, 0},
    {"3DES", e3DES, 0, 0},
    {"AES", kAES, 0, 0},
    {"AES128", eAES128, 0, 0},
    {"AES256", eAES256, 0, 0},
    {"AESGCM", kAES, eGCM, 0},
    {"AESCCM", kAES, eCCM, 0},
    {"AESCCM8", kAES, eCCM8, 0},
    {"CHACHA20", eCHACHA20, 0, 0},
    {"CAMELLIA", eCAMELLIA, 0, 0},
    {"ARIA", eARIA, 0, 0},
    {"ARIAGCM", eARIA, eGCM, 0},
    {"MD5", mMD5, 0, 0},
    {"SHA1", mSHA1, 0, 0},
    {"SHA", mSHA1, 0, 0},
    {"SHA256", mSHA256, 0, 0},
    {"SHA384", mSHA384, 0, 0},
};

struct Suite {
    int id;
    std::uint32_t attrs;
    int bits;
    std::string openssl;  // "" when OpenSSL has no name for it
    std::string iana;     // "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    std::string mbedtls;  // "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256"
};

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - ('a' - 'A'));
    return out;
}

bool is_tls13(const mbedtls_ssl_ciphersuite_t* cs) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    return cs->MBEDTLS_PRIVATE(min_tls_version) >= 0x0304;
#else
    (void)cs;
    return false;
#endif
}

bool needs_tls12(const mbedtls_ssl_ciphersuite_t* cs) {
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    (void)cs;
    return false;  // decided by the MAC below, as OpenSSL does
#else
    return cs->min_minor_ver >= MBEDTLS_SSL_MINOR_VERSION_3;
#endif
}

Suite describe(int id) {
    Suite s{id, 0, 0, "", "", ""};
    const mbedtls_ssl_ciphersuite_t* cs = mbedtls_ssl_ciphersuite_from_id(id);
    if (cs == nullptr) return s;
    s.mbedtls = cs->MBEDTLS_PRIVATE(name);
    // IANA spelling: '_' for '-', and TLS 1.3's "TLS1-3-" prefix is "TLS_".
    s.iana = s.mbedtls.rfind("TLS1-3-", 0) == 0 ? "TLS-" + s.mbedtls.substr(7) : s.mbedtls;
    std::replace(s.iana.begin(), s.iana.end(), '-', '_');

    const CipherRow* cipher = nullptr;
    for (const auto& row : kCiphers)
        if (row.cipher == cs->MBEDTLS_PRIVATE(cipher)) cipher = &row;
    const MacRow* mac = nullptr;
    for (const auto& row : kMacs)
        if (row.md == cs->MBEDTLS_PRIVATE(mac)) mac = &row;
    if (cipher != nullptr) {
        s.attrs |= cipher->attrs;
        s.bits = cipher->bits;
        if ((cipher->attrs & eCCM) && (cs->MBEDTLS_PRIVATE(flags) & MBEDTLS_CIPHERSUITE_SHORT_TAG)) s.attrs |= eCCM8;
    }
    if (is_tls13(cs)) {
        s.attrs |= vTLS13 | aAny;
        s.openssl = s.iana;  // OpenSSL uses the IANA names for TLS 1.3
        return s;
    }
    const bool aead = cipher != nullptr && cipher->aead;
    if (!aead && mac != nullptr) s.attrs |= mac->attrs;
    if (aead || (mac != nullptr && mac->md != MBEDTLS_MD_SHA1 && mac->md != MBEDTLS_MD_MD5) || needs_tls12(cs))
        s.attrs |= vTLS12;
    else
        s.attrs |= vTLS10;

    const KxRow* kx = nullptr;
    for (const auto& row : kKx)
        if (row.kx == cs->MBEDTLS_PRIVATE(key_exchange)) kx = &row;
    if (kx != nullptr) s.attrs |= kx->attrs;
    if (kx == nullptr || cipher == nullptr || mac == nullptr) {
        s.openssl = s.iana;
        return s;
    }
    s.openssl = kx->prefix;
    s.openssl += cipher->name;
    if (!cipher->aead && kx->cbc_infix && (cipher->attrs & (kAES | eCAMELLIA | eARIA))) s.openssl += "-CBC";
    if ((s.attrs & eCCM8) != 0) s.openssl += "8";
    if (cipher->hash_in_name) s.openssl += mac->suffix;
    return s;
}

// Every suite this build has, in its order of preference.
const std::vector<Suite>& universe() {
    static const std::vector<Suite> all = [] {
        std::vector<Suite> out;
        for (const int* id = mbedtls_ssl_list_ciphersuites(); *id != 0; ++id) out.push_back(describe(*id));
        return out;
    }();
    return all;
}

bool matches(const Keyword& k, std::uint32_t attrs) {
    if (k.none == ~0u) return false;
    if (k.any != 0 && (attrs & k.any) == 0) return false;
    if (k.also != 0 && (attrs & k.also) == 0) return false;
    return (attrs & k.none) == 0;
}

// The suites one word matches (index into universe()); false if the word is unknown.
bool match_word(std::string_view word, std::vector<bool>& out) {
    const auto& all = universe();
    out.assign(all.size(), false);
    for (const auto& k : kKeywords) {
        if (word != k.word) continue;
        // As in OpenSSL, TLS 1.3 suites answer to their names and "TLSv1.3" only.
        for (size_t i = 0; i < all.size(); ++i)
            out[i] = matches(k, all[i].attrs) && ((all[i].attrs & vTLS13) == 0 || k.any == vTLS13);
        return true;
    }
    const std::string u = upper(word);
    bool found = false;
    for (size_t i = 0; i < all.size(); ++i)
        if (u == upper(all[i].openssl) || u == all[i].iana || u == all[i].mbedtls) out[i] = found = true;
    return found;
}

bool is_separator(char c) { return c == ':' || c == ',' || c == ' ' || c == '\t'; }

}  // namespace

CipherSelection select_ciphersuites(std::string_view text) {
    CipherSelection result;
    if (text.find_first_not_of(" \t:,") == std::string_view::npos) text = "TLSv1.2:TLSv1.3";
    const auto& all = universe();
    std::vector<size_t> order;              // indices into all, in preference order
    std::vector<bool> listed(all.size(), false), killed(all.size(), false);
    bool names_tls13 = false;

    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_separator(text[i])) ++i;
        size_t j = i;
        while (j < text.size() && !is_separator(text[j])) ++j;
        if (j == i) break;
        std::string_view element = text.substr(i, j - i);
        i = j;

        if (element == "@STRENGTH") {
            std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return all[a].bits > all[b].bits; });
            continue;
        }
        if (element.rfind("@SECLEVEL=", 0) == 0) {
            std::string_view n = element.substr(10);
            if (n.size() != 1 || n[0] < '0' || n[0] > '5') {
                result.error = "'" + std::string(element) + "': the security level must be 0 to 5";
                return result;
            }
            continue;
        }
        char op = 0;
        if (element[0] == '!' || element[0] == '-' || element[0] == '+') {
            op = element[0];
            element.remove_prefix(1);
        }
        // "A+B": the suites every part matches.
        std::vector<bool> selected(all.size(), true), part;
        size_t p = 0;
        while (p <= element.size()) {
            size_t q = element.find('+', p);
            if (q == std::string_view::npos) q = element.size();
            std::string_view word = element.substr(p, q - p);
            if (word.empty() || !match_word(word, part)) {
                result.error = word.empty() ? "'" + std::string(element) + "': an empty cipher name"
                                            : "unknown cipher or cipher keyword '" + std::string(word) + "'";
                return result;
            }
            for (size_t k = 0; k < all.size(); ++k) selected[k] = selected[k] && part[k];
            p = q + 1;
        }
        for (size_t k = 0; k < all.size(); ++k)
            if (selected[k] && (all[k].attrs & vTLS13)) names_tls13 = true;

        switch (op) {
            case 0:
                for (size_t k = 0; k < all.size(); ++k)
                    if (selected[k] && !listed[k] && !killed[k]) {
                        listed[k] = true;
                        order.push_back(k);
                    }
                break;
            case '!':
                for (size_t k = 0; k < all.size(); ++k)
                    if (selected[k]) killed[k] = true;
                [[fallthrough]];
            case '-':
                order.erase(std::remove_if(order.begin(), order.end(), [&](size_t k) { return selected[k]; }),
                            order.end());
                for (size_t k = 0; k < all.size(); ++k)
                    if (selected[k]) listed[k] = false;
                break;
            case '+':
                std::stable_partition(order.begin(), order.end(), [&](size_t k) { return !selected[k]; });
                break;
        }
    }
    // TLS 1.3 suites stand apart from the cipher string in OpenSSL: kept unless the string names them.
    if (!names_tls13)
        for (size_t k = 0; k < all.size(); ++k)
            if ((all[k].attrs & vTLS13) && !listed[k] && !killed[k]) order.push_back(k);
    for (size_t k : order) result.suites.push_back(all[k].id);
    if (result.suites.empty())
        result.error = "'" + std::string(text) + "' leaves no cipher suite that this TLS library (" +
                       MBEDTLS_VERSION_STRING_FULL + ") has" +
                       (names_tls13 || text.find("TLSv1.3") != std::string_view::npos
                            ? " (TLS 1.3 suites need mbedTLS 3.6 or later; add TLSv1.2)"
                            : "");
    return result;
}

std::string openssl_suite_name(int id) {
    for (const auto& s : universe())
        if (s.id == id) return s.openssl;
    return describe(id).openssl;
}

bool suite_uses_dhe(int id) {
    for (const auto& s : universe())
        if (s.id == id) return (s.attrs & (kDHE | kDHEPSK)) != 0;
    return false;
}

}  // namespace s2s::tls
