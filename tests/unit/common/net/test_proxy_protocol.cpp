// PROXY protocol header parser (common/net/proxy_protocol): v1 and v2, piecewise feeding, errors.
#include "common/net/proxy_protocol.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/net/net_address.h"

using s2s::ProxyError;
using s2s::ProxyHeaderParser;
using s2s::ProxyKind;
using s2s::ProxyStatus;

namespace {

using Bytes = std::vector<std::uint8_t>;

const std::string kStream = "<?xml version='1.0'?><stream:stream xmlns='jabber:server'>";

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes operator+(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// A v2 header: signature, version/command byte, family byte, big-endian length, then `body`.
Bytes v2(std::uint8_t ver_cmd, std::uint8_t family, const Bytes& body, std::size_t length) {
    Bytes h = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, ver_cmd, family,
               static_cast<std::uint8_t>(length >> 8), static_cast<std::uint8_t>(length & 0xFF)};
    return h + body;
}
Bytes v2(std::uint8_t ver_cmd, std::uint8_t family, const Bytes& body) { return v2(ver_cmd, family, body, body.size()); }

// TCP/IPv4 127.0.0.1:56324 -> 127.0.0.2:5269 address block.
const Bytes kV4Block = {127, 0, 0, 1, 127, 0, 0, 2, 0xDC, 0x04, 0x14, 0x95};
// TCP/IPv6 [::1]:56324 -> [fd00::2]:5269 address block.
Bytes v6_block() {
    Bytes b(36, 0);
    b[15] = 1;
    b[16] = 0xFD;
    b[31] = 2;
    b[32] = 0xDC;
    b[33] = 0x04;
    b[34] = 0x14;
    b[35] = 0x95;
    return b;
}

Bytes tlv(std::uint8_t type, const Bytes& value) {
    return Bytes{type, static_cast<std::uint8_t>(value.size() >> 8), static_cast<std::uint8_t>(value.size() & 0xFF)} +
           value;
}

std::string src(const ProxyHeaderParser& p) { return s2s::format_sockaddr(reinterpret_cast<const sockaddr*>(&p.source())); }
std::string dst(const ProxyHeaderParser& p) {
    return s2s::format_sockaddr(reinterpret_cast<const sockaddr*>(&p.destination()));
}

// What a parse ended with, for comparing ways of feeding the same bytes.
struct Outcome {
    ProxyStatus status;
    ProxyError error;
    std::size_t header_size;
    ProxyKind kind;
    std::string source;
    std::string destination;
    bool operator==(const Outcome& o) const {
        return status == o.status && error == o.error && header_size == o.header_size && kind == o.kind &&
               source == o.source && destination == o.destination;
    }
};

Outcome outcome(const ProxyHeaderParser& p) {
    return {p.status(), p.error(), p.header_size(), p.kind(), src(p), dst(p)};
}

// Feeds `in` whole; checks the consumed count agrees with the status.
Outcome parse_whole(const Bytes& in) {
    ProxyHeaderParser p;
    const auto r = p.feed(in.data(), in.size());
    CHECK(r.status == p.status());
    if (r.status == ProxyStatus::done) CHECK(r.consumed == p.header_size());
    if (r.status == ProxyStatus::need_more) CHECK(r.consumed == in.size());
    if (r.status == ProxyStatus::error) CHECK(r.consumed == 0);
    return outcome(p);
}

// Feeds `in` one byte at a time, stopping at the first non-need_more result.
Outcome parse_bytewise(const Bytes& in, std::size_t* stopped_at = nullptr) {
    ProxyHeaderParser p;
    std::size_t i = 0;
    for (; i < in.size(); ++i) {
        const auto r = p.feed(&in[i], 1);
        if (r.status == ProxyStatus::need_more) {
            CHECK(r.consumed == 1);
            continue;
        }
        CHECK(r.consumed == (r.status == ProxyStatus::done ? 1u : 0u));
        break;
    }
    if (stopped_at) *stopped_at = i;
    return outcome(p);
}

// Whole, byte by byte, and split in two at every point: all agree; returns the whole-buffer result.
Outcome parse_every_way(const Bytes& in) {
    const Outcome whole = parse_whole(in);
    CHECK(parse_bytewise(in) == whole);
    for (std::size_t cut = 0; cut <= in.size(); ++cut) {
        ProxyHeaderParser p;
        const auto first = p.feed(in.data(), cut);
        std::size_t used = first.consumed;
        if (first.status == ProxyStatus::need_more) used += p.feed(in.data() + cut, in.size() - cut).consumed;
        CHECK(outcome(p) == whole);
        if (whole.status == ProxyStatus::done) CHECK(used == whole.header_size);
    }
    return whole;
}

// Every proper prefix of a complete header asks for more and takes all it was given.
void check_prefixes_need_more(const Bytes& header) {
    for (std::size_t n = 0; n < header.size(); ++n) {
        ProxyHeaderParser p;
        const auto r = p.feed(header.data(), n);
        CHECK(r.status == ProxyStatus::need_more);
        CHECK(r.consumed == n);
        CHECK(p.header_size() == n);
    }
}

// The input is rejected with `e`, and byte-by-byte feeding stops at byte index `at`.
void check_error(const Bytes& in, ProxyError e, std::size_t at) {
    const Outcome o = parse_whole(in);
    CHECK(o.status == ProxyStatus::error);
    CHECK(s2s::proxy_error_name(o.error) == std::string(s2s::proxy_error_name(e)));
    std::size_t stopped = 0;
    CHECK(parse_bytewise(in, &stopped).error == e);
    CHECK(stopped == at);
}

}  // namespace

TEST_CASE("proxy_protocol/v1 TCP4 gives the client's addresses and leaves the stream bytes") {
    const std::string line = "PROXY TCP4 127.0.0.1 127.0.0.2 56324 5269\r\n";
    const Bytes in = bytes(line + kStream);
    ProxyHeaderParser p;
    const auto r = p.feed(in.data(), in.size());
    REQUIRE(r.status == ProxyStatus::done);
    CHECK(r.consumed == line.size());
    CHECK(std::string(in.begin() + static_cast<long>(r.consumed), in.end()) == kStream);
    CHECK(p.version() == 1);
    CHECK(p.kind() == ProxyKind::proxied);
    CHECK(p.header_size() == line.size());
    CHECK(p.source().ss_family == AF_INET);
    CHECK(src(p) == "127.0.0.1:56324");
    CHECK(dst(p) == "127.0.0.2:5269");
    CHECK(p.error() == ProxyError::none);

    // Once done, more bytes are not touched.
    const auto again = p.feed(in.data(), in.size());
    CHECK(again.status == ProxyStatus::done);
    CHECK(again.consumed == 0);
    CHECK(p.header_size() == line.size());

    const Outcome o = parse_every_way(bytes(line + kStream));
    CHECK(o.source == "127.0.0.1:56324");
    check_prefixes_need_more(bytes(line));
}

TEST_CASE("proxy_protocol/v1 TCP6, ports at the ends of the range") {
    const std::string line = "PROXY TCP6 ::1 fd00::ABCD:2 0 65535\r\n";
    const Outcome o = parse_every_way(bytes(line + kStream));
    REQUIRE(o.status == ProxyStatus::done);
    CHECK(o.header_size == line.size());
    CHECK(o.kind == ProxyKind::proxied);
    CHECK(o.source == "[::1]:0");
    CHECK(o.destination == "[fd00::abcd:2]:65535");
    check_prefixes_need_more(bytes(line));

    // A mapped IPv4 address is a valid IPv6 address.
    const Outcome m = parse_whole(bytes("PROXY TCP6 ::ffff:127.0.0.1 ::1 1 2\r\n"));
    REQUIRE(m.status == ProxyStatus::done);
    CHECK(m.source == "127.0.0.1:1");  // shown as IPv4 by format_sockaddr
}

TEST_CASE("proxy_protocol/v1 UNKNOWN keeps the connection's own addresses") {
    for (const std::string line : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ::1 ::1 1 2\r\n", "PROXY UNKNOWN whatever !\r\n"}) {
        CAPTURE(line);
        const Outcome o = parse_every_way(bytes(line + kStream));
        REQUIRE(o.status == ProxyStatus::done);
        CHECK(o.kind == ProxyKind::unknown);
        CHECK(o.header_size == line.size());
        CHECK(o.source == "?");  // AF_UNSPEC
        CHECK(o.destination == "?");
    }
}

TEST_CASE("proxy_protocol/v1 line of exactly 107 bytes is accepted, 108 is not") {
    const std::string full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const std::string longest = "PROXY UNKNOWN " + full + " " + full + " 65535 65535\r\n";
    REQUIRE(longest.size() == s2s::kProxyV1MaxLine);
    const Outcome o = parse_every_way(bytes(longest + kStream));
    CHECK(o.status == ProxyStatus::done);
    CHECK(o.header_size == 107);

    const std::string tcp6 = "PROXY TCP6 " + full + " " + full + " 65535 65535\r\n";  // 104 bytes
    const Outcome t = parse_whole(bytes(tcp6));
    REQUIRE(t.status == ProxyStatus::done);
    CHECK(t.source == "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");

    // One byte more: rejected at the 107th byte, which would have to be the LF.
    const std::string too_long = "PROXY UNKNOWN " + full + " " + full + " 65535 655350\r\n";
    check_error(bytes(too_long), ProxyError::v1_too_long, 106);
    check_error(bytes("PROXY " + std::string(200, 'A')), ProxyError::v1_too_long, 106);
}

TEST_CASE("proxy_protocol/v2 PROXY TCP over IPv4 and IPv6") {
    const Bytes h4 = v2(0x21, 0x11, kV4Block);
    REQUIRE(h4.size() == 28);
    Outcome o = parse_every_way(h4 + bytes(kStream));
    REQUIRE(o.status == ProxyStatus::done);
    CHECK(o.kind == ProxyKind::proxied);
    CHECK(o.header_size == 28);
    CHECK(o.source == "127.0.0.1:56324");
    CHECK(o.destination == "127.0.0.2:5269");
    check_prefixes_need_more(h4);

    const Bytes h6 = v2(0x21, 0x21, v6_block());
    REQUIRE(h6.size() == 52);
    o = parse_every_way(h6 + bytes(kStream));
    REQUIRE(o.status == ProxyStatus::done);
    CHECK(o.kind == ProxyKind::proxied);
    CHECK(o.header_size == 52);
    CHECK(o.source == "[::1]:56324");
    CHECK(o.destination == "[fd00::2]:5269");
    check_prefixes_need_more(h6);

    ProxyHeaderParser p;
    const Bytes in = h6 + bytes(kStream);
    REQUIRE(p.feed(in.data(), in.size()).status == ProxyStatus::done);
    CHECK(p.version() == 2);
    CHECK(p.source().ss_family == AF_INET6);
    CHECK(p.destination().ss_family == AF_INET6);
}

TEST_CASE("proxy_protocol/v2 LOCAL keeps the connection's own addresses and ignores its body") {
    for (const Bytes& h : {v2(0x20, 0x00, {}), v2(0x20, 0x11, kV4Block), v2(0x20, 0xFF, Bytes(7, 0xEE))}) {
        const Outcome o = parse_every_way(h + bytes(kStream));
        REQUIRE(o.status == ProxyStatus::done);
        CHECK(o.kind == ProxyKind::local);
        CHECK(o.header_size == h.size());
        CHECK(o.source == "?");
        check_prefixes_need_more(h);
    }
}

TEST_CASE("proxy_protocol/v2 PROXY for UNSPEC, UDP and UNIX falls back to the own addresses") {
    const Bytes cases[] = {
        v2(0x21, 0x00, {}),                         // UNSPEC, no addresses
        v2(0x21, 0x10, Bytes(5, 1)),                // IPv4 with UNSPEC transport: body skipped unread
        v2(0x21, 0x12, kV4Block),                   // UDP over IPv4
        v2(0x21, 0x22, v6_block() + tlv(4, {})),    // UDP over IPv6, with a TLV
        v2(0x21, 0x31, Bytes(216, 'x')),            // UNIX stream
        v2(0x21, 0x32, Bytes(216, 'x') + tlv(0xE0, {1, 2})),  // UNIX datagram, with a TLV
    };
    for (const Bytes& h : cases) {
        const Outcome o = parse_every_way(h + bytes(kStream));
        REQUIRE(o.status == ProxyStatus::done);
        CHECK(o.kind == ProxyKind::unknown);
        CHECK(o.header_size == h.size());
        CHECK(o.source == "?");
    }
}

TEST_CASE("proxy_protocol/v2 TLVs after the addresses are skipped") {
    const Bytes tlvs = tlv(0x01, bytes("xmpp-server")) + tlv(0x04, {}) + tlv(0x05, Bytes(128, 0x42)) +
                       tlv(0xEA, bytes("\x01vpce-0123456789abcdef")) + tlv(0xE1, Bytes(256, 0x07));  // 2-byte length
    const Bytes h = v2(0x21, 0x11, kV4Block + tlvs);
    const Outcome o = parse_every_way(h + bytes(kStream));
    REQUIRE(o.status == ProxyStatus::done);
    CHECK(o.header_size == h.size());
    CHECK(o.source == "127.0.0.1:56324");
    check_prefixes_need_more(h);

    // The largest length accepted: IPv6 addresses and one TLV filling the rest.
    const Bytes max = v2(0x21, 0x21, v6_block() + tlv(0x04, Bytes(s2s::kProxyV2MaxLength - 36 - 3, 0)));
    REQUIRE(max.size() == s2s::kProxyMaxHeader);
    const Outcome m = parse_every_way(max + bytes(kStream));
    REQUIRE(m.status == ProxyStatus::done);
    CHECK(m.header_size == 552);
    CHECK(m.source == "[::1]:56324");
}

TEST_CASE("proxy_protocol/errors: bad signature, reported at the first wrong byte") {
    check_error(bytes("<?xml version='1.0'?>"), ProxyError::bad_signature, 0);
    check_error(bytes("\x16\x03\x01"), ProxyError::bad_signature, 0);  // a TLS ClientHello
    check_error(bytes("PROXX TCP4"), ProxyError::bad_signature, 4);
    check_error(bytes("PROXYTCP4"), ProxyError::bad_signature, 5);
    check_error(bytes("proxy TCP4 127.0.0.1 127.0.0.1 1 2\r\n"), ProxyError::bad_signature, 0);
    Bytes sig = v2(0x21, 0x11, kV4Block);
    sig[11] = 0x0B;
    check_error(sig, ProxyError::bad_signature, 11);
    Bytes nul = v2(0x21, 0x11, kV4Block);
    nul[4] = 0x01;
    check_error(nul, ProxyError::bad_signature, 4);
}

TEST_CASE("proxy_protocol/errors: v1 line endings and characters") {
    check_error(bytes("PROXY UNKNOWN\n"), ProxyError::v1_bad_line_end, 13);
    check_error(bytes("PROXY UNKNOWN\r\r\n"), ProxyError::v1_bad_line_end, 14);
    check_error(bytes("PROXY UNKNOWN\rX"), ProxyError::v1_bad_line_end, 14);
    check_error(bytes("PROXY TCP4 127.0.0.1\t127.0.0.1 1 2\r\n"), ProxyError::v1_bad_char, 20);
    check_error(bytes(std::string("PROXY UNKNOWN\0\r\n", 16)), ProxyError::v1_bad_char, 13);
    check_error(bytes("PROXY UNKNOWN \xc3\xa9\r\n"), ProxyError::v1_bad_char, 14);
}

TEST_CASE("proxy_protocol/errors: v1 fields") {
    struct Case {
        std::string line;
        ProxyError error;
    };
    const Case cases[] = {
        {"PROXY \r\n", ProxyError::v1_bad_protocol},
        {"PROXY TCP5 127.0.0.1 127.0.0.1 1 2\r\n", ProxyError::v1_bad_protocol},
        {"PROXY tcp4 127.0.0.1 127.0.0.1 1 2\r\n", ProxyError::v1_bad_protocol},
        {"PROXY UNKNOWNX\r\n", ProxyError::v1_bad_protocol},
        {"PROXY  TCP4 127.0.0.1 127.0.0.1 1 2\r\n", ProxyError::v1_bad_protocol},
        {"PROXY TCP4\r\n", ProxyError::v1_bad_format},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 1\r\n", ProxyError::v1_bad_format},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 1 2 3\r\n", ProxyError::v1_bad_format},
        {"PROXY TCP4 127.0.0.1  127.0.0.1 1 2\r\n", ProxyError::v1_bad_format},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 1 2 \r\n", ProxyError::v1_bad_format},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 1 \r\n", ProxyError::v1_bad_format},
        {"PROXY TCP4 127.0.0.01 127.0.0.1 1 2\r\n", ProxyError::v1_bad_address},  // leading zero
        {"PROXY TCP4 127.0.0 127.0.0.1 1 2\r\n", ProxyError::v1_bad_address},
        {"PROXY TCP4 127.0.0.256 127.0.0.1 1 2\r\n", ProxyError::v1_bad_address},
        {"PROXY TCP4 ::1 127.0.0.1 1 2\r\n", ProxyError::v1_bad_address},         // wrong family
        {"PROXY TCP6 127.0.0.1 ::1 1 2\r\n", ProxyError::v1_bad_address},
        {"PROXY TCP6 ::1 ::1::1 1 2\r\n", ProxyError::v1_bad_address},
        {"PROXY TCP6 ::1%lo ::1 1 2\r\n", ProxyError::v1_bad_address},
        {"PROXY TCP6 localhost ::1 1 2\r\n", ProxyError::v1_bad_address},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 65536 2\r\n", ProxyError::v1_bad_port},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 1 080\r\n", ProxyError::v1_bad_port},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 -1 2\r\n", ProxyError::v1_bad_port},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 1 +2\r\n", ProxyError::v1_bad_port},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 1 999999\r\n", ProxyError::v1_bad_port},
        {"PROXY TCP4 127.0.0.1 127.0.0.1 0x10 2\r\n", ProxyError::v1_bad_port},
    };
    for (const auto& c : cases) {
        CAPTURE(c.line);
        check_error(bytes(c.line), c.error, c.line.size() - 1);  // known only at the LF
    }
}

TEST_CASE("proxy_protocol/errors: v2 fixed part") {
    check_error(v2(0x11, 0x11, kV4Block), ProxyError::v2_bad_version, 12);
    check_error(v2(0x31, 0x11, kV4Block), ProxyError::v2_bad_version, 12);
    check_error(v2(0x22, 0x11, kV4Block), ProxyError::v2_bad_command, 12);
    check_error(v2(0x2F, 0x11, kV4Block), ProxyError::v2_bad_command, 12);
    check_error(v2(0x21, 0x41, kV4Block), ProxyError::v2_bad_family, 13);
    check_error(v2(0x21, 0x13, kV4Block), ProxyError::v2_bad_family, 13);
    check_error(v2(0x21, 0x11, {}, s2s::kProxyV2MaxLength + 1), ProxyError::v2_too_long, 15);
    check_error(v2(0x20, 0x00, {}, 0xFFFF), ProxyError::v2_too_long, 15);  // LOCAL is bounded too
    check_error(v2(0x21, 0x11, Bytes(11, 0)), ProxyError::v2_short_addresses, 15);
    check_error(v2(0x21, 0x21, kV4Block), ProxyError::v2_short_addresses, 15);
    check_error(v2(0x21, 0x31, Bytes(36, 0)), ProxyError::v2_short_addresses, 15);
    check_error(v2(0x21, 0x11, {}), ProxyError::v2_short_addresses, 15);
}

TEST_CASE("proxy_protocol/errors: v2 TLVs that do not fit") {
    // Value longer than what is left: rejected at its length's second byte (index 16+12+2).
    check_error(v2(0x21, 0x11, kV4Block + Bytes{0x01, 0x00, 0x05, 'a', 'b'}), ProxyError::v2_bad_tlv, 30);
    check_error(v2(0x21, 0x11, kV4Block + Bytes{0x01, 0xFF, 0xFF}), ProxyError::v2_bad_tlv, 30);
    // A TLV header cut short by the end of the header: rejected at the last header byte.
    check_error(v2(0x21, 0x11, kV4Block + Bytes{0x04}), ProxyError::v2_bad_tlv, 28);
    check_error(v2(0x21, 0x11, kV4Block + tlv(4, {}) + Bytes{0x04, 0x00}), ProxyError::v2_bad_tlv, 32);
    check_error(v2(0x21, 0x31, Bytes(216, 0) + Bytes{0x04, 0x00}), ProxyError::v2_bad_tlv, 16 + 217);
}

TEST_CASE("proxy_protocol/after an error nothing more is taken") {
    ProxyHeaderParser p;
    const Bytes in = bytes("HELLO");
    const auto r = p.feed(in.data(), in.size());
    CHECK(r.status == ProxyStatus::error);
    CHECK(r.consumed == 0);
    CHECK(p.error() == ProxyError::bad_signature);
    const auto again = p.feed(bytes("PROXY UNKNOWN\r\n").data(), 15);
    CHECK(again.status == ProxyStatus::error);
    CHECK(again.consumed == 0);
    CHECK(p.error() == ProxyError::bad_signature);
    CHECK(p.version() == 0);
}

TEST_CASE("proxy_protocol/empty feeds change nothing") {
    ProxyHeaderParser p;
    CHECK(p.status() == ProxyStatus::need_more);
    const auto r = p.feed(static_cast<const std::uint8_t*>(nullptr), 0);
    CHECK(r.status == ProxyStatus::need_more);
    CHECK(r.consumed == 0);
    CHECK(p.version() == 0);
    CHECK(p.header_size() == 0);
}

TEST_CASE("proxy_protocol/error names and texts are distinct and set") {
    std::set<std::string> names, texts;
    for (int i = 0; i <= static_cast<int>(ProxyError::v2_bad_tlv); ++i) {
        const auto e = static_cast<ProxyError>(i);
        names.insert(s2s::proxy_error_name(e));
        texts.insert(s2s::proxy_error_text(e));
    }
    CHECK(names.size() == 15);
    CHECK(texts.size() == 15);
    CHECK(names.count("?") == 0);
    CHECK(std::string(s2s::proxy_error_text(ProxyError::v1_too_long)).find("107") != std::string::npos);
}

TEST_CASE("proxy_protocol/sniff tells a header from other first bytes as early as the bytes allow") {
    using s2s::ProxySniff;
    auto sniff = [](const Bytes& b) { return s2s::sniff_proxy_header(b.data(), b.size()); };
    const Bytes sig = v2(0x21, 0x11, kV4Block);
    CHECK(sniff(bytes("PROXY ")) == ProxySniff::yes);
    CHECK(sniff(bytes("PROXY TCP4 1.2.3.4")) == ProxySniff::yes);
    CHECK(sniff(Bytes(sig.begin(), sig.begin() + 12)) == ProxySniff::yes);
    CHECK(sniff(sig) == ProxySniff::yes);
    CHECK(sniff(bytes("")) == ProxySniff::maybe);
    CHECK(sniff(bytes("PROX")) == ProxySniff::maybe);
    CHECK(sniff(Bytes(sig.begin(), sig.begin() + 11)) == ProxySniff::maybe);
    CHECK(sniff(Bytes{0x0D}) == ProxySniff::maybe);
    CHECK(sniff(bytes("<")) == ProxySniff::no);
    CHECK(sniff(Bytes{0x16, 0x03, 0x01}) == ProxySniff::no);  // a TLS ClientHello
    CHECK(sniff(bytes("PROXX")) == ProxySniff::no);
    CHECK(sniff(bytes("proxy ")) == ProxySniff::no);
    Bytes almost(sig.begin(), sig.begin() + 12);
    almost[11] = 0x0B;
    CHECK(sniff(almost) == ProxySniff::no);
    CHECK(sniff(bytes(kStream)) == ProxySniff::no);
}
