#include "common/tls/tls_keyfile.h"

#include <cstdio>
#include <cstring>
#include <vector>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>

namespace s2s::tls {
namespace {

// Object identifiers of EncryptedPrivateKeyInfo (RFC 5958, RFC 8018) and their names.
struct OidName {
    const char* der;  // the OID's content octets
    std::size_t len;
    const char* name;
};
#define S2S_OID(s, name) {s, sizeof(s) - 1, name}
const OidName kOids[] = {
    S2S_OID("\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d", "PBES2"),
    S2S_OID("\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0c", "PBKDF2"),
    S2S_OID("\x2a\x86\x48\x86\xf7\x0d\x02\x07", "HMAC-SHA1"),
    S2S_OID("\x2a\x86\x48\x86\xf7\x0d\x02\x08", "HMAC-SHA224"),
    S2S_OID("\x2a\x86\x48\x86\xf7\x0d\x02\x09", "HMAC-SHA256"),
    S2S_OID("\x2a\x86\x48\x86\xf7\x0d\x02\x0a", "HMAC-SHA384"),
    S2S_OID("\x2a\x86\x48\x86\xf7\x0d\x02\x0b", "HMAC-SHA512"),
    S2S_OID("\x60\x86\x48\x01\x65\x03\x04\x01\x02", "AES-128-CBC"),
    S2S_OID("\x60\x86\x48\x01\x65\x03\x04\x01\x16", "AES-192-CBC"),
    S2S_OID("\x60\x86\x48\x01\x65\x03\x04\x01\x2a", "AES-256-CBC"),
    S2S_OID("\x2a\x86\x48\x86\xf7\x0d\x03\x07", "DES-EDE3-CBC"),
    S2S_OID("\x2b\x0e\x03\x02\x07", "DES-CBC"),
    S2S_OID("\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x01\x03", "PBE-SHA1-3DES"),
    S2S_OID("\x2b\x06\x01\x04\x01\x97\x55\x0f\x01", "scrypt"),
};
#undef S2S_OID

std::string oid_name(const mbedtls_asn1_buf& oid) {
    for (const auto& o : kOids)
        if (oid.len == o.len && std::memcmp(oid.p, o.der, o.len) == 0) return o.name;
    return "an unknown algorithm";
}

// The file's bytes; empty if unreadable.
std::vector<unsigned char> read_file(const std::string& path) {
    std::vector<unsigned char> out;
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return out;
    unsigned char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && out.size() < (1u << 20)) out.insert(out.end(), buf, buf + n);
    std::fclose(f);
    return out;
}

// "AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY }": the OID and the
// parameters' extent. Advances *p past it.
bool algorithm(unsigned char** p, const unsigned char* end, mbedtls_asn1_buf* oid, unsigned char** params,
               const unsigned char** params_end) {
    std::size_t len;
    if (mbedtls_asn1_get_tag(p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return false;
    const unsigned char* seq_end = *p + len;
    if (mbedtls_asn1_get_tag(p, seq_end, &oid->len, MBEDTLS_ASN1_OID) != 0) return false;
    oid->p = *p;
    *p += oid->len;
    *params = *p;
    *params_end = seq_end;
    *p = const_cast<unsigned char*>(seq_end);
    return true;
}

// The encryption of an EncryptedPrivateKeyInfo in words: "PBES2 (AES-256-CBC, key derived with
// PBKDF2 and HMAC-SHA256)"; "" if `der` is not one, or is one that mbedTLS 2.28 decrypts.
std::string describe_scheme(unsigned char* p, const unsigned char* end) {
    std::size_t len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0) return "";
    end = p + len;
    mbedtls_asn1_buf scheme{};
    unsigned char* params;
    const unsigned char* params_end;
    if (!algorithm(&p, end, &scheme, &params, &params_end)) return "";
    std::string name = oid_name(scheme);
    if (name != "PBES2") return name;
    // PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier, encryptionScheme AlgorithmIdentifier }
    unsigned char* q = params;
    if (mbedtls_asn1_get_tag(&q, params_end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return "PBES2";
    const unsigned char* pbes2_end = q + len;
    mbedtls_asn1_buf kdf{}, cipher{};
    unsigned char* kdf_params;
    const unsigned char* kdf_end;
    unsigned char* cipher_params;
    const unsigned char* cipher_end;
    if (!algorithm(&q, pbes2_end, &kdf, &kdf_params, &kdf_end) ||
        !algorithm(&q, pbes2_end, &cipher, &cipher_params, &cipher_end))
        return "PBES2";
    std::string prf = "HMAC-SHA1";  // PBKDF2's default PRF
    if (oid_name(kdf) == "PBKDF2") {
        // PBKDF2-params ::= SEQUENCE { salt, iterationCount, keyLength OPTIONAL, prf DEFAULT hmacWithSHA1 }
        unsigned char* r = kdf_params;
        if (mbedtls_asn1_get_tag(&r, kdf_end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) == 0) {
            const unsigned char* params_seq_end = r + len;
            int iterations = 0, key_length = 0;
            if (mbedtls_asn1_get_tag(&r, params_seq_end, &len, MBEDTLS_ASN1_OCTET_STRING) == 0) {
                r += len;
                if (mbedtls_asn1_get_int(&r, params_seq_end, &iterations) == 0) {
                    (void)mbedtls_asn1_get_int(&r, params_seq_end, &key_length);
                    mbedtls_asn1_buf prf_oid{};
                    unsigned char* prf_params;
                    const unsigned char* prf_end;
                    if (r < params_seq_end && algorithm(&r, params_seq_end, &prf_oid, &prf_params, &prf_end))
                        prf = oid_name(prf_oid);
                }
            }
        }
        const std::string c = oid_name(cipher);
        if (prf.rfind("HMAC-", 0) == 0 && (c == "DES-EDE3-CBC" || c == "DES-CBC")) return "";  // 2.28 reads it
        return "PBES2 (" + c + ", key derived with PBKDF2 and " + prf + ")";
    }
    return "PBES2 (" + oid_name(cipher) + ", key derived with " + oid_name(kdf) + ")";
}

}  // namespace

std::string explain_undecryptable_key(const std::string& path, int code) {
    if (code == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) return "";
    // Without a password mbedTLS stops before it tries: say now that a password would not help.
    if (code == MBEDTLS_ERR_PK_PASSWORD_REQUIRED && MBEDTLS_VERSION_MAJOR >= 3) return "";
    std::vector<unsigned char> file = read_file(path);
    if (file.empty()) return "";
    std::string scheme;
    static const char kHeader[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    static const char kFooter[] = "-----END ENCRYPTED PRIVATE KEY-----";
    file.push_back('\0');
    if (std::strstr(reinterpret_cast<const char*>(file.data()), kHeader) != nullptr) {
        mbedtls_pem_context pem;
        mbedtls_pem_init(&pem);
        std::size_t used = 0;
        if (mbedtls_pem_read_buffer(&pem, kHeader, kFooter, file.data(), nullptr, 0, &used) == 0) {
            std::vector<unsigned char> der(pem.buf, pem.buf + pem.buflen);
            scheme = describe_scheme(der.data(), der.data() + der.size());
        }
        mbedtls_pem_free(&pem);
    } else if (file[0] == (MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE)) {
        scheme = describe_scheme(file.data(), file.data() + file.size() - 1);
    }
    if (scheme.empty() || scheme == "PBE-SHA1-3DES") return "";
    std::size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    return "the key is PKCS#8 encrypted with " + scheme + ", which this TLS library (" MBEDTLS_VERSION_STRING_FULL
           ") cannot decrypt; convert it once with 'openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in " + path + " -out " +
           dir + "key-compat.pem' (same password, an encryption it reads), or keep it unencrypted (e.g. in a "
           "Kubernetes Secret) with 'openssl pkey -in " + path + " -out " + dir + "key-plain.pem'";
}

}  // namespace s2s::tls
