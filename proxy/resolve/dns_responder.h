// A minimal DNS responder on loopback (`local.dns_responder = "127.0.0.1:PORT"`) that sends a local
// server's outgoing s2s to s2s-proxy, for servers with no setting for that: ejabberd 23.01 (its
// inetrc names this responder as its only nameserver; see config-examples/ejabberd/README.md),
// and, with `local.dns_upstream`, any server that uses the system resolver (resolv.conf or a
// Kubernetes pod's dnsConfig names the responder, which forwards every query it does not answer).
//
// It answers on UDP, one query per datagram, at once from the receive callback, with
// dns_respond() (dns_responder_wire.h, which says what the answers are); the queries that are the
// upstreams' to answer go through a DnsForwarder (dns_forwarder.h). It serves no TCP. It logs
// each query at debug level and counts them in metrics().dns_responder. It binds loopback only:
// start() refuses any other address.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/base/event_loop.h"
#include "proxy/resolve/dns_forwarder.h"
#include "proxy/resolve/dns_responder_wire.h"

namespace s2s {

// The responder's address, rules and upstreams from the config: local.dns_responder must be
// "ip:port" (or "localhost:port") on loopback, and the first [[listen.local]] must be reachable
// on loopback (127.0.0.1, ::1, 0.0.0.0 or ::); local.dns_upstream entries ("ip" or "ip:port")
// must not be the responder itself. rules->forward is set when there are upstreams. False and
// *error, naming the key, otherwise.
[[nodiscard]] bool dns_responder_settings(const Config& config, sockaddr_storage* bind, DnsResponderRules* rules,
                                          std::vector<sockaddr_storage>* upstreams, std::string* error);

class DnsResponder {
public:
    // Binds `bind` (UDP; port 0: any free port) and answers there until destroyed; with
    // `upstreams` (and rules.forward) the other queries go to them. nullptr and *error when the
    // address is not loopback or cannot be bound.
    [[nodiscard]] static std::unique_ptr<DnsResponder> start(EventLoop& loop, const sockaddr_storage& bind,
                                                             DnsResponderRules rules, std::string* error,
                                                             std::vector<sockaddr_storage> upstreams = {});
    // From the config (dns_responder_settings, then start); the error names local.dns_responder.
    [[nodiscard]] static std::unique_ptr<DnsResponder> start(EventLoop& loop, const Config& config,
                                                             std::string* error);
    // Closes the socket (the handle is freed by the loop afterwards).
    ~DnsResponder();
    DnsResponder(const DnsResponder&) = delete;
    DnsResponder& operator=(const DnsResponder&) = delete;

    // The bound address, with the port actually bound.
    [[nodiscard]] const sockaddr_storage& address() const noexcept;
    // "127.0.0.1 port 5353", for logs.
    [[nodiscard]] std::string address_text() const;
    [[nodiscard]] uint64_t answered() const noexcept;   // datagrams answered here
    [[nodiscard]] uint64_t forwarded() const noexcept;  // queries sent to an upstream
    [[nodiscard]] uint64_t dropped() const noexcept;    // datagrams neither answered nor forwarded
    // The upstream side, when there are upstreams (else nullptr).
    [[nodiscard]] const DnsForwarder* forwarder() const noexcept;

private:
    struct Socket;
    explicit DnsResponder(Socket* socket) : socket_(socket) {}
    Socket* socket_;  // freed in its close callback
};

// Whether an address is loopback: 127.0.0.0/8, ::1 (or ::ffff:127.x.x.x).
[[nodiscard]] bool is_loopback_address(const sockaddr_storage& address) noexcept;

}  // namespace s2s
