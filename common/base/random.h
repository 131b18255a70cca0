// Strong random bytes from mbedTLS's CTR-DRBG seeded by the system entropy source.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace s2s {

// Fills buf with n unpredictable bytes; false only if the entropy source failed.
[[nodiscard]] bool random_bytes(uint8_t* buf, size_t n);

// n random bytes, hex-encoded (2n characters); empty if the entropy source failed.
[[nodiscard]] std::string random_hex(size_t n);

}  // namespace s2s
