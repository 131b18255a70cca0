// SHA-256 of a byte string, and lowercase hex, through mbedTLS (2.28 or 3.x), for whoever needs a
// digest: dialback keys (XEP-0185), hashed block list entries.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace s2s {

using Sha256 = std::array<unsigned char, 32>;

[[nodiscard]] Sha256 sha256(std::string_view bytes) noexcept;

// "0f3a...": two lowercase hex digits per byte.
[[nodiscard]] std::string hex_lower(const unsigned char* bytes, std::size_t n);

}  // namespace s2s
