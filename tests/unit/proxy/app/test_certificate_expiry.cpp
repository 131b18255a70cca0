// proxy/app/certificate_expiry: which certificate files the config presents, and their notAfter as a gauge.
#include <doctest/doctest.h>

#include <mbedtls/x509.h>

#include <fstream>
#include <string>

#include "proxy/app/certificate_expiry.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;

namespace {

std::string keys(const std::vector<PresentedCertificate>& files) {
    std::string out;
    for (const auto& f : files) out += (out.empty() ? "" : " ") + f.key + "=" + f.path;
    return out;
}

}  // namespace

TEST_CASE("certificate_expiry: X.509 times become unix time") {
    mbedtls_x509_time t{};
    t.year = 1970, t.mon = 1, t.day = 1;
    CHECK(unix_time(t) == 0);
    t.year = 2020, t.mon = 2, t.day = 1;
    CHECK(unix_time(t) == 1580515200);
    t.year = 2024, t.mon = 2, t.day = 29, t.hour = 23, t.min = 59, t.sec = 59;
    CHECK(unix_time(t) == 1709251199);
    t.year = 2100, t.mon = 3, t.day = 1, t.hour = 0, t.min = 0, t.sec = 0;  // 2100 is no leap year
    CHECK(unix_time(t) == 4107542400);
}

TEST_CASE("certificate_expiry: the files each TLS context presents, each key once") {
    Config c;
    Listener plain, own, shared;
    plain.tls.present = false;
    own.tls.present = true;
    own.tls.certfile = "/own.pem";
    shared.tls.present = true;
    c.use_starttls_set = true;  // "false": plain listener, no outgoing TLS
    c.listen_s2s = {plain};
    CHECK(keys(presented_certificates(c)).empty());

    c.certfile = "/shared.pem";
    c.domain_certs = {{"a.test", "/a.pem"}, {"b.test", "/b.pem"}};
    c.listen_s2s = {plain, own, shared};
    CHECK(keys(presented_certificates(c)) ==
          "listen.s2s.1.tls.certfile=/own.pem s2s.domain_certfile.0.certfile=/a.pem "
          "s2s.domain_certfile.1.certfile=/b.pem s2s.certfile=/shared.pem");

    // Outgoing TLS alone: the client certificate, and each local domain's own.
    c.listen_s2s.clear();
    c.use_starttls = "optional";
    CHECK(keys(presented_certificates(c)) ==
          "s2s.certfile=/shared.pem s2s.domain_certfile.0.certfile=/a.pem s2s.domain_certfile.1.certfile=/b.pem");
    c.outgoing.tls.present = true;
    c.outgoing.tls.certfile = "/client.pem";
    c.domain_certs.clear();
    CHECK(keys(presented_certificates(c)) == "s2s.outgoing.tls.certfile=/client.pem");

    // The local link: a [[listen.local]] listener with TLS, and local.tls toward the local server.
    c.use_starttls = "false";
    c.outgoing.tls = {};
    c.listen_s2s.clear();
    Listener local;
    local.tls.present = true;
    local.tls.mode = "tls";
    local.tls.certfile = "/local-listener.pem";
    c.listen_local = {Listener{}, local};
    c.local_tls.present = true;
    c.local_tls.mode = "starttls";
    CHECK(keys(presented_certificates(c)) == "listen.local.1.tls.certfile=/local-listener.pem s2s.certfile=/shared.pem");
}

TEST_CASE("certificate_expiry: the leaf's notAfter and subject CN, files that cannot be read named") {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    test::TempDir dir;
    // The key beside the certificate (as s2s.certfile holds it) is not in the way.
    std::ifstream cert(pki.expired.cert), key(pki.expired.key);
    std::string text((std::istreambuf_iterator<char>(cert)), {});
    text.append((std::istreambuf_iterator<char>(key)), {});
    std::string combined = dir.write("expired.pem", text);
    std::string not_pem = dir.write("junk.pem", "not a certificate\n");

    std::vector<std::string> errors;
    auto got = read_certificate_expiry({{"s2s.certfile", combined},
                                        {"listen.s2s.0.tls.certfile", pki.srv.cert},
                                        {"local.tls.certfile", not_pem},
                                        {"s2s.outgoing.tls.certfile", dir.path() + "/missing.pem"}},
                                       &errors);
    REQUIRE(got.size() == 2);
    CHECK(got[0].key == "s2s.certfile");
    CHECK(got[0].subject == "expired.test");
    CHECK(got[0].not_after == 1580515200);  // 2020-02-01T00:00:00Z
    CHECK(got[1].subject == "cn-ignored.test");
    CHECK(got[1].not_after > got[0].not_after);
    REQUIRE(errors.size() == 2);
    CHECK(errors[0] == "local.tls.certfile: cannot read a certificate from '" + not_pem + "'");
    CHECK(errors[1].find("s2s.outgoing.tls.certfile: ") == 0);
}
