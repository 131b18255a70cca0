// RFC 6125 identity matching and the subjectAltName DER parser (common/tls/tls_identity).
#include "common/tls/tls_identity.h"

#include "tests/unit/support/tls_test_ca.h"

#include <doctest/doctest.h>
#include <mbedtls/x509_crt.h>

#include <string>
#include <vector>

using namespace s2s::tls;

namespace {

// ---- a tiny DER writer for hand-made extensions ----
std::string der(unsigned char tag, const std::string& content) {
    std::string out(1, static_cast<char>(tag));
    std::size_t n = content.size();
    if (n < 0x80) {
        out += static_cast<char>(n);
    } else if (n < 0x100) {
        out += '\x81';
        out += static_cast<char>(n);
    } else {
        out += '\x82';
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xFF);
    }
    return out + content;
}

const std::string kOidSrv("\x2B\x06\x01\x05\x05\x07\x08\x07", 8);
const std::string kOidXmpp("\x2B\x06\x01\x05\x05\x07\x08\x05", 8);
const std::string kOidUpn("\x2B\x06\x01\x04\x01\x82\x37\x14\x02\x03", 10);  // 1.3.6.1.4.1.311.20.2.3

std::string dns_name(const std::string& s) { return der(0x82, s); }
std::string uri(const std::string& s) { return der(0x86, s); }
std::string ip(const std::string& s) { return der(0x87, s); }
std::string other_name(const std::string& oid, unsigned char str_tag, const std::string& value) {
    return der(0xA0, der(0x06, oid) + der(0xA0, der(str_tag, value)));
}
std::string srv_id(const std::string& s) { return other_name(kOidSrv, 0x16, s); }     // IA5String
std::string xmpp_addr(const std::string& s) { return other_name(kOidXmpp, 0x0C, s); }  // UTF8String
std::string general_names(const std::string& names) { return der(0x30, names); }

DerStatus parse(const std::string& bytes, Identities& ids) {
    return parse_general_names(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), ids);
}

Identities parsed(const std::string& bytes) {
    Identities ids;
    REQUIRE(parse(bytes, ids) == DerStatus::Ok);
    return ids;
}

// A certificate from the test PKI, parsed by mbedTLS.
struct ParsedCert {
    mbedtls_x509_crt crt;
    explicit ParsedCert(const std::string& path) {
        mbedtls_x509_crt_init(&crt);
        REQUIRE(mbedtls_x509_crt_parse_file(&crt, path.c_str()) == 0);
    }
    ~ParsedCert() { mbedtls_x509_crt_free(&crt); }
};

const s2s::test::TestPki& pki() {
    const auto& p = s2s::test::TestPki::get();
    REQUIRE_MESSAGE(p.ok(), p.error());
    return p;
}

}  // namespace

TEST_CASE("tls identity: RFC 6125 DNS-ID table") {
    struct Row {
        const char* presented;
        const char* reference;
        bool match;
    };
    const Row rows[] = {
        {"example.org", "example.org", true},
        {"EXAMPLE.Org", "example.ORG", true},          // ASCII case-insensitive
        {"example.org.", "example.org", true},         // trailing dot ignored
        {"example.org", "example.org.", true},
        {"example.org", "example.com", false},
        {"example.org", "xample.org", false},
        {"example.org", "a.example.org", false},
        {"*.example.org", "a.example.org", true},
        {"*.example.org", "A.EXAMPLE.ORG", true},
        {"*.example.org", "example.org", false},       // the wildcard needs a label
        {"*.example.org", "a.b.example.org", false},   // exactly one label
        {"*.example.org", ".example.org", false},
        {"f*.example.org", "foo.example.org", false},  // partial-label wildcards: never
        {"*o.example.org", "foo.example.org", false},
        {"a.*.example.org", "a.b.example.org", false}, // not left-most
        {"*.*.org", "a.b.org", false},
        {"*.org", "example.org", false},               // too broad: fewer than two labels after it
        {"*", "example", false},
        {"**.example.org", "a.example.org", false},
        {"xn--bcher-kva.example", "xn--bcher-kva.example", true},   // A-labels compare as ASCII
        {"xn--bcher-kva.example", "XN--BCHER-KVA.example", true},
        {"*.xn--bcher-kva.example", "a.xn--bcher-kva.example", true},
        {"xn--bcher-kva.example", "b\xC3\xBC" "cher.example", false},  // no U-label conversion here
        {"example.org", "", false},
        {"", "example.org", false},
        {"a..example.org", "a..example.org", false},  // empty label
        {"exa mple.org", "exa mple.org", false},      // spaces are not allowed
        {"example.org", "*.example.org", false},      // a reference is never a pattern
        {"*.example.org", "*.example.org", false},
    };
    for (const Row& r : rows) {
        const std::string presented = r.presented, reference = r.reference;
        CAPTURE(presented);
        CAPTURE(reference);
        CHECK(dns_id_matches(r.presented, r.reference) == r.match);
    }
    // An embedded NUL must not truncate the comparison.
    CHECK_FALSE(dns_id_matches(std::string_view("example.org\0.evil.test", 22), "example.org"));
}

TEST_CASE("tls identity: SRV-ID, XmppAddr and CN rules") {
    CHECK(srv_id_matches("_xmpp-server.example.org", "example.org"));
    CHECK(srv_id_matches("_XMPP-Server.Example.org.", "example.org"));
    CHECK_FALSE(srv_id_matches("_xmpp-client.example.org", "example.org"));  // wrong service
    CHECK_FALSE(srv_id_matches("_xmpps-server.example.org", "example.org"));
    CHECK_FALSE(srv_id_matches("_xmpp-server.*.org", "example.org"));        // no wildcards
    CHECK_FALSE(srv_id_matches("_xmpp-server.*.example.org", "a.example.org"));
    CHECK_FALSE(srv_id_matches("_xmpp-server.", "example.org"));
    CHECK_FALSE(srv_id_matches("example.org", "example.org"));

    CHECK(xmpp_addr_matches("example.org", "example.org"));
    CHECK(xmpp_addr_matches("Example.ORG", "example.org"));
    CHECK_FALSE(xmpp_addr_matches("user@example.org", "example.org"));  // a user, not the domain
    CHECK_FALSE(xmpp_addr_matches("example.org/res", "example.org"));
    CHECK_FALSE(xmpp_addr_matches("*.example.org", "a.example.org"));

    Identities cn_only;
    cn_only.common_names = {"cn.test"};
    CHECK(certificate_matches_domain(cn_only, "cn.test"));
    Identities cn_and_dns = cn_only;
    cn_and_dns.dns_ids = {"other.test"};
    cn_and_dns.has_san_ids = true;
    CHECK_FALSE(certificate_matches_domain(cn_and_dns, "cn.test"));  // RFC 6125 §6.4.4
    CHECK(certificate_matches_domain(cn_and_dns, "other.test"));
    Identities cn_and_uri = cn_only;
    cn_and_uri.has_san_ids = true;  // e.g. only a URI-ID (or an invalid DNS-ID) was present
    CHECK_FALSE(certificate_matches_domain(cn_and_uri, "cn.test"));
    Identities wild_cn;
    wild_cn.common_names = {"*.w.test"};
    CHECK(certificate_matches_domain(wild_cn, "x.w.test"));

    Identities srv;
    srv.srv_ids = {"_xmpp-server.b.test"};
    srv.xmpp_addrs = {"c.test"};
    srv.has_san_ids = true;
    CHECK(certificate_matches_domain(srv, "b.test"));
    CHECK(certificate_matches_domain(srv, "c.test"));
    CHECK_FALSE(certificate_matches_domain(srv, "d.test"));

    Identities bad = srv;
    bad.malformed = true;
    CHECK_FALSE(certificate_matches_domain(bad, "b.test"));
    CHECK(describe_identities(bad) == "(malformed subjectAltName)");
    CHECK(describe_identities(srv) == "SRV:_xmpp-server.b.test XmppAddr:c.test");
    CHECK(describe_identities(Identities{}) == "(none)");
}

TEST_CASE("tls identity: GeneralNames parser, valid input") {
    Identities ids = parsed(general_names(dns_name("a.test") + srv_id("_xmpp-server.b.test") + xmpp_addr("c.test") +
                                          ip("\x7F\x00\x00\x01") + other_name(kOidUpn, 0x0C, "user@corp")));
    CHECK(ids.dns_ids == std::vector<std::string>{"a.test"});
    CHECK(ids.srv_ids == std::vector<std::string>{"_xmpp-server.b.test"});
    CHECK(ids.xmpp_addrs == std::vector<std::string>{"c.test"});
    CHECK(ids.has_san_ids);
    CHECK(certificate_matches_domain(ids, "a.test"));
    CHECK(certificate_matches_domain(ids, "b.test"));
    CHECK(certificate_matches_domain(ids, "c.test"));
    CHECK_FALSE(certificate_matches_domain(ids, "corp"));

    // A directoryName and an rfc822Name are skipped; a URI alone still disables CN-IDs.
    Identities only_uri = parsed(general_names(uri("xmpp:a.test") + der(0xA4, der(0x30, "")) + der(0x81, "x@y")));
    CHECK(only_uri.has_san_ids);
    CHECK(only_uri.empty());

    // Invalid names are dropped, but still count as present (no CN fallback).
    Identities nul = parsed(general_names(dns_name(std::string("a.test\0.evil", 12)) + dns_name("b c.test") +
                                          xmpp_addr("bad\x01.test") + xmpp_addr("\xC3\x28.test")));
    CHECK(nul.empty());
    CHECK(nul.has_san_ids);

    // Long names use multi-byte lengths.
    std::string long_name(200, 'a');
    long_name += ".test";
    Identities longer = parsed(general_names(dns_name(long_name)));
    CHECK(longer.dns_ids == std::vector<std::string>{long_name});
}

TEST_CASE("tls identity: GeneralNames parser rejects malformed DER") {
    const std::string good = general_names(dns_name("a.test") + srv_id("_xmpp-server.b.test") + xmpp_addr("c.test"));
    Identities ids;
    // Every truncation is malformed (the outer length no longer fits), and never crashes.
    for (std::size_t n = 0; n < good.size(); ++n) {
        CAPTURE(n);
        Identities t;
        CHECK(parse(good.substr(0, n), t) == DerStatus::Malformed);
    }
    // Every single-byte corruption parses or fails cleanly (run under ASan in `make asan`).
    for (std::size_t i = 0; i < good.size(); ++i)
        for (int v : {0x00, 0x01, 0x30, 0x7F, 0x80, 0x81, 0x84, 0xA0, 0xFF}) {
            std::string m = good;
            m[i] = static_cast<char>(v);
            Identities t;
            (void)parse(m, t);
        }

    struct Row {
        const char* what;
        std::string bytes;
    };
    const Row rows[] = {
        {"empty input", ""},
        {"not a SEQUENCE", der(0x31, dns_name("a.test"))},
        {"empty SEQUENCE", general_names("")},
        {"trailing bytes", general_names(dns_name("a.test")) + "x"},
        {"inner length past the end", general_names(std::string("\x82\x10" "a.test", 8))},
        {"4-byte length overflow", general_names(std::string("\x82\x84\xFF\xFF\xFF\xF0" "a", 7))},
        {"indefinite length", general_names(std::string("\x82\x80" "a.test", 8))},
        {"universal tag inside", general_names(der(0x16, "a.test"))},
        {"high tag number", general_names(std::string("\x9F\x20\x01" "a", 4))},
        {"unknown GeneralName [9]", general_names(der(0x89, "a"))},
        {"constructed dNSName", general_names(der(0xA2, dns_name("a.test")))},
        {"primitive otherName", general_names(der(0x80, kOidSrv))},
        {"primitive directoryName", general_names(der(0x84, "x"))},
        {"otherName without OID", general_names(der(0xA0, der(0xA0, der(0x16, "_xmpp-server.b.test"))))},
        {"otherName without value", general_names(der(0xA0, der(0x06, kOidSrv)))},
        {"SRV-ID as UTF8String", general_names(other_name(kOidSrv, 0x0C, "_xmpp-server.b.test"))},
        {"XmppAddr as IA5String", general_names(other_name(kOidXmpp, 0x16, "b.test"))},
        {"otherName value with trailing bytes",
         general_names(der(0xA0, der(0x06, kOidSrv) + der(0xA0, der(0x16, "_xmpp-server.b.test") + "zz")))},
        {"OID length past its otherName", general_names(der(0xA0, std::string("\x06\x40", 2) + kOidSrv))},
    };
    for (const Row& r : rows) {
        const std::string what = r.what;
        CAPTURE(what);
        Identities t;
        CHECK(parse(r.bytes, t) == DerStatus::Malformed);
    }
    CHECK(parse_general_names(nullptr, 0, ids) == DerStatus::Malformed);
}

TEST_CASE("tls identity: finding subjectAltName in a TBSCertificate") {
    const auto& p = pki();
    ParsedCert a(p.a.cert);
    DerSpan san;
    REQUIRE(find_subject_alt_name(a.crt.tbs.p, a.crt.tbs.len, san) == DerStatus::Ok);
    REQUIRE_FALSE(san.empty());
    Identities ids;
    REQUIRE(parse_general_names(san.data, san.size, ids) == DerStatus::Ok);
    CHECK(ids.dns_ids == std::vector<std::string>{"a.test"});

    ParsedCert cn(p.cn_only.cert);
    REQUIRE(find_subject_alt_name(cn.crt.tbs.p, cn.crt.tbs.len, san) == DerStatus::Ok);
    CHECK(san.empty());

    for (std::size_t n = 0; n < a.crt.tbs.len; n += 7) {
        CAPTURE(n);
        CHECK(find_subject_alt_name(a.crt.tbs.p, n, san) == DerStatus::Malformed);
    }

    // A hand-made TBS with two subjectAltName extensions is malformed (RFC 5280 §4.2).
    const std::string san_ext = der(0x30, der(0x06, "\x55\x1D\x11") + der(0x04, general_names(dns_name("a.test"))));
    const std::string critical_san =
        der(0x30, der(0x06, "\x55\x1D\x11") + der(0x01, "\xFF") + der(0x04, general_names(dns_name("b.test"))));
    auto tbs = [](const std::string& exts) {
        return der(0x30, der(0xA0, der(0x02, "\x02")) + der(0x02, "\x01") + der(0x30, "") + der(0xA3, der(0x30, exts)));
    };
    auto find = [](const std::string& t, DerSpan& s) {
        return find_subject_alt_name(reinterpret_cast<const unsigned char*>(t.data()), t.size(), s);
    };
    const std::string one = tbs(critical_san);
    REQUIRE(find(one, san) == DerStatus::Ok);
    Identities crit;
    REQUIRE(parse_general_names(san.data, san.size, crit) == DerStatus::Ok);
    CHECK(crit.dns_ids == std::vector<std::string>{"b.test"});
    const std::string two = tbs(san_ext + san_ext);
    CHECK(find(two, san) == DerStatus::Malformed);
    CHECK(find(tbs(der(0x30, der(0x06, "\x55\x1D\x11")) + san_ext), san) == DerStatus::Malformed);  // no value
    CHECK(find(tbs(der(0x30, der(0x06, "\x55\x1D\x11") + der(0x04, "") + "x")), san) == DerStatus::Malformed);
}

TEST_CASE("tls identity: identities of real certificates") {
    const auto& p = pki();
    {
        ParsedCert c(p.a.cert);
        Identities ids = certificate_identities(c.crt);
        CHECK(ids.dns_ids == std::vector<std::string>{"a.test"});
        CHECK(ids.common_names == std::vector<std::string>{"a.test"});
        CHECK(certificate_matches_domain(ids, "a.test"));
        CHECK_FALSE(certificate_matches_domain(ids, "b.test"));
        CHECK(describe_identities(ids) == "DNS:a.test");
    }
    {
        ParsedCert c(p.srv.cert);
        Identities ids = certificate_identities(c.crt);
        CHECK(ids.srv_ids == std::vector<std::string>{"_xmpp-server.b.test"});
        CHECK(ids.xmpp_addrs == std::vector<std::string>{"b.test"});
        CHECK(ids.dns_ids.empty());
        CHECK(certificate_matches_domain(ids, "b.test"));
        CHECK_FALSE(certificate_matches_domain(ids, "cn-ignored.test"));  // SANs present: CN is not an identity
    }
    {
        ParsedCert c(p.cn_only.cert);
        Identities ids = certificate_identities(c.crt);
        CHECK_FALSE(ids.has_san_ids);
        CHECK(certificate_matches_domain(ids, "cn.test"));
        CHECK(describe_identities(ids) == "CN:cn.test");
    }
    {
        ParsedCert c(p.wildcard.cert);
        Identities ids = certificate_identities(c.crt);
        CHECK(certificate_matches_domain(ids, "x.w.test"));
        CHECK_FALSE(certificate_matches_domain(ids, "w.test"));
        CHECK_FALSE(certificate_matches_domain(ids, "y.x.w.test"));
        CHECK_FALSE(certificate_matches_domain(ids, "wild"));  // its CN does not count
    }
}
