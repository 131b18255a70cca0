// The PROXY protocol stage of a connection accepted on a listener with proxy_protocol: what its
// first bytes are, before any TLS or XML byte is read.
//
//  - From a trusted sender (the TCP peer is in proxy_trusted: a load balancer) a header is
//    required, v1 or v2 (common/net/proxy_protocol). A PROXY header over TCP names the client; a v2
//    LOCAL header (the balancer's health check) or an UNKNOWN one keeps the connection's own
//    addresses. An invalid header, or first bytes that are no header at all, refuse the connection.
//  - From any other sender the connection is served as a direct one, unless its first bytes are a
//    header ("PROXY " or the v2 signature): a client must not choose the address it is judged and
//    logged by, so that connection is refused. Bytes are held only while they could still be the
//    start of a header (at most 11), then handed back as stream bytes.
//
// Bytes after the header are the stream's: feed() says how many of its input were the stage's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base/log.h"
#include "common/net/proxy_protocol.h"

namespace s2s {

// Where the stage is, and once over, how it ended.
enum class ProxyOutcome : std::uint8_t {
    pending,           // still reading the first bytes
    proxied,           // a trusted sender's header names the client (parser().source())
    local,             // a trusted sender's v2 LOCAL header: the connection's own addresses stand
    unknown,           // a trusted sender's UNKNOWN header (v1, or v2 without TCP addresses): the same
    direct,            // an untrusted sender's first bytes are no header: served as it is
    untrusted_sender,  // refused: a sender outside proxy_trusted sent a header
    missing_header,    // refused: a trusted sender's first bytes are no header
    malformed,         // refused: a trusted sender's header is invalid (parser().error() says how)
};

// Stable name for logs and metrics ("untrusted_sender").
[[nodiscard]] const char* proxy_outcome_name(ProxyOutcome o) noexcept;
// Whether the connection must be closed.
[[nodiscard]] bool is_refusal(ProxyOutcome o) noexcept;

struct ProxyStageFeed {
    ProxyOutcome outcome;
    // Bytes of this input the stage took (header, or held while undecided); the rest is the
    // stream's, after held() when the outcome is direct. 0 on a refusal.
    std::size_t consumed;
};

class ProxyStage {
public:
    // `trusted`: the TCP peer is in the listener's proxy_trusted.
    explicit ProxyStage(bool trusted) noexcept : trusted_(trusted) {}

    // Feeds the connection's next bytes. Once the outcome is no longer pending, further calls
    // return it with consumed 0.
    [[nodiscard]] ProxyStageFeed feed(const char* data, std::size_t len) noexcept;

    [[nodiscard]] bool trusted() const noexcept { return trusted_; }
    [[nodiscard]] ProxyOutcome outcome() const noexcept { return outcome_; }
    // Outcome direct: bytes of earlier feeds held while undecided, to be fed to the stream first.
    [[nodiscard]] std::string_view held() const noexcept {
        return outcome_ == ProxyOutcome::direct ? std::string_view(held_, held_len_) : std::string_view();
    }
    // The header's parser (a trusted sender's): version, kind, source, error.
    [[nodiscard]] const ProxyHeaderParser& parser() const noexcept { return parser_; }
    // One line for logs: "PROXY v1 header from a sender outside proxy_trusted", "PROXY v2
    // length is too small for the address family"...
    [[nodiscard]] std::string describe() const;
    // Once decided: logs the outcome for the connection from `sender` (its TCP peer) and counts it
    // (proxy_headers_total, but for a direct peer). False on a refusal: the connection closes.
    [[nodiscard]] bool report(const std::string& sender, const LogContext& log) const;
    // A trusted sender sent no header within `ms`: logged and counted (refused:timeout); returns
    // the reason the connection closes with.
    [[nodiscard]] std::string report_timeout(uint64_t ms, const std::string& sender, const LogContext& log) const;

private:
    ProxyStageFeed sniff(const char* data, std::size_t len) noexcept;

    bool trusted_;
    ProxyOutcome outcome_ = ProxyOutcome::pending;
    ProxyHeaderParser parser_;  // trusted sender only
    char held_[12] = {};        // untrusted sender: first bytes while they may start a header
    std::size_t held_len_ = 0;
};

}  // namespace s2s
