// Dialback keys (XEP-0185): key = HMAC-SHA256(hex(SHA-256(secret)), "receiving originating id"),
// hex-encoded. Every replica configured with the same `s2s.shared` secret issues and accepts the
// same keys, so any of them can answer a db:verify for a key another one sent.
#pragma once

#include <string>
#include <string_view>

namespace s2s {

class DialbackKeys {
public:
    // Keeps only the derived HMAC key, never the secret itself.
    explicit DialbackKeys(std::string_view secret);
    ~DialbackKeys();
    DialbackKeys(const DialbackKeys&) = delete;
    DialbackKeys& operator=(const DialbackKeys&) = delete;

    // The key the originating server presents to the receiving server on stream `stream_id`.
    [[nodiscard]] std::string key(std::string_view receiving, std::string_view originating,
                                  std::string_view stream_id) const;
    // Whether `key` is the one this secret issues for these inputs (constant-time comparison).
    [[nodiscard]] bool verify(std::string_view receiving, std::string_view originating, std::string_view stream_id,
                              std::string_view key) const;

private:
    std::string hmac_key_;  // hex SHA-256 of the secret
};

}  // namespace s2s
