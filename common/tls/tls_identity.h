// Certificate identities for XMPP server-to-server links: what a peer's certificate claims
// (RFC 6120 §13.7.1.2, RFC 6125, XEP-0178) and whether that covers a given domain.
//
//   Identities ids = certificate_identities(*session.peer_certificate());
//   if (certificate_matches_domain(ids, "example.org")) ...   // and the chain must be valid
//
// Identities counted:
//   DNS-ID    subjectAltName dNSName            "example.org", "*.example.org"
//   SRV-ID    otherName id-on-dnsSRV (…8.7)      "_xmpp-server.example.org" (only this service)
//   XmppAddr  otherName id-on-xmppAddr (…8.5)    "example.org" (a domain JID; XEP-0178)
//   CN-ID     subject commonName                 only if the certificate has no DNS-ID, SRV-ID,
//                                                URI-ID or XmppAddr (RFC 6125 §6.4.4)
//
// Matching: ASCII case-insensitive, one trailing dot ignored, IDNA A-labels compared as ASCII
// (callers pass domains in A-label form). A wildcard is accepted only in a DNS-ID (or CN-ID), only
// as the complete left-most label, followed by at least two labels, and matches exactly one
// label: "*.example.org" matches "a.example.org", never "example.org" or "a.b.example.org";
// "f*.example.org", "*.*.org", "*.org" and wildcards in SRV-IDs or XmppAddrs match nothing.
//
// mbedTLS 2.28 does not decode otherName SANs, so the subjectAltName extension is parsed here
// from the certificate's DER with mbedtls_asn1_* (bounded, every length checked). A malformed
// extension makes the certificate match nothing (fail closed). Nothing here throws except
// std::bad_alloc.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

struct mbedtls_x509_crt;

namespace s2s::tls {

/// The names a certificate presents, sorted by kind, as written in the certificate.
struct Identities {
    std::vector<std::string> dns_ids;       ///< subjectAltName dNSName
    std::vector<std::string> srv_ids;       ///< otherName SRVName, any service ("_xmpp-server.b.test")
    std::vector<std::string> xmpp_addrs;    ///< otherName XmppAddr (a JID, UTF-8)
    std::vector<std::string> common_names;  ///< subject CN values that look like DNS names
    /// A DNS-ID, SRV-ID, URI-ID or XmppAddr was present (even one rejected as invalid): the
    /// common names are then not identities (RFC 6125 §6.4.4).
    bool has_san_ids = false;
    /// The subjectAltName extension could not be parsed: the certificate matches nothing.
    bool malformed = false;

    [[nodiscard]] bool empty() const noexcept {
        return dns_ids.empty() && srv_ids.empty() && xmpp_addrs.empty() && common_names.empty();
    }
};

/// Outcome of a DER parse.
enum class DerStatus : unsigned char {
    Ok,         ///< parsed completely
    Malformed,  ///< truncated, bad tag or length, trailing bytes, duplicate extension...
};

/// Bytes inside a DER buffer (non-owning).
struct DerSpan {
    const unsigned char* data = nullptr;
    std::size_t size = 0;
    [[nodiscard]] bool empty() const noexcept { return data == nullptr; }
};

/// Parses a GeneralNames SEQUENCE (the subjectAltName extension's value) into `out`. On
/// Malformed, `out` may hold the names parsed before the error: callers must discard them.
[[nodiscard]] DerStatus parse_general_names(const unsigned char* der, std::size_t len, Identities& out);

/// Finds the subjectAltName extension value (the GeneralNames DER) in a TBSCertificate.
/// Ok with an empty span when the certificate has no such extension.
[[nodiscard]] DerStatus find_subject_alt_name(const unsigned char* tbs, std::size_t len, DerSpan& san);

/// All identities of a parsed certificate (the leaf: `crt.next` is not looked at).
[[nodiscard]] Identities certificate_identities(const mbedtls_x509_crt& crt);

/// RFC 6125 DNS-ID match of one presented identifier (may hold a wildcard) against a reference
/// domain (never a wildcard).
[[nodiscard]] bool dns_id_matches(std::string_view presented, std::string_view reference) noexcept;

/// True if `srv_id` is "_xmpp-server.<domain>" (no wildcards).
[[nodiscard]] bool srv_id_matches(std::string_view srv_id, std::string_view domain) noexcept;

/// True if `xmpp_addr` is the domain JID `domain` (no wildcards, no local part or resource).
[[nodiscard]] bool xmpp_addr_matches(std::string_view xmpp_addr, std::string_view domain) noexcept;

/// True if the identities cover `domain` for an XMPP server-to-server link. Says nothing about
/// the certificate chain: check that separately (tls::Session::authenticate_peer does both).
[[nodiscard]] bool certificate_matches_domain(const Identities& ids, std::string_view domain) noexcept;

/// One line for logs: "DNS:a.test SRV:_xmpp-server.b.test XmppAddr:b.test" (CN:x only when
/// common names count); "(none)" or "(malformed subjectAltName)" otherwise. Non-printable bytes
/// are escaped.
[[nodiscard]] std::string describe_identities(const Identities& ids);

}  // namespace s2s::tls
