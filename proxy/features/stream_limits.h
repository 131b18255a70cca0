// Stream limits (XEP-0478, urn:xmpp:stream-limits:0) in both roles, for the federation streams:
// - on a stream we accept (s2s_in): with s2s.stream_limits on, every <stream:features> we send
//   lists <limits/>: max-bytes, the listener's max_stanza_size, and idle-seconds, the idle
//   timeout (s2s.outgoing.stream_timeout, whole seconds) when one applies. The same values before
//   and after authentication: a peer that authenticates by dialback sees no later features. Any
//   bytes the peer sends (a whitespace keepalive too) count as traffic for that idle timeout.
// - on a link we open (s2s_out, RemoteLimits): the remote's limits, from its latest features (a
//   later <stream:features> replaces them, as the XEP allows). A stanza larger than its max-bytes
//   is not written: it goes back to its sender with policy-violation and a text naming the
//   remote's limit (XEP-0478 §3: no 'by', the policy is the remote's), instead of making the
//   remote end the whole link. When it advertises idle-seconds, a single space (RFC 6120 §4.6.1
//   whitespace keepalive) is written once nothing else was for two thirds of that time. When we
//   ask for bidi (XEP-0288), our own limits on the link go inside the <bidi/> request.
// Counted in stream_limits_total: action "too_large" (stanzas bounced), "keepalive" (spaces sent).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/log.h"
#include "common/xml/xml.h"
#include "proxy/stream/stream.h"

namespace s2s {

inline constexpr std::string_view kStreamLimitsNs = "urn:xmpp:stream-limits:0";

// The <limits/> feature for our features: max-bytes, and idle-seconds when idle_ms is at least a
// second (0: no idle timeout applies).
[[nodiscard]] std::string limits_feature(std::size_t max_bytes, uint64_t idle_ms);

// What a remote advertised on a link we opened, and what follows from it. Nothing advertised:
// no limit, no keepalive.
class RemoteLimits {
public:
    // Keepalives never come closer together than this, whatever idle-seconds says.
    static constexpr uint64_t kMinKeepaliveMs = 500;

    // The remote's <stream:features/>: its <limits/> replace what earlier features said. A limit
    // left out, or not a positive integer, is no limit.
    void read(const xml::Element& features);

    [[nodiscard]] uint64_t max_bytes() const noexcept { return max_bytes_; }        // 0: none
    [[nodiscard]] uint64_t idle_seconds() const noexcept { return idle_seconds_; }  // 0: none

    // nullopt when a stanza of `size` bytes may go to `remote`; else the text of its bounce,
    // logged and counted (stream_limits_total{action="too_large"}).
    [[nodiscard]] std::optional<std::string> refuse(std::size_t size, const std::string& remote,
                                                    const LogContext& log) const;

    // Two thirds of idle-seconds in ms, at least kMinKeepaliveMs; 0 when none was advertised.
    [[nodiscard]] uint64_t keepalive_ms() const noexcept;
    // Writes the keepalive on `stream` when nothing was sent on it for keepalive_ms(); true when
    // it did (counted: stream_limits_total{action="keepalive"}).
    bool keep_alive(Stream& stream, uint64_t now_ms) const;
    // A ready link's deadline passed: the keepalive when due (keep_alive()); then, when the link's
    // own wait has not ended (`end`, loop time; 0: never), the stream's deadline armed again
    // (deadline()) and true; false when it has ended.
    bool still_waiting(Stream& stream, uint64_t now_ms, uint64_t end) const;
    // The deadline for `stream` in ms from now (Stream::set_deadline; 0: none): at `end` (loop
    // time; 0: none), or sooner when the next keepalive is due then.
    [[nodiscard]] uint64_t deadline(uint64_t end, uint64_t now_ms, const Stream& stream) const noexcept;

private:
    uint64_t max_bytes_ = 0;
    uint64_t idle_seconds_ = 0;
};

}  // namespace s2s
