#include "proxy/features/stream_limits.h"

#include <algorithm>
#include <charconv>

#include "proxy/ops/metrics.h"

namespace s2s {
namespace {

// XEP-0478's values are unsigned ints; anything else (empty, signed, junk, 0) is no limit.
uint64_t positive(const xml::Element& limits, std::string_view name) {
    xml::Element e = limits.child(name, kStreamLimitsNs);
    if (!e) return 0;
    std::string text = e.text();
    auto first = text.find_first_not_of(" \t\r\n");
    auto last = text.find_last_not_of(" \t\r\n");
    if (first == std::string::npos) return 0;
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(text.data() + first, text.data() + last + 1, v);
    return ec == std::errc() && end == text.data() + last + 1 ? v : 0;
}

}  // namespace

std::string limits_feature(std::size_t max_bytes, uint64_t idle_ms) {
    std::string f = "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>" + std::to_string(max_bytes) + "</max-bytes>";
    if (idle_ms >= 1000) f += "<idle-seconds>" + std::to_string(idle_ms / 1000) + "</idle-seconds>";
    return f + "</limits>";
}

void RemoteLimits::read(const xml::Element& features) {
    xml::Element limits = features.child("limits", kStreamLimitsNs);
    max_bytes_ = limits ? positive(limits, "max-bytes") : 0;
    idle_seconds_ = limits ? positive(limits, "idle-seconds") : 0;
}

std::optional<std::string> RemoteLimits::refuse(std::size_t size, const std::string& remote,
                                                const LogContext& log) const {
    if (max_bytes_ == 0 || size <= max_bytes_) return std::nullopt;
    metrics().stream_limits.add("too_large");
    std::string why = remote + " accepts stanzas of at most " + std::to_string(max_bytes_) +
                      " bytes (XEP-0478 stream limits); this one has " + std::to_string(size);
    S2S_LOG_INFO(log, "too-large", "%s", why.c_str());
    return why;
}

uint64_t RemoteLimits::keepalive_ms() const noexcept {
    return idle_seconds_ == 0 ? 0 : std::max(kMinKeepaliveMs, idle_seconds_ * 2000 / 3);
}

bool RemoteLimits::keep_alive(Stream& stream, uint64_t now_ms) const {
    uint64_t every = keepalive_ms();
    if (every == 0 || now_ms < stream.last_sent_ms() + every) return false;
    stream.send(" ");
    metrics().stream_limits.add("keepalive");
    return true;
}

bool RemoteLimits::still_waiting(Stream& stream, uint64_t now_ms, uint64_t end) const {
    keep_alive(stream, now_ms);
    if (end != 0 && now_ms >= end) return false;
    stream.set_deadline(deadline(end, now_ms, stream));
    return true;
}

uint64_t RemoteLimits::deadline(uint64_t end, uint64_t now_ms, const Stream& stream) const noexcept {
    if (uint64_t every = keepalive_ms()) {
        uint64_t due = stream.last_sent_ms() + every;
        if (end == 0 || due < end) end = due;
    }
    if (end == 0) return 0;
    return end > now_ms ? end - now_ms : 1;
}

}  // namespace s2s
