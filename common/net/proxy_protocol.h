// Incremental parser for the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and
// 2) that a load balancer in front of a listener sends before the connection's own bytes.
//
// Bytes are fed as they arrive, in pieces of any size (one byte at a time works). The parser never
// looks past what it was given and stops at the header's last byte: whatever follows in the same
// buffer is the start of the XMPP stream and is left for the caller.
//
// What is accepted:
//  - v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", the same with TCP6, and "PROXY UNKNOWN"
//    followed by anything printable up to the CRLF. Exactly one space between fields, dotted-quad
//    IPv4 without leading zeros, IPv6 as inet_pton reads it, ports 0..65535 without leading zeros.
//    The whole line including the CRLF is at most 107 bytes; a bare CR or LF, or a byte outside
//    printable ASCII, is an error as soon as it is seen.
//  - v2: the 12-byte signature, version 2, command LOCAL or PROXY, a defined family/transport
//    byte, and a length of at most kProxyV2MaxLength (536, the smallest TCP segment every host
//    must accept, which the specification sizes headers to fit; a header is thus at most 552
//    bytes). PROXY with TCP over IPv4 or IPv6 yields the addresses. PROXY with UNSPEC, UDP or
//    UNIX is accepted as "unknown" (the specification's fallback: keep the connection's own
//    addresses); its address block must still fit in the length. After the addresses of a PROXY
//    header come TLVs: each is checked to fit inside the header, and then skipped unread. A LOCAL
//    header's family and body are ignored entirely (skipped by length).
// Anything else is an error (ProxyError), reported as soon as the bytes seen prove it.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace s2s {

/// Longest v1 line, "PROXY UNKNOWN <ipv6> <ipv6> <port> <port>\r\n" included.
inline constexpr std::size_t kProxyV1MaxLine = 107;
/// Fixed part of a v2 header (signature, version/command, family, length).
inline constexpr std::size_t kProxyV2FixedSize = 16;
/// Largest v2 length field accepted (addresses and TLVs after the fixed part).
inline constexpr std::size_t kProxyV2MaxLength = 536;
/// Largest header of either version.
inline constexpr std::size_t kProxyMaxHeader = kProxyV2FixedSize + kProxyV2MaxLength;

/// Where the parser is after a feed().
enum class ProxyStatus : std::uint8_t {
    need_more,  ///< every byte given was header; feed more
    done,       ///< header complete; `consumed` bytes of the last feed were header, the rest is stream
    error,      ///< not a valid header; error() says why. The connection should be closed.
};

/// What a complete header says about the connection.
enum class ProxyKind : std::uint8_t {
    proxied,  ///< PROXY over TCP/IPv4 or TCP/IPv6: source() and destination() are the client's
    local,    ///< v2 LOCAL (e.g. the balancer's health check): keep the connection's own addresses
    unknown,  ///< v1 UNKNOWN, or v2 PROXY for UNSPEC/UDP/UNIX: keep the connection's own addresses
};

/// Why a header was rejected.
enum class ProxyError : std::uint8_t {
    none,                ///< no error
    bad_signature,       ///< starts with neither "PROXY " nor the v2 signature
    v1_too_long,         ///< no CRLF within 107 bytes
    v1_bad_line_end,     ///< a CR not followed by LF, or an LF without CR
    v1_bad_char,         ///< a byte outside printable ASCII in the line
    v1_bad_protocol,     ///< protocol field not TCP4, TCP6 or UNKNOWN
    v1_bad_format,       ///< wrong number of fields, or not separated by exactly one space
    v1_bad_address,      ///< an address that is not a valid one of the announced family
    v1_bad_port,         ///< a port that is not a decimal 0..65535 without leading zeros
    v2_bad_version,      ///< version nibble is not 2
    v2_bad_command,      ///< command nibble is neither LOCAL nor PROXY
    v2_bad_family,       ///< address family or transport nibble is not defined
    v2_too_long,         ///< length field over kProxyV2MaxLength
    v2_short_addresses,  ///< length too small for the family's address block
    v2_bad_tlv,          ///< a TLV that does not fit in the header
};

/// What the first bytes of a connection say about a header, before the header is complete.
enum class ProxySniff : std::uint8_t {
    no,     ///< a byte differs from both "PROXY " and the v2 signature: not a header
    maybe,  ///< every byte so far is a prefix of "PROXY " or of the v2 signature
    yes,    ///< "PROXY " or the whole 12-byte v2 signature: a header starts here
};

/// Looks at the first `len` bytes of a connection (only the first 12 matter); whether they are
/// valid beyond the signature is the parser's business.
[[nodiscard]] ProxySniff sniff_proxy_header(const std::uint8_t* data, std::size_t len) noexcept;

/// Short stable name for logs and tests ("v1_bad_port").
[[nodiscard]] const char* proxy_error_name(ProxyError e) noexcept;
/// One-line explanation for a close reason ("PROXY v1 port is not a number 0..65535").
[[nodiscard]] const char* proxy_error_text(ProxyError e) noexcept;

/// Result of one feed().
struct ProxyFeed {
    ProxyStatus status;
    /// Bytes of this call's input that belonged to the header: all of them for need_more, the
    /// header's remainder for done (the rest of the input is stream data), 0 for error.
    std::size_t consumed;
};

/// Parses one header: one instance per connection, fed until done or error.
class ProxyHeaderParser {
public:
    /// Feeds the next `len` bytes of the connection. After done or error, further calls return the
    /// same status with consumed 0 and change nothing.
    [[nodiscard]] ProxyFeed feed(const std::uint8_t* data, std::size_t len) noexcept;
    [[nodiscard]] ProxyFeed feed(const char* data, std::size_t len) noexcept {
        return feed(reinterpret_cast<const std::uint8_t*>(data), len);
    }

    [[nodiscard]] ProxyStatus status() const noexcept;
    [[nodiscard]] ProxyError error() const noexcept { return error_; }
    /// 1 or 2 once the first byte has told; 0 before.
    [[nodiscard]] int version() const noexcept { return version_; }
    /// Header bytes taken so far (the whole header's size once done).
    [[nodiscard]] std::size_t header_size() const noexcept { return taken_; }

    /// Valid once done.
    [[nodiscard]] ProxyKind kind() const noexcept { return kind_; }
    /// The client's address and port (kind proxied; AF_INET or AF_INET6), else family AF_UNSPEC.
    [[nodiscard]] const sockaddr_storage& source() const noexcept { return source_; }
    /// The address and port the client connected to (kind proxied), else family AF_UNSPEC.
    [[nodiscard]] const sockaddr_storage& destination() const noexcept { return destination_; }

private:
    enum class State : std::uint8_t {
        start,      ///< nothing seen yet
        v1_line,    ///< collecting the text line up to CRLF
        v2_fixed,   ///< collecting the 16-byte fixed part
        v2_body,    ///< collecting addresses, then checking/skipping TLVs, until `length` bytes
        done,       ///< complete; results valid
        failed,     ///< error_ says why
    };

    // Each takes one byte; false once the state is done or failed.
    bool v1_byte(std::uint8_t c) noexcept;
    bool v2_fixed_byte(std::uint8_t c) noexcept;
    bool v2_body_byte(std::uint8_t c) noexcept;
    bool fail(ProxyError e) noexcept;
    bool v1_finish() noexcept;
    bool v2_finish() noexcept;

    State state_ = State::start;
    ProxyError error_ = ProxyError::none;
    ProxyKind kind_ = ProxyKind::unknown;
    std::uint8_t version_ = 0;
    std::size_t taken_ = 0;            // header bytes consumed so far
    std::uint8_t buf_[kProxyV1MaxLine] = {};  // v1 line, or v2 fixed part + address block
    std::size_t have_ = 0;             // bytes in buf_
    std::size_t v2_length_ = 0;        // v2 length field
    std::size_t v2_addr_len_ = 0;      // v2 address block: kept in buf_ (TCP) or skipped
    bool v2_check_tlvs_ = false;       // TLVs follow the address block (PROXY with a known family)
    std::size_t tlv_head_ = 0;         // bytes of the current TLV's type+length seen (0..3)
    std::size_t tlv_left_ = 0;         // value bytes of the current TLV still to skip
    sockaddr_storage source_{};
    sockaddr_storage destination_{};
};

}  // namespace s2s
