// Stream error names and serialization.
#include "common/xmpp/stream_error.h"

#include <array>

#include "common/xml/xml.h"

namespace s2s {
namespace {

// Indexed by StreamError; order must follow the enum.
constexpr std::array<std::string_view, kStreamErrorCount> kNames = {
    "bad-format",
    "bad-namespace-prefix",
    "conflict",
    "connection-timeout",
    "host-gone",
    "host-unknown",
    "improper-addressing",
    "internal-server-error",
    "invalid-from",
    "invalid-namespace",
    "invalid-xml",
    "not-authorized",
    "not-well-formed",
    "policy-violation",
    "remote-connection-failed",
    "reset",
    "resource-constraint",
    "restricted-xml",
    "see-other-host",
    "system-shutdown",
    "undefined-condition",
    "unsupported-encoding",
    "unsupported-feature",
    "unsupported-stanza-type",
    "unsupported-version",
};
static_assert(static_cast<std::size_t>(StreamError::UnsupportedVersion) + 1 == kStreamErrorCount);

}  // namespace

std::string_view name(StreamError e) noexcept {
    const auto i = static_cast<std::size_t>(e);
    return i < kNames.size() ? kNames[i] : std::string_view("undefined-condition");
}

std::optional<StreamError> stream_error_from_name(std::string_view n) noexcept {
    for (std::size_t i = 0; i < kNames.size(); ++i) {
        if (kNames[i] == n) return static_cast<StreamError>(i);
    }
    return std::nullopt;
}

void append_stream_error(std::string& out, StreamError e, std::string_view text,
                         std::string_view content) {
    out += "<stream:error><";
    out += name(e);
    out += " xmlns='";
    out += kStreamErrorsNs;
    if (content.empty()) {
        out += "'/>";
    } else {
        out += "'>";
        xml::append_escaped_text(out, content);
        out += "</";
        out += name(e);
        out += '>';
    }
    if (!text.empty()) {
        out += "<text xmlns='";
        out += kStreamErrorsNs;
        out += "'>";
        xml::append_escaped_text(out, text);
        out += "</text>";
    }
    out += "</stream:error>";
}

}  // namespace s2s
