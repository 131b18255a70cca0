// Why this TLS library cannot read an encrypted private key file, in words an operator can act on.
//
// OpenSSL 3 encrypts keys as PKCS#8 with PBES2, AES-256-CBC and PBKDF2-HMAC-SHA256 by default
// (`openssl genpkey -aes256`, `openssl pkcs8 -topk8`); mbedTLS 2.28 decrypts PBES2 only with DES or
// 3DES (PBKDF2 with any HMAC-SHA-1/2), and PKCS#12 PBE (PBE-SHA1-3DES).
#pragma once

#include <string>

namespace s2s::tls {

/// For a key file that failed to parse with mbedTLS error `code`: what its encryption is, that
/// this TLS library cannot decrypt it, and the openssl commands that convert it. "" when the file
/// is not an encrypted PKCS#8 key, when mbedTLS 2.28 reads its encryption, or when the failure has
/// another cause (a wrong password). Also for a missing password (on 2.28), where a password would
/// not help.
[[nodiscard]] std::string explain_undecryptable_key(const std::string& path, int code);

}  // namespace s2s::tls
