// OpenSSL cipher strings translated to this mbedTLS build's suites (common/tls/tls_ciphers).
#include "common/tls/tls_ciphers.h"

#include <doctest/doctest.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>

#include <string>
#include <vector>

using namespace s2s::tls;

namespace {

// The OpenSSL names of what `text` selects, in order.
std::vector<std::string> names(const std::string& text) {
    CipherSelection sel = select_ciphersuites(text);
    REQUIRE_MESSAGE(sel.error.empty(), text << ": " << sel.error);
    std::vector<std::string> out;
    for (int id : sel.suites) out.push_back(openssl_suite_name(id));
    return out;
}

bool has(const std::vector<std::string>& list, const std::string& name) {
    for (const auto& n : list)
        if (n == name) return true;
    return false;
}

bool any_contains(const std::vector<std::string>& list, const std::string& part) {
    for (const auto& n : list)
        if (n.find(part) != std::string::npos) return true;
    return false;
}

std::string error_of(const std::string& text) { return select_ciphersuites(text).error; }

}  // namespace

TEST_CASE("tls ciphers: OpenSSL names of this build's suites") {
    auto id = [](const char* mbed) { return mbedtls_ssl_get_ciphersuite_id(mbed); };
    CHECK(openssl_suite_name(id("TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384")) == "ECDHE-RSA-AES256-GCM-SHA384");
    CHECK(openssl_suite_name(id("TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256")) == "ECDHE-ECDSA-CHACHA20-POLY1305");
    CHECK(openssl_suite_name(id("TLS-DHE-RSA-WITH-AES-128-GCM-SHA256")) == "DHE-RSA-AES128-GCM-SHA256");
    CHECK(openssl_suite_name(id("TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA")) == "ECDHE-RSA-AES128-SHA");
    CHECK(openssl_suite_name(id("TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256")) == "ECDHE-RSA-AES128-SHA256");
    CHECK(openssl_suite_name(id("TLS-RSA-WITH-AES-128-GCM-SHA256")) == "AES128-GCM-SHA256");
    CHECK(openssl_suite_name(id("TLS-ECDHE-ECDSA-WITH-AES-128-CCM-8")) == "ECDHE-ECDSA-AES128-CCM8");
    CHECK(openssl_suite_name(id("TLS-PSK-WITH-AES-128-CBC-SHA")) == "PSK-AES128-CBC-SHA");
    CHECK(suite_uses_dhe(id("TLS-DHE-RSA-WITH-AES-128-GCM-SHA256")));
    CHECK_FALSE(suite_uses_dhe(id("TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256")));
}

TEST_CASE("tls ciphers: MongooseIM's default selects the TLS 1.2 suites, forward secrecy and AEAD first") {
    auto d = names("TLSv1.2:TLSv1.3");
    CHECK(names("") == d);
    REQUIRE_FALSE(d.empty());
    CHECK(has(d, "ECDHE-ECDSA-AES256-GCM-SHA384"));
    CHECK(has(d, "ECDHE-RSA-AES128-SHA256"));
    CHECK_FALSE(has(d, "ECDHE-RSA-AES128-SHA"));  // SHA-1 MAC suites are TLS 1.0 ones
    CHECK(d.front().rfind("ECDHE-", 0) == 0);
    auto v10 = names("TLSv1.0");
    CHECK(has(v10, "ECDHE-RSA-AES128-SHA"));
    CHECK_FALSE(has(v10, "ECDHE-RSA-AES128-GCM-SHA256"));
}

TEST_CASE("tls ciphers: Mozilla intermediate keeps its order") {
    const std::string mozilla =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";
    std::vector<std::string> want = {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                                     "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                                     "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
                                     "DHE-RSA-AES128-GCM-SHA256",     "DHE-RSA-AES256-GCM-SHA384"};
    auto got = names(mozilla);
    // A TLS 1.3 build appends its TLS 1.3 suites (the string names none).
    got.resize(want.size());
    CHECK(got == want);
    // IANA and mbedTLS spellings name the same suites; separators ',' and spaces too.
    CHECK(names("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls-ecdhe-rsa-with-aes-256-gcm-sha384")[0] ==
          "ECDHE-RSA-AES128-GCM-SHA256");
}

TEST_CASE("tls ciphers: keywords, '+' combinations and exclusions") {
    auto high = names("HIGH:!aNULL:!MD5");
    CHECK(has(high, "ECDHE-RSA-AES256-GCM-SHA384"));
    CHECK(has(high, "DHE-RSA-AES128-SHA"));
    CHECK_FALSE(any_contains(high, "NULL"));

    auto fs = names("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL");
    for (const auto& n : fs) {
        CHECK(n.rfind("ECDHE-", 0) == 0);
        CHECK((n.find("GCM") != std::string::npos || n.find("CHACHA20") != std::string::npos));
    }
    CHECK(has(fs, "ECDHE-ECDSA-CHACHA20-POLY1305"));
    CHECK_FALSE(any_contains(fs, "PSK"));  // ECDHE is authenticated ECDHE, not ECDHE-PSK
    // All the GCM ones come before the ChaCha20 ones: that is the order the string gives.
    size_t first_chacha = 0;
    while (first_chacha < fs.size() && fs[first_chacha].find("CHACHA20") == std::string::npos) ++first_chacha;
    for (size_t i = first_chacha; i < fs.size(); ++i) CHECK(fs[i].find("CHACHA20") != std::string::npos);

    auto def = names("DEFAULT:!RC4");
    CHECK(has(def, "ECDHE-RSA-AES128-GCM-SHA256"));
    CHECK(has(def, "ECDHE-RSA-AES128-SHA"));
    CHECK_FALSE(any_contains(def, "PSK"));

    auto dhe = names("DHE-RSA-AES128-GCM-SHA256");
    CHECK(dhe.front() == "DHE-RSA-AES128-GCM-SHA256");

    auto ecdsa = names("ECDSA+AES256");
    for (const auto& n : ecdsa) CHECK(n.rfind("ECDHE-ECDSA-AES256", 0) == 0);
    auto rsa = names("kRSA+AES128+SHA256");
    CHECK(rsa.front() == "AES128-SHA256");
    auto ab = names("aRSA+SHA384");
    CHECK(has(ab, "ECDHE-RSA-AES256-SHA384"));
    CHECK_FALSE(has(ab, "ECDHE-RSA-AES256-GCM-SHA384"));  // as in OpenSSL: AEAD suites have no MAC
    CHECK(names("EECDH+AES128:EDH+AES128") == names("ECDHE+AES128:DHE+AES128"));
    // Keywords that match nothing in mbedTLS can still be excluded.
    CHECK(names("HIGH:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!SRP:!3DES:!LOW:!MEDIUM") ==
          names("HIGH:!PSK"));
}

TEST_CASE("tls ciphers: '-' removes until added back, '!' for good, '+' moves to the end") {
    auto base = names("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384");
    REQUIRE(base.size() >= 2);
    CHECK(names("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:-AES128:AES128+ECDHE+RSA+AESGCM")[0] ==
          "ECDHE-RSA-AES256-GCM-SHA384");
    CHECK_FALSE(has(names("ECDHE-RSA-AES128-GCM-SHA256:!AES128:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"),
                    "ECDHE-RSA-AES128-GCM-SHA256"));
    CHECK(names("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:+AES128")[0] == "ECDHE-RSA-AES256-GCM-SHA384");
    auto strength = names("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:@STRENGTH");
    CHECK(strength[0] == "ECDHE-RSA-AES256-GCM-SHA384");
    CHECK(names("HIGH:@SECLEVEL=2") == names("HIGH"));
}

TEST_CASE("tls ciphers: unknown words and empty results are refused, naming them") {
    CHECK(error_of("HIGH:FOO") == "unknown cipher or cipher keyword 'FOO'");
    CHECK(error_of("ECDHE+BAR") == "unknown cipher or cipher keyword 'BAR'");
    CHECK(error_of("ECDHE-RSA-AES128-GCM-SHA257").find("'ECDHE-RSA-AES128-GCM-SHA257'") != std::string::npos);
    CHECK(error_of("HIGH:@SECLEVEL=x").find("security level") != std::string::npos);
    CHECK(error_of("ECDHE+").find("empty cipher name") != std::string::npos);
    std::string none = error_of("MEDIUM");
    CHECK(none.find("leaves no cipher suite") != std::string::npos);
    CHECK(error_of("aNULL").find("leaves no cipher suite") != std::string::npos);
    CHECK_FALSE(error_of("HIGH:!HIGH:!TLSv1.3").empty());
}

TEST_CASE("tls ciphers: exclusions of what no mbedTLS build has load and remove nothing") {
    // fast_tls's own default, and the exclusions guides copy from OpenSSL's documentation.
    for (const char* text : {"DEFAULT:!EXPORT:!LOW:!RC4:!SSLv2", "HIGH:!aNULL:!MD5:!kDH", "HIGH:!KRB5:!aGOST:!FZA:-kECDHr"}) {
        CAPTURE(text);
        CHECK(error_of(text).empty());
    }
    CHECK(names("HIGH:!aNULL:!MD5:!kDH") == names("HIGH:!aNULL:!MD5"));
    CHECK_FALSE(error_of("SSLv2").empty());  // selecting only what does not exist leaves nothing
}
