// The DNS responder's upstream side (local.dns_upstream): the queries it does not answer itself
// (dns_respond said DnsReply::forward) go to the real resolvers, and their answers back to the
// client unchanged but for the ID. For DnsResponder only.
//
// What a local process or an off-path sender can make it hold is bounded (STYLE.md 17):
// - a fixed table of kDnsMaxForwards pending forwards, O(1) to take and to free a slot; a query
//   that finds it full is not forwarded (counted, the client asks again);
// - each forward has a deadline (kDnsForwardDeadlineMs) after which it is dropped and counted;
// - each forward goes out from its own UDP socket, connected to the upstream (a port the kernel
//   picks at random), with a fresh random ID; an answer is taken only on that socket, from that
//   upstream address, with that ID, QR set and the same question. Anything else is ignored and
//   counted, and the forward keeps waiting for the real answer.
// An answer is relayed as it came, TC included (no TCP here: a client that needs TCP asks its
// next nameserver). Upstreams are asked one at a time, starting with the first; one that times
// out or refuses (ICMP) hands the next queries to the one after it, in turn. How forwards end is
// counted in metrics().dns_upstream and in counts(); each step is logged at debug level.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/base/event_loop.h"

namespace s2s {

constexpr size_t kDnsMaxForwards = 256;           // pending forwards at once (each holds a socket)
constexpr uint64_t kDnsForwardDeadlineMs = 5000;  // then a forward is dropped
constexpr size_t kDnsMaxForwardedQuery = 4096;    // a bigger query is not forwarded

class DnsForwarder {
public:
    // Sends an upstream's answer (its ID already the client's) to the client that asked, from the
    // responder's own socket.
    using Deliver = std::function<void(const sockaddr_storage& client, const uint8_t* answer, size_t len)>;

    enum class Outcome : uint8_t {
        Sent,        // on its way; the answer, if one comes, goes to `deliver`
        Full,        // kDnsMaxForwards already pending
        TooBig,      // more than kDnsMaxForwardedQuery bytes
        SendFailed,  // no socket or no random ID, or the send failed (the log says why)
    };

    // Forwards to `upstreams` (at least one; port 0 means 53), each answer to `deliver`.
    DnsForwarder(EventLoop& loop, std::vector<sockaddr_storage> upstreams, Deliver deliver,
                 uint64_t deadline_ms = kDnsForwardDeadlineMs);
    // Drops every pending forward (no delivery afterwards) and closes the sockets.
    ~DnsForwarder();
    DnsForwarder(const DnsForwarder&) = delete;
    DnsForwarder& operator=(const DnsForwarder&) = delete;

    // Forwards one well-formed query (dns_respond said forward) from `client`.
    Outcome forward(const uint8_t* query, size_t len, const sockaddr_storage& client);

    [[nodiscard]] size_t pending() const noexcept;
    // "10.96.0.10:53, [fd00::a]:53", for the log.
    [[nodiscard]] std::string upstreams_text() const;

    // What happened to forwards and to datagrams from upstreams, since the start.
    struct Counts {
        uint64_t relayed = 0;      // answers delivered to their client
        uint64_t timeouts = 0;     // forwards dropped at their deadline
        uint64_t unreachable = 0;  // forwards ended by an ICMP error from the upstream
        uint64_t ignored = 0;      // datagrams that were not the awaited answer
    };
    [[nodiscard]] const Counts& counts() const noexcept;

private:
    struct Core;
    struct Slot;
    Core* core_;  // freed once its last handle has closed
};

// "ip:port" or "[v6]:port" (port 0 shown as 53).
[[nodiscard]] std::string dns_server_text(const sockaddr_storage& address);

}  // namespace s2s
