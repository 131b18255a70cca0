#include "proxy/xmpp/dialback.h"

#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include "common/tls/digest.h"

namespace s2s {

DialbackKeys::DialbackKeys(std::string_view secret) {
    Sha256 digest = sha256(secret);
    hmac_key_ = hex_lower(digest.data(), digest.size());
    mbedtls_platform_zeroize(digest.data(), digest.size());
}

DialbackKeys::~DialbackKeys() { mbedtls_platform_zeroize(hmac_key_.data(), hmac_key_.size()); }

std::string DialbackKeys::key(std::string_view receiving, std::string_view originating,
                              std::string_view stream_id) const {
    std::string text;
    text.reserve(receiving.size() + originating.size() + stream_id.size() + 2);
    text.append(receiving).append(" ").append(originating).append(" ").append(stream_id);
    unsigned char mac[32];
    mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                    reinterpret_cast<const unsigned char*>(hmac_key_.data()), hmac_key_.size(),
                    reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac);
    return hex_lower(mac, sizeof mac);
}

bool DialbackKeys::verify(std::string_view receiving, std::string_view originating, std::string_view stream_id,
                          std::string_view key_text) const {
    std::string expected = key(receiving, originating, stream_id);
    // Peers may wrap the key in whitespace (XEP-0185's examples do).
    size_t b = key_text.find_first_not_of(" \t\r\n"), e = key_text.find_last_not_of(" \t\r\n");
    key_text = b == std::string_view::npos ? std::string_view() : key_text.substr(b, e - b + 1);
    if (key_text.size() != expected.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < expected.size(); ++i) diff |= static_cast<unsigned char>(expected[i] ^ key_text[i]);
    return diff == 0;
}

}  // namespace s2s
