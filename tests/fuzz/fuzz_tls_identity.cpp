// libFuzzer target for common/tls/tls_identity: the subjectAltName DER parser, the TBSCertificate
// walker and the RFC 6125 matchers never crash or read out of bounds on hostile bytes, and
//  - a span found in a TBS lies inside the input,
//  - every name the parser keeps matches itself (so nothing half-validated is stored),
//  - exact (wildcard-free) DNS-ID matching is symmetric.
// The same bytes are also tried as a whole DER certificate through mbedTLS + certificate_identities.
// Corpus: tests/fuzz/corpus/tls_identity (GeneralNames, TBSCertificates and certificates).
#include "common/tls/tls_identity.h"

#include <mbedtls/x509_crt.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace s2s::tls;

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

void check_identities(const Identities& ids) {
    for (const auto& id : ids.dns_ids)
        if (id.find('*') == std::string::npos) require(dns_id_matches(id, id));
    for (const auto& id : ids.srv_ids) {
        constexpr std::string_view kPrefix = "_xmpp-server.";
        if (id.size() > kPrefix.size() && id.compare(0, kPrefix.size(), kPrefix) == 0 && id.find('*') == std::string::npos)
            require(srv_id_matches(id, std::string_view(id).substr(kPrefix.size())));
    }
    (void)certificate_matches_domain(ids, "example.org");
    (void)certificate_matches_domain(ids, "a.test");
    (void)describe_identities(ids);
    if (ids.malformed) require(!certificate_matches_domain(ids, "a.test"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // 1. The bytes as the subjectAltName extension's value.
    Identities ids;
    if (parse_general_names(data, size, ids) == DerStatus::Ok) check_identities(ids);

    // 2. The bytes as a TBSCertificate.
    DerSpan san;
    if (find_subject_alt_name(data, size, san) == DerStatus::Ok && !san.empty()) {
        require(san.data >= data && san.size <= size && static_cast<std::size_t>(san.data - data) <= size - san.size);
        Identities inner;
        if (parse_general_names(san.data, san.size, inner) == DerStatus::Ok) check_identities(inner);
    }

    // 3. The bytes as a certificate (mbedTLS parses, we extract).
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, data, size) == 0) check_identities(certificate_identities(crt));
    mbedtls_x509_crt_free(&crt);

    // 4. The matchers on two strings cut from the input.
    if (size > 1) {
        const std::string_view all(reinterpret_cast<const char*>(data) + 1, size - 1);
        const std::size_t cut = data[0] % all.size();
        const std::string_view a = all.substr(0, cut), b = all.substr(cut);
        const bool ab = dns_id_matches(a, b);
        if (ab && a.find('*') == std::string_view::npos && b.find('*') == std::string_view::npos)
            require(dns_id_matches(b, a));
        (void)srv_id_matches(a, b);
        (void)xmpp_addr_matches(a, b);
    }
    return 0;
}
