// OpenSSL cipher strings (what MongooseIM, ejabberd and Prosody take as `ciphers`) translated to
// the cipher suites of this mbedTLS build.
//
//   auto sel = tls::select_ciphersuites("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL");
//   if (!sel.error.empty()) refuse(sel.error);   // names the word that is wrong
//   mbedtls_ssl_conf_ciphersuites(conf, zero_terminated(sel.suites));
//
// The string follows OpenSSL's rules (ciphers(1)): elements separated by ':', ',' or spaces; an
// element is a suite name (OpenSSL "ECDHE-RSA-AES128-GCM-SHA256", IANA
// "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" or mbedTLS "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256") or
// a keyword (HIGH, ECDHE, AESGCM, TLSv1.2, ...), or several joined by '+' (all must match). A
// plain element appends the suites it matches that are not in the list yet; '-' removes them (a
// later element may add them back); '!' removes them for good; '+' moves them to the end.
// "@STRENGTH" sorts the list by cipher key length, longest first, keeping the order otherwise;
// "@SECLEVEL=n" is accepted and has no effect (mbedTLS has no security levels).
//
// Suites are added in this build's preference order (mbedtls_ssl_list_ciphersuites: AEAD and
// forward secrecy first). "TLSv1.2" selects the suites that need TLS 1.2 (AEAD, SHA-256/384 MACs),
// as in OpenSSL; "TLSv1.3" the TLS 1.3 suites, which exist only in mbedTLS 3.6+ builds. As in
// OpenSSL, where TLS 1.3 suites are set apart from the cipher string, a string that names none of
// them keeps them all (a build without TLS 1.3 has none).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace s2s::tls {

struct CipherSelection {
    std::vector<int> suites;   ///< mbedTLS suite ids, most preferred first; empty on error
    std::string error;         ///< "" or why the string is refused, naming the word
};

/// The suites `openssl_string` selects ("" means MongooseIM's default "TLSv1.2:TLSv1.3").
[[nodiscard]] CipherSelection select_ciphersuites(std::string_view openssl_string);

/// The OpenSSL name of an mbedTLS suite ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256");
/// the IANA name when OpenSSL has none for it; "" for an unknown id.
[[nodiscard]] std::string openssl_suite_name(int id);

/// True for a suite with finite-field Diffie-Hellman key exchange (DHE-RSA, DHE-PSK), the ones
/// tls.dhfile's parameters are for.
[[nodiscard]] bool suite_uses_dhe(int id);

}  // namespace s2s::tls
