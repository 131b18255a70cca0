// DANE (RFC 6698, RFC 7671; RFC 7673 for XMPP): whether a peer's certificate chain matches the
// TLSA records published for the server it was reached at. Used by outbound links
// (proxy/features/dane_check) once the TLS handshake is done; the records come from a DNSSEC-
// validated lookup (proxy/resolve/tlsa_lookup).
//
//   std::vector<tls::TlsaRecord> usable = tls::usable_tlsa(records);   // 2/3, known selectors
//   tls::DaneCheck c = tls::dane_verify(usable, *session.peer_certificate(), {"b.test", "xmpp.b.test"});
//   if (!c.matched) refuse(c.detail);
//
// Usages (RFC 7671 §5):
//   DANE-EE(3)  the leaf's certificate or public key is the one published: nothing else is
//               checked (no names, no dates, no CA), as RFC 7671 §5.1 says.
//   DANE-TA(2)  a certificate of the peer's chain (or its public key) is the published trust
//               anchor: the chain from the leaf must verify up to it (signatures, dates), and the
//               leaf must name one of the reference identifiers (RFC 6125; RFC 7673 §4: the
//               source domain and the SRV target host). The anchor must be in the chain the peer
//               sends (RFC 7671 §5.2.2 asks servers to include it): a bare public key that signs
//               the chain's top without being sent is not looked for.
//   PKIX-TA(0), PKIX-EE(1) are not used (as Postfix does): they add nothing the CA check does not
//               already give, and a record set of only those counts as no usable record.
// Selectors: 0 the whole certificate (DER), 1 its SubjectPublicKeyInfo (DER). Matching types:
// 0 exact bytes, 1 SHA-256, 2 SHA-512. A record with another value, or a digest of the wrong
// length, is unusable (RFC 7671 §4: ignored).
//
// Pure functions over DER and parsed certificates (mbedTLS 2.28 and 3.x). Nothing here throws
// except std::bad_alloc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

struct mbedtls_x509_crt;

namespace s2s::tls {

inline constexpr std::uint8_t kTlsaPkixTa = 0;
inline constexpr std::uint8_t kTlsaPkixEe = 1;
inline constexpr std::uint8_t kTlsaDaneTa = 2;
inline constexpr std::uint8_t kTlsaDaneEe = 3;

/// One TLSA record's RDATA (RFC 6698 §2.1).
struct TlsaRecord {
    std::uint8_t usage = 0;
    std::uint8_t selector = 0;
    std::uint8_t matching = 0;
    std::string data;  ///< the certificate association data (binary)
};

/// Usage 2 or 3, selector 0 or 1, matching type 0/1/2 with data of the right length.
[[nodiscard]] bool tlsa_usable(const TlsaRecord& r) noexcept;
/// The usable records of a set, in their order.
[[nodiscard]] std::vector<TlsaRecord> usable_tlsa(const std::vector<TlsaRecord>& records);
/// "3 1 1 6b0a…e4f1" (the data in hex, shortened past 16 bytes), for logs.
[[nodiscard]] std::string describe_tlsa(const TlsaRecord& r);

/// Whether `r`'s selector and matching type applied to the DER certificate `der` give its data.
/// False for a certificate that does not parse (selector 1).
[[nodiscard]] bool tlsa_matches(const TlsaRecord& r, const unsigned char* der, std::size_t len);

/// What dane_verify found.
struct DaneCheck {
    bool matched = false;
    std::string detail;  ///< which record matched ("DANE-EE 3 1 1 …"), or why none did
};

/// Checks a peer chain (leaf first, as tls::Session::peer_certificate() gives it) against usable
/// records (see the usages above). `names`: the reference identifiers for DANE-TA, in A-label form.
[[nodiscard]] DaneCheck dane_verify(const std::vector<TlsaRecord>& usable, const mbedtls_x509_crt& chain,
                                    const std::vector<std::string>& names);

}  // namespace s2s::tls
