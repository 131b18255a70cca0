// Stream-level error conditions (RFC 6120 §4.9.3) and the bytes of a <stream:error/>.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace s2s {

// One RFC 6120 §4.9.3 defined condition. A stream error is fatal: the sender writes
// <stream:error/>, then </stream:stream>, then closes the TCP connection.
enum class StreamError : std::uint8_t {
    BadFormat,               // XML that cannot be processed
    BadNamespacePrefix,      // unsupported or missing namespace prefix
    Conflict,                // a new stream conflicts with an existing one
    ConnectionTimeout,       // peer idle too long
    HostGone,                // 'to' names a host no longer served
    HostUnknown,             // 'to' names a host not served here
    ImproperAddressing,      // missing or bad 'to'/'from' on a stanza
    InternalServerError,     // our fault
    InvalidFrom,             // 'from' does not match an authenticated domain
    InvalidNamespace,        // wrong stream or content namespace
    InvalidXml,              // invalid per schema
    NotAuthorized,           // data before authentication
    NotWellFormed,           // XML syntax error (incl. invalid UTF-8)
    PolicyViolation,         // local policy, e.g. a stanza over the size limit
    RemoteConnectionFailed,  // cannot reach a remote entity we need
    Reset,                   // stream reset by the server (e.g. security)
    ResourceConstraint,      // out of resources
    RestrictedXml,           // comment, PI, DTD, entity reference (RFC 6120 §11.1)
    SeeOtherHost,            // redirect; element content is the new host
    SystemShutdown,          // server going down
    UndefinedCondition,      // none of the above
    UnsupportedEncoding,     // anything but UTF-8
    UnsupportedFeature,      // a mandatory feature is not supported
    UnsupportedStanzaType,   // first-level child we do not understand
    UnsupportedVersion,      // 'version' we do not support
};

// Number of StreamError values (for tables and tests).
inline constexpr std::size_t kStreamErrorCount = 25;

// Namespace of stream error conditions and their <text/>.
inline constexpr std::string_view kStreamErrorsNs = "urn:ietf:params:xml:ns:xmpp-streams";

// The condition's element name, e.g. "not-well-formed".
[[nodiscard]] std::string_view name(StreamError e) noexcept;

// Inverse of name(); nullopt for an unknown name.
[[nodiscard]] std::optional<StreamError> stream_error_from_name(std::string_view name) noexcept;

// Appends <stream:error><COND xmlns='...'/>[<text xmlns='...'>TEXT</text>]</stream:error> to out.
// The 'stream' prefix must be bound by the stream header we sent (it always is here). `text` is
// escaped; empty means no <text/>. `content` (escaped too) is the character data of the condition
// element, meaningful only for see-other-host (the new host, e.g. "[2001:db8::1]:5269").
void append_stream_error(std::string& out, StreamError e, std::string_view text = {},
                         std::string_view content = {});

}  // namespace s2s
