// libFuzzer target for the handling of DNS answers (common/dns/dns, proxy/resolve/dns_resolver): a whole
// resolution of b.test (SRV for _xmpp-server and _xmpps-server, then A/AAAA of the targets, or
// of the domain) against a nameserver on loopback that answers each query the resolver sends
// with the next packet from the input. The packets are parsed by udns and turned into answers
// and candidates here. Promises checked, each run:
//  - the resolution ends, once, soon after the last answer (a query whose packet is ignored gets
//    SERVFAIL right after);
//  - a success has candidates, each an IPv4 or IPv6 address with a non-zero port; a failure has
//    a sentence and no candidate;
//  - nothing is left pending in the resolver;
//  - DnsResolver::order keeps every SRV record it is given and sorts them by priority.
//
// Input: [0] flags (bit 0: ip_versions 6 then 4; bit 1: only 4), then packets, each
//   [length (1 byte)] [mode (1 byte)] [bytes]:
//   mode bit 0 set: the bytes follow our header's ID and flags (4 bytes) and the question
//   copied from the query; else the bytes are the whole packet after the ID.
// Queries beyond the packets get SERVFAIL.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "proxy/resolve/dns_resolver.h"
#include "tests/fuzz/wire_peer.h"

using namespace s2s;

namespace {

struct Nameserver {
    int fd = -1;
    uint16_t port = 0;
    Nameserver() {
        fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            fuzzwire::die("nameserver socket");
        port = ntohs(a.sin_port);
    }
};

// The end of the question section of a query we sent (12 + name + 4), or 0.
size_t question_end(const uint8_t* q, size_t n) {
    size_t i = 12;
    while (i < n && q[i] != 0) i += 1 + q[i];
    i += 1 + 4;
    return i <= n ? i : 0;
}

std::vector<uint8_t> servfail(const uint8_t* q, size_t n) {
    std::vector<uint8_t> r(q, q + n);
    r[2] = 0x81;  // QR, RD
    r[3] = 0x82;  // RA, SERVFAIL
    r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static Nameserver* ns = new Nameserver();
    fuzzwire::Loop& loop = fuzzwire::Loop::get();

    Config config;
    config.outgoing.dns_nameservers = {"127.0.0.1:" + std::to_string(ns->port)};
    config.outgoing.dns_timeout = 5;
    config.outgoing.dns_retries = 1;
    config.outgoing.ip_versions = (data[0] & 2) ? std::vector<int>{4} : (data[0] & 1) ? std::vector<int>{6, 4}
                                                                                       : std::vector<int>{4, 6};
    uint32_t rng = 0x2545f491u ^ static_cast<uint32_t>(size);
    auto random = [&rng](uint32_t max) -> uint32_t {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        return max == UINT32_MAX ? rng : rng % (max + 1);
    };
    std::string error;
    auto dns = DnsClient::create(*loop.loop, dns_options(config.outgoing), &error);
    if (!dns) fuzzwire::die("DnsClient::create");
    auto resolver = std::make_unique<DnsResolver>(*loop.loop, config, std::move(dns), random);

    int calls = 0;
    std::vector<Candidate> found;
    std::string why;
    resolver->resolve("b.test", [&](std::vector<Candidate> c, const std::string& e) {
        ++calls;
        found = std::move(c);
        why = e;
    });

    size_t pos = 1;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (calls == 0) {
        if (std::chrono::steady_clock::now() > until) fuzzwire::die("the resolution did not end within 5 s");
        loop.turn(1);
        uint8_t q[600];
        sockaddr_storage from{};
        socklen_t flen = sizeof from;
        const ssize_t n = ::recvfrom(ns->fd, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n < 0) continue;
        const size_t qend = question_end(q, static_cast<size_t>(n));
        if (n < 12 || qend == 0) fuzzwire::die("the resolver sent a malformed query");
        std::vector<uint8_t> reply;
        if (pos + 2 <= size) {
            const size_t len = std::min<size_t>(data[pos], size - pos - 2);
            const uint8_t mode = data[pos + 1];
            const uint8_t* body = data + pos + 2;
            pos += 2 + len;
            reply.assign(q, q + 2);  // the ID
            if (mode & 1) {
                reply.insert(reply.end(), body, body + std::min<size_t>(len, 10));
                reply.resize(12, 0);
                reply[4] = 0;
                reply[5] = 1;  // one question: ours
                reply.insert(reply.end(), q + 12, q + qend);
                if (len > 10) reply.insert(reply.end(), body + 10, body + len);
            } else {
                reply.insert(reply.end(), body, body + len);
            }
            ::sendto(ns->fd, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
            loop.turn(1);
        }
        // An answer udns ignored (or none at all) is followed by SERVFAIL for the same query;
        // one for a query already answered is ignored.
        const std::vector<uint8_t> fail = servfail(q, qend);
        ::sendto(ns->fd, fail.data(), fail.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
    loop.turn();
    if (calls != 1) fuzzwire::die("the resolution ended more than once");
    if (found.empty() == why.empty()) fuzzwire::die("a failure without a sentence, or a success with one");
    for (const Candidate& c : found) {
        const int family = c.addr.ss_family;
        if (family != AF_INET && family != AF_INET6) fuzzwire::die("a candidate that is not an IP address");
        const uint16_t port = family == AF_INET ? reinterpret_cast<const sockaddr_in*>(&c.addr)->sin_port
                                                : reinterpret_cast<const sockaddr_in6*>(&c.addr)->sin6_port;
        if (port == 0) fuzzwire::die("a candidate without a port");
        (void)c.describe();
    }
    if (resolver->pending() != 0) fuzzwire::die("a resolution left pending");
    resolver.reset();
    loop.turn();
    // Drop any datagram still queued for the nameserver.
    uint8_t sink[600];
    while (::recv(ns->fd, sink, sizeof sink, 0) > 0) {
    }

    // The SRV ordering on records straight from the input.
    std::vector<SrvTarget> records;
    for (size_t i = 1; i + 4 <= size && records.size() < 64; i += 4)
        records.push_back({data[i] & 7, data[i + 1] | (data[i + 2] & 1) << 8, 5269, std::to_string(i), (data[i + 3] & 1) != 0});
    const std::vector<SrvTarget> ordered = DnsResolver::order(records, random);
    if (ordered.size() != records.size()) fuzzwire::die("order() lost or added a record");
    for (size_t i = 1; i < ordered.size(); ++i)
        if (ordered[i].priority < ordered[i - 1].priority) fuzzwire::die("order() out of priority order");
    std::vector<std::string> a, b;
    for (auto& r : records) a.push_back(r.target);
    for (auto& r : ordered) b.push_back(r.target);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    if (a != b) fuzzwire::die("order() is not a permutation");
    return 0;
}
