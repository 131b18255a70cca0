#include "common/tls/digest.h"

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

namespace s2s {

Sha256 sha256(std::string_view bytes) noexcept {
    Sha256 digest{};
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data(), 0);
#else
    mbedtls_sha256_ret(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data(), 0);
#endif
    return digest;
}

std::string hex_lower(const unsigned char* bytes, std::size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * n);
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[bytes[i] >> 4];
        out += digits[bytes[i] & 15];
    }
    return out;
}

}  // namespace s2s
