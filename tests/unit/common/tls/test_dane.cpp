// DANE matching (common/tls/dane): TLSA records against real certificates from the test PKI.
// The expected digests come from `openssl`, not from the code under test.
#include "common/tls/dane.h"

#include "tests/unit/support/tls_test_ca.h"

#include <doctest/doctest.h>
#include <mbedtls/x509_crt.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace s2s::tls;
using s2s::test::TestPki;

namespace {

// The output of a shell command (binary safe).
std::string capture(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
}

std::string unhex(const std::string& hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

// The command printing the certificate's DER (selector 0) or its SubjectPublicKeyInfo DER (selector 1).
std::string der_command(const std::string& pem, int selector) {
    if (selector == 0) return "openssl x509 -in " + pem + " -outform DER";
    return "openssl x509 -in " + pem + " -noout -pubkey | openssl pkey -pubin -outform DER";
}

std::string selected(const std::string& pem, int selector) { return capture(der_command(pem, selector)); }

// The association data for a record over `pem`, computed by openssl.
std::string association(const std::string& pem, int selector, int matching) {
    if (matching == 0) return selected(pem, selector);
    std::string digest = matching == 1 ? "sha256" : "sha512";
    std::string hex = capture(der_command(pem, selector) + " | openssl dgst -" + digest + " -r | cut -d' ' -f1");
    return unhex(hex.substr(0, matching == 1 ? 64 : 128));
}

TlsaRecord record(int usage, int selector, int matching, const std::string& pem) {
    return TlsaRecord{static_cast<uint8_t>(usage), static_cast<uint8_t>(selector), static_cast<uint8_t>(matching),
                      association(pem, selector, matching)};
}

// A parsed chain: the files in order (leaf first).
struct Chain {
    mbedtls_x509_crt crt;
    explicit Chain(const std::vector<std::string>& files) {
        mbedtls_x509_crt_init(&crt);
        for (auto& f : files) REQUIRE(mbedtls_x509_crt_parse_file(&crt, f.c_str()) == 0);
    }
    ~Chain() { mbedtls_x509_crt_free(&crt); }
};

}  // namespace

TEST_CASE("dane: which records are usable") {
    std::string d32(32, 'x'), d64(64, 'x');
    CHECK(tlsa_usable({3, 1, 1, d32}));
    CHECK(tlsa_usable({2, 0, 2, d64}));
    CHECK(tlsa_usable({3, 0, 0, "der"}));
    CHECK_FALSE(tlsa_usable({0, 0, 1, d32}));  // PKIX-TA: not used
    CHECK_FALSE(tlsa_usable({1, 1, 1, d32}));  // PKIX-EE: not used
    CHECK_FALSE(tlsa_usable({4, 1, 1, d32}));
    CHECK_FALSE(tlsa_usable({3, 2, 1, d32}));
    CHECK_FALSE(tlsa_usable({3, 1, 3, d32}));
    CHECK_FALSE(tlsa_usable({3, 1, 1, d64}));  // digest of the wrong length
    CHECK_FALSE(tlsa_usable({3, 1, 2, d32}));
    CHECK_FALSE(tlsa_usable({3, 0, 0, ""}));
    CHECK(usable_tlsa({{1, 1, 1, d32}, {3, 1, 1, d32}}).size() == 1);
    CHECK(describe_tlsa({3, 1, 1, std::string("\x6b\x0a", 2)}) == "3 1 1 6b0a");
    CHECK(describe_tlsa({3, 1, 1, std::string(32, '\xab')}) == "3 1 1 abababababababab...abababababababab");
}

TEST_CASE("dane: every selector and matching type over DER") {
    const TestPki& pki = TestPki::get();
    REQUIRE(pki.ok());
    std::string der = selected(pki.a.cert, 0);
    REQUIRE(der.size() > 100);
    auto* p = reinterpret_cast<const unsigned char*>(der.data());
    for (int selector : {0, 1})
        for (int matching : {0, 1, 2}) {
            CAPTURE(selector);
            CAPTURE(matching);
            CHECK(tlsa_matches(record(3, selector, matching, pki.a.cert), p, der.size()));
            CHECK_FALSE(tlsa_matches(record(3, selector, matching, pki.c.cert), p, der.size()));
        }
    // One flipped byte of the digest: no match.
    TlsaRecord r = record(3, 1, 1, pki.a.cert);
    r.data[5] ^= 1;
    CHECK_FALSE(tlsa_matches(r, p, der.size()));
    CHECK_FALSE(tlsa_matches(record(3, 1, 1, pki.a.cert), p, der.size() / 2));  // truncated certificate
}

TEST_CASE("dane: DANE-EE needs no CA, name or dates") {
    const TestPki& pki = TestPki::get();
    REQUIRE(pki.ok());
    Chain self({pki.self_signed.cert});
    DaneCheck c = dane_verify({record(3, 1, 1, pki.self_signed.cert)}, self.crt, {"b.test"});
    CHECK(c.matched);
    CHECK(c.detail.find("DANE-EE 3 1 1") == 0);

    Chain expired({pki.expired.cert});
    CHECK(dane_verify({record(3, 0, 1, pki.expired.cert)}, expired.crt, {"other.test"}).matched);

    // Another certificate's record: refused, and the detail lists what was published.
    DaneCheck wrong = dane_verify({record(3, 1, 1, pki.a.cert)}, self.crt, {"self.test"});
    CHECK_FALSE(wrong.matched);
    CHECK(wrong.detail.find("no certificate of the chain matches") != std::string::npos);
    CHECK(wrong.detail.find("DANE-EE 3 1 1") != std::string::npos);
    // A DANE-EE record for the issuer does not make the leaf acceptable.
    Chain a({pki.a.cert, pki.ca});
    CHECK_FALSE(dane_verify({record(3, 1, 1, pki.ca)}, a.crt, {"a.test"}).matched);
}

TEST_CASE("dane: DANE-TA chains to the anchor, then checks the names") {
    const TestPki& pki = TestPki::get();
    REQUIRE(pki.ok());
    Chain a({pki.a.cert, pki.ca});
    for (int selector : {0, 1}) {
        CAPTURE(selector);
        DaneCheck c = dane_verify({record(2, selector, 1, pki.ca)}, a.crt, {"b.test", "a.test"});
        CHECK(c.matched);
        CHECK(c.detail.find("DANE-TA") == 0);
    }
    // Chains, but the certificate is for other names.
    DaneCheck names = dane_verify({record(2, 0, 1, pki.ca)}, a.crt, {"b.test", "xmpp.b.test"});
    CHECK_FALSE(names.matched);
    CHECK(names.detail.find("names none of b.test, xmpp.b.test") != std::string::npos);
    // The anchor must be sent: a leaf alone does not chain to a published CA.
    Chain leaf_only({pki.a.cert});
    CHECK_FALSE(dane_verify({record(2, 0, 1, pki.ca)}, leaf_only.crt, {"a.test"}).matched);
    // The peer sends the published CA, but its leaf was issued by another one.
    Chain foreign({pki.foreign.cert, pki.ca});
    DaneCheck f = dane_verify({record(2, 0, 1, pki.ca)}, foreign.crt, {"a.test"});
    CHECK_FALSE(f.matched);
    CHECK(f.detail.find("does not verify up to the DANE-TA anchor") != std::string::npos);
    // A DANE-TA record for the leaf itself is not an anchor for it.
    CHECK_FALSE(dane_verify({record(2, 0, 1, pki.a.cert)}, leaf_only.crt, {"a.test"}).matched);
}
