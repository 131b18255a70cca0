// libFuzzer target for common/net/proxy_protocol: parsing never crashes or reads past its input, and
//  - feeding the input whole, one byte at a time (each byte in its own allocation, so ASan sees
//    any read past it) or in input-chosen pieces gives the same outcome,
//  - a finished header is at most the documented bound and its bytes alone parse the same,
//  - `consumed` agrees with the status, and need_more never goes past the largest header,
//  - proxied addresses re-encoded as a v1 line and as a v2 header parse back to the same,
//  - sniff_proxy_header says "no" exactly when the parser finds a bad signature.
#include "common/net/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using s2s::ProxyHeaderParser;
using s2s::ProxyKind;
using s2s::ProxyStatus;

void require(bool ok) {
    if (!ok) std::abort();
}

bool same(const ProxyHeaderParser& a, const ProxyHeaderParser& b) {
    if (a.status() != b.status() || a.error() != b.error() || a.header_size() != b.header_size()) return false;
    if (a.status() != ProxyStatus::done) return true;
    return a.kind() == b.kind() && a.version() == b.version() &&
           std::memcmp(&a.source(), &b.source(), sizeof(sockaddr_storage)) == 0 &&
           std::memcmp(&a.destination(), &b.destination(), sizeof(sockaddr_storage)) == 0;
}

// Feeds `len` bytes from a copy of exactly that size; checks `consumed` against the status.
s2s::ProxyFeed feed_exact(ProxyHeaderParser& p, const std::uint8_t* data, std::size_t len) {
    std::unique_ptr<std::uint8_t[]> copy(new std::uint8_t[len ? len : 1]);
    if (len) std::memcpy(copy.get(), data, len);
    const ProxyStatus before = p.status();
    const auto r = p.feed(copy.get(), len);
    require(r.status == p.status());
    if (before != ProxyStatus::need_more) require(r.consumed == 0 && r.status == before);
    else if (r.status == ProxyStatus::need_more) require(r.consumed == len);
    else if (r.status == ProxyStatus::error) require(r.consumed == 0);
    else require(r.consumed >= 1 && r.consumed <= len);
    return r;
}

void put_addr(std::vector<std::uint8_t>* out, const sockaddr_storage& ss) {
    const auto* p = ss.ss_family == AF_INET
                        ? reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in&>(ss).sin_addr)
                        : reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr);
    out->insert(out->end(), p, p + (ss.ss_family == AF_INET ? 4 : 16));
}

std::uint16_t port_of(const sockaddr_storage& ss) {
    return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(ss).sin_port
                                         : reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
}

std::string ip_text(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, buf, sizeof buf);
    else
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, buf, sizeof buf);
    return buf;
}

// The same addresses written as a v1 line and as a v2 header must parse to the same result.
void check_reencoded(const ProxyHeaderParser& p) {
    const bool v4 = p.source().ss_family == AF_INET;
    const std::string line = std::string("PROXY ") + (v4 ? "TCP4 " : "TCP6 ") + ip_text(p.source()) + " " +
                             ip_text(p.destination()) + " " + std::to_string(port_of(p.source())) + " " +
                             std::to_string(port_of(p.destination())) + "\r\n";
    ProxyHeaderParser p1;
    feed_exact(p1, reinterpret_cast<const std::uint8_t*>(line.data()), line.size());
    require(p1.status() == ProxyStatus::done && p1.kind() == ProxyKind::proxied);
    require(std::memcmp(&p1.source(), &p.source(), sizeof(sockaddr_storage)) == 0);
    require(std::memcmp(&p1.destination(), &p.destination(), sizeof(sockaddr_storage)) == 0);

    std::vector<std::uint8_t> h = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21,
                                   static_cast<std::uint8_t>(v4 ? 0x11 : 0x21), 0, static_cast<std::uint8_t>(v4 ? 12 : 36)};
    put_addr(&h, p.source());
    put_addr(&h, p.destination());
    for (const std::uint16_t port : {port_of(p.source()), port_of(p.destination())}) {
        h.push_back(static_cast<std::uint8_t>(port >> 8));
        h.push_back(static_cast<std::uint8_t>(port & 0xFF));
    }
    ProxyHeaderParser p2;
    feed_exact(p2, h.data(), h.size());
    require(p2.status() == ProxyStatus::done && p2.kind() == ProxyKind::proxied);
    require(std::memcmp(&p2.source(), &p.source(), sizeof(sockaddr_storage)) == 0);
    require(std::memcmp(&p2.destination(), &p.destination(), sizeof(sockaddr_storage)) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ProxyHeaderParser whole;
    const auto r = feed_exact(whole, data, size);
    if (r.status == ProxyStatus::need_more) require(size < s2s::kProxyMaxHeader);
    require((s2s::sniff_proxy_header(data, size) == s2s::ProxySniff::no) ==
            (whole.error() == s2s::ProxyError::bad_signature));

    ProxyHeaderParser bytewise;
    for (std::size_t i = 0; i < size && bytewise.status() == ProxyStatus::need_more; ++i)
        feed_exact(bytewise, data + i, 1);
    require(same(whole, bytewise));

    // Pieces whose sizes come from the input itself (1..16 bytes each), continuing after the end.
    ProxyHeaderParser pieces;
    for (std::size_t i = 0; i < size;) {
        const std::size_t n = std::min<std::size_t>(size - i, 1 + data[i] % 16);
        feed_exact(pieces, data + i, n);
        i += n;
    }
    require(same(whole, pieces));

    if (whole.status() != ProxyStatus::done) return 0;
    require(r.consumed == whole.header_size());
    require(whole.header_size() <= (whole.version() == 1 ? s2s::kProxyV1MaxLine : s2s::kProxyMaxHeader));
    ProxyHeaderParser alone;
    feed_exact(alone, data, whole.header_size());
    require(same(whole, alone));

    const bool proxied = whole.kind() == ProxyKind::proxied;
    const int family = whole.source().ss_family;
    require(family == whole.destination().ss_family);
    require(proxied ? (family == AF_INET || family == AF_INET6) : family == AF_UNSPEC);
    require(whole.kind() != ProxyKind::local || whole.version() == 2);
    if (proxied) check_reencoded(whole);
    return 0;
}
