// PROXY protocol header parser; see proxy_protocol.h for what is accepted.
#include "common/net/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <optional>
#include <string_view>

namespace s2s {
namespace {

constexpr char kV1Prefix[] = "PROXY ";
constexpr std::size_t kV1PrefixLen = sizeof kV1Prefix - 1;
constexpr std::uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t kV2SignatureLen = sizeof kV2Signature;

// v2 byte 13: version in the high nibble, command in the low one.
constexpr unsigned kV2Version = 2;
constexpr unsigned kV2CmdLocal = 0;
constexpr unsigned kV2CmdProxy = 1;
// v2 byte 14: address family in the high nibble, transport in the low one.
constexpr unsigned kFamUnspec = 0, kFamInet = 1, kFamInet6 = 2, kFamUnix = 3;
constexpr unsigned kTransUnspec = 0, kTransStream = 1, kTransDgram = 2;
// Address block sizes: two addresses, then two ports where the family has them.
constexpr std::size_t kV2Inet4Block = 2 * 4 + 2 * 2;
constexpr std::size_t kV2Inet6Block = 2 * 16 + 2 * 2;
constexpr std::size_t kV2UnixBlock = 2 * 108;

// A v1 port: 1..5 decimal digits, no leading zero (except "0"), at most 65535.
std::optional<std::uint16_t> parse_port(std::string_view s) noexcept {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

// A v1 address of `family` with `port` into *out; false if the text is not one.
bool parse_v1_address(std::string_view text, int family, std::uint16_t port, sockaddr_storage* out) noexcept {
    char buf[INET6_ADDRSTRLEN] = {};
    if (text.empty() || text.size() >= sizeof buf) return false;
    std::memcpy(buf, text.data(), text.size());
    *out = sockaddr_storage{};
    if (family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(out);
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        return inet_pton(AF_INET, buf, &a->sin_addr) == 1;
    }
    auto* a = reinterpret_cast<sockaddr_in6*>(out);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    return inet_pton(AF_INET6, buf, &a->sin6_addr) == 1;
}

std::uint16_t be16(const std::uint8_t* p) noexcept { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

}  // namespace

ProxySniff sniff_proxy_header(const std::uint8_t* data, std::size_t len) noexcept {
    auto prefix_of = [&](const std::uint8_t* sig, std::size_t sig_len) {
        const std::size_t n = len < sig_len ? len : sig_len;
        if (n > 0 && std::memcmp(data, sig, n) != 0) return ProxySniff::no;
        return n == sig_len ? ProxySniff::yes : ProxySniff::maybe;
    };
    const ProxySniff v1 = prefix_of(reinterpret_cast<const std::uint8_t*>(kV1Prefix), kV1PrefixLen);
    const ProxySniff v2 = prefix_of(kV2Signature, kV2SignatureLen);
    if (v1 == ProxySniff::yes || v2 == ProxySniff::yes) return ProxySniff::yes;
    if (v1 == ProxySniff::maybe || v2 == ProxySniff::maybe) return ProxySniff::maybe;
    return ProxySniff::no;
}

const char* proxy_error_name(ProxyError e) noexcept {
    switch (e) {
        case ProxyError::none: return "none";
        case ProxyError::bad_signature: return "bad_signature";
        case ProxyError::v1_too_long: return "v1_too_long";
        case ProxyError::v1_bad_line_end: return "v1_bad_line_end";
        case ProxyError::v1_bad_char: return "v1_bad_char";
        case ProxyError::v1_bad_protocol: return "v1_bad_protocol";
        case ProxyError::v1_bad_format: return "v1_bad_format";
        case ProxyError::v1_bad_address: return "v1_bad_address";
        case ProxyError::v1_bad_port: return "v1_bad_port";
        case ProxyError::v2_bad_version: return "v2_bad_version";
        case ProxyError::v2_bad_command: return "v2_bad_command";
        case ProxyError::v2_bad_family: return "v2_bad_family";
        case ProxyError::v2_too_long: return "v2_too_long";
        case ProxyError::v2_short_addresses: return "v2_short_addresses";
        case ProxyError::v2_bad_tlv: return "v2_bad_tlv";
    }
    return "?";
}

const char* proxy_error_text(ProxyError e) noexcept {
    switch (e) {
        case ProxyError::none: return "no error";
        case ProxyError::bad_signature: return "not a PROXY protocol header (bad signature)";
        case ProxyError::v1_too_long: return "PROXY v1 line has no CRLF within 107 bytes";
        case ProxyError::v1_bad_line_end: return "PROXY v1 line has a CR without LF or an LF without CR";
        case ProxyError::v1_bad_char: return "PROXY v1 line has a byte that is not printable ASCII";
        case ProxyError::v1_bad_protocol: return "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN";
        case ProxyError::v1_bad_format: return "PROXY v1 line does not have 4 fields after the protocol, single-spaced";
        case ProxyError::v1_bad_address: return "PROXY v1 address is not valid for the announced family";
        case ProxyError::v1_bad_port: return "PROXY v1 port is not a number 0..65535 without leading zeros";
        case ProxyError::v2_bad_version: return "PROXY v2 header has a version other than 2";
        case ProxyError::v2_bad_command: return "PROXY v2 command is neither LOCAL nor PROXY";
        case ProxyError::v2_bad_family: return "PROXY v2 address family or transport is not defined";
        case ProxyError::v2_too_long: return "PROXY v2 header is longer than 552 bytes";
        case ProxyError::v2_short_addresses: return "PROXY v2 length is too small for the address family";
        case ProxyError::v2_bad_tlv: return "PROXY v2 TLV runs past the end of the header";
    }
    return "?";
}

ProxyStatus ProxyHeaderParser::status() const noexcept {
    switch (state_) {
        case State::done: return ProxyStatus::done;
        case State::failed: return ProxyStatus::error;
        default: return ProxyStatus::need_more;
    }
}

ProxyFeed ProxyHeaderParser::feed(const std::uint8_t* data, std::size_t len) noexcept {
    if (state_ == State::done || state_ == State::failed) return {status(), 0};
    for (std::size_t i = 0; i < len; ++i) {
        const std::uint8_t c = data[i];
        if (state_ == State::start) {
            // The first byte tells the version: 'P' for "PROXY ", CR for the v2 signature.
            if (c == static_cast<std::uint8_t>(kV1Prefix[0])) {
                state_ = State::v1_line;
                version_ = 1;
            } else if (c == kV2Signature[0]) {
                state_ = State::v2_fixed;
                version_ = 2;
            } else {
                fail(ProxyError::bad_signature);
                return {ProxyStatus::error, 0};
            }
        }
        bool more = false;
        switch (state_) {
            case State::v1_line: more = v1_byte(c); break;
            case State::v2_fixed: more = v2_fixed_byte(c); break;
            case State::v2_body: more = v2_body_byte(c); break;
            default: break;
        }
        ++taken_;
        if (!more) return {status(), state_ == State::done ? i + 1 : 0};
    }
    return {ProxyStatus::need_more, len};
}

bool ProxyHeaderParser::fail(ProxyError e) noexcept {
    state_ = State::failed;
    error_ = e;
    return false;
}

bool ProxyHeaderParser::v1_byte(std::uint8_t c) noexcept {
    if (have_ < kV1PrefixLen) {
        if (c != static_cast<std::uint8_t>(kV1Prefix[have_])) return fail(ProxyError::bad_signature);
        buf_[have_++] = c;
        return true;
    }
    const bool after_cr = buf_[have_ - 1] == '\r';
    if (c == '\n') {
        if (!after_cr) return fail(ProxyError::v1_bad_line_end);
        buf_[have_++] = c;
        return v1_finish();
    }
    if (after_cr) return fail(ProxyError::v1_bad_line_end);
    if (c != '\r' && (c < 0x20 || c > 0x7E)) return fail(ProxyError::v1_bad_char);
    if (have_ + 1 >= kProxyV1MaxLine) return fail(ProxyError::v1_too_long);  // no room left for the LF
    buf_[have_++] = c;
    return true;
}

bool ProxyHeaderParser::v1_finish() noexcept {
    // The fields after "PROXY ", without the CRLF, split at single spaces.
    std::string_view rest(reinterpret_cast<const char*>(buf_) + kV1PrefixLen, have_ - kV1PrefixLen - 2);
    std::string_view field[5];
    std::size_t n = 0;
    bool too_many = false;
    for (bool last = false; !last;) {
        const std::size_t sp = rest.find(' ');
        last = sp == std::string_view::npos;
        if (n == 5) {
            too_many = true;
            break;
        }
        field[n++] = rest.substr(0, sp);
        if (!last) rest.remove_prefix(sp + 1);
    }

    int family = 0;
    if (field[0] == "UNKNOWN") {
        kind_ = ProxyKind::unknown;  // whatever follows is ignored
        state_ = State::done;
        return false;
    }
    if (field[0] == "TCP4") {
        family = AF_INET;
    } else if (field[0] == "TCP6") {
        family = AF_INET6;
    } else {
        return fail(ProxyError::v1_bad_protocol);
    }
    if (too_many || n != 5) return fail(ProxyError::v1_bad_format);
    for (std::size_t i = 1; i < 5; ++i)
        if (field[i].empty()) return fail(ProxyError::v1_bad_format);

    const auto sport = parse_port(field[3]);
    const auto dport = parse_port(field[4]);
    if (!parse_v1_address(field[1], family, sport.value_or(0), &source_) ||
        !parse_v1_address(field[2], family, dport.value_or(0), &destination_)) {
        source_ = destination_ = sockaddr_storage{};
        return fail(ProxyError::v1_bad_address);
    }
    if (!sport || !dport) {
        source_ = destination_ = sockaddr_storage{};
        return fail(ProxyError::v1_bad_port);
    }
    kind_ = ProxyKind::proxied;
    state_ = State::done;
    return false;
}

bool ProxyHeaderParser::v2_fixed_byte(std::uint8_t c) noexcept {
    if (have_ < kV2SignatureLen) {
        if (c != kV2Signature[have_]) return fail(ProxyError::bad_signature);
        buf_[have_++] = c;
        return true;
    }
    buf_[have_++] = c;
    const unsigned command = buf_[12] & 0x0F;
    if (have_ == 13) {
        if ((c >> 4) != kV2Version) return fail(ProxyError::v2_bad_version);
        if (command != kV2CmdLocal && command != kV2CmdProxy) return fail(ProxyError::v2_bad_command);
        return true;
    }
    if (have_ == 14) {
        // A LOCAL header's family is ignored; a PROXY header's must be one the specification defines.
        if (command == kV2CmdProxy && ((c >> 4) > kFamUnix || (c & 0x0F) > kTransDgram))
            return fail(ProxyError::v2_bad_family);
        return true;
    }
    if (have_ < kProxyV2FixedSize) return true;

    v2_length_ = be16(buf_ + 14);
    if (v2_length_ > kProxyV2MaxLength) return fail(ProxyError::v2_too_long);
    const unsigned family = buf_[13] >> 4;
    const unsigned transport = buf_[13] & 0x0F;
    kind_ = ProxyKind::unknown;
    if (command == kV2CmdLocal) {
        kind_ = ProxyKind::local;
        v2_addr_len_ = v2_length_;  // skipped whole, unread
    } else if (family == kFamUnspec || transport == kTransUnspec) {
        v2_addr_len_ = v2_length_;  // no defined layout: skipped whole, unread
    } else {
        v2_check_tlvs_ = true;
        v2_addr_len_ = family == kFamInet ? kV2Inet4Block : family == kFamInet6 ? kV2Inet6Block : kV2UnixBlock;
        if (family != kFamUnix && transport == kTransStream) kind_ = ProxyKind::proxied;
        if (v2_length_ < v2_addr_len_) return fail(ProxyError::v2_short_addresses);
    }
    if (v2_length_ == 0) return v2_finish();
    state_ = State::v2_body;
    return true;
}

bool ProxyHeaderParser::v2_body_byte(std::uint8_t c) noexcept {
    const std::size_t pos = taken_ - kProxyV2FixedSize;  // this byte's offset in the body
    if (pos < v2_addr_len_) {
        if (kind_ == ProxyKind::proxied) buf_[kProxyV2FixedSize + pos] = c;  // at most 36 bytes
    } else if (v2_check_tlvs_) {
        // TLVs: type (1 byte), length (2 bytes, big-endian), then that many value bytes.
        if (tlv_head_ == 1) {
            tlv_left_ = static_cast<std::size_t>(c) << 8;
            tlv_head_ = 2;
        } else if (tlv_head_ == 2) {
            tlv_left_ |= c;
            tlv_head_ = 0;
            if (tlv_left_ > v2_length_ - pos - 1) return fail(ProxyError::v2_bad_tlv);
        } else if (tlv_left_ > 0) {
            --tlv_left_;
        } else {
            tlv_head_ = 1;  // the next TLV's type
        }
    }
    if (pos + 1 < v2_length_) return true;
    if (tlv_head_ != 0) return fail(ProxyError::v2_bad_tlv);  // a TLV cut short by the end
    return v2_finish();
}

bool ProxyHeaderParser::v2_finish() noexcept {
    if (kind_ == ProxyKind::proxied) {
        const std::uint8_t* a = buf_ + kProxyV2FixedSize;
        if ((buf_[13] >> 4) == kFamInet) {
            auto* src = reinterpret_cast<sockaddr_in*>(&source_);
            auto* dst = reinterpret_cast<sockaddr_in*>(&destination_);
            src->sin_family = dst->sin_family = AF_INET;
            std::memcpy(&src->sin_addr, a, 4);
            std::memcpy(&dst->sin_addr, a + 4, 4);
            std::memcpy(&src->sin_port, a + 8, 2);  // both already in network order
            std::memcpy(&dst->sin_port, a + 10, 2);
        } else {
            auto* src = reinterpret_cast<sockaddr_in6*>(&source_);
            auto* dst = reinterpret_cast<sockaddr_in6*>(&destination_);
            src->sin6_family = dst->sin6_family = AF_INET6;
            std::memcpy(&src->sin6_addr, a, 16);
            std::memcpy(&dst->sin6_addr, a + 16, 16);
            std::memcpy(&src->sin6_port, a + 32, 2);
            std::memcpy(&dst->sin6_port, a + 34, 2);
        }
    }
    state_ = State::done;
    return false;
}

}  // namespace s2s
