// What an encrypted private key is, when this TLS library cannot decrypt it (common/tls/tls_keyfile).
#include "common/tls/tls_keyfile.h"

#include "tests/unit/support/test_support.h"

#include <doctest/doctest.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>

#include <cstdlib>
#include <string>

using s2s::test::TempDir;
using s2s::tls::explain_undecryptable_key;

namespace {

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

int parse(const std::string& path, const char* password) {
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
#if MBEDTLS_VERSION_MAJOR >= 3
    int rc = mbedtls_pk_parse_keyfile(&pk, path.c_str(), password, nullptr, nullptr);
#else
    int rc = mbedtls_pk_parse_keyfile(&pk, path.c_str(), password);
#endif
    mbedtls_pk_free(&pk);
    return rc;
}

}  // namespace

TEST_CASE("tls keyfile: OpenSSL 3's default encryption is named, with the commands that convert it") {
    TempDir dir;
    const std::string plain = dir.path() + "/plain.key", aes = dir.path() + "/aes.key", des3 = dir.path() + "/des3.key",
                      compat = dir.path() + "/compat.key";
    REQUIRE(sh("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + plain));
    REQUIRE(sh("openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -in " + plain + " -passout pass:pw -out " + aes));
    REQUIRE(sh("openssl pkcs8 -topk8 -v2 des3 -in " + plain + " -passout pass:pw -out " + des3));
    REQUIRE(sh("openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in " + plain + " -passout pass:pw -out " + compat));

    int rc = parse(aes, "pw");
    if (rc == 0) {
        MESSAGE("this mbedTLS decrypts AES-encrypted PKCS#8 keys");
        return;
    }
    std::string why = explain_undecryptable_key(aes, rc);
    CHECK(why.find("PKCS#8 encrypted with PBES2 (AES-256-CBC, key derived with PBKDF2 and HMAC-SHA256)") !=
          std::string::npos);
    CHECK(why.find("cannot decrypt") != std::string::npos);
    CHECK(why.find("openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in " + aes + " -out " + dir.path() + "/key-compat.pem") !=
          std::string::npos);
    CHECK(why.find("openssl pkey -in " + aes + " -out " + dir.path() + "/key-plain.pem") != std::string::npos);
#if MBEDTLS_VERSION_MAJOR < 3
    CHECK(explain_undecryptable_key(aes, MBEDTLS_ERR_PK_PASSWORD_REQUIRED) == why);
#endif
    // Encryptions it reads, wrong passwords and other files get no such explanation.
    CHECK(parse(des3, "pw") == 0);
    CHECK(parse(compat, "pw") == 0);
    CHECK(explain_undecryptable_key(des3, MBEDTLS_ERR_PK_PASSWORD_REQUIRED).empty());
    CHECK(explain_undecryptable_key(compat, MBEDTLS_ERR_PK_PASSWORD_REQUIRED).empty());
    CHECK(explain_undecryptable_key(aes, MBEDTLS_ERR_PK_PASSWORD_MISMATCH).empty());
    CHECK(explain_undecryptable_key(plain, -1).empty());
    CHECK(explain_undecryptable_key(dir.path() + "/missing.key", -1).empty());
}
