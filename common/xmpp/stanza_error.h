// Stanza-level error conditions and types (RFC 6120 §8.3), as names and as an <error/> child.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/xml/xml.h"

namespace s2s {

// The 'type' attribute of <error/> (RFC 6120 §8.3.2): what the sender should do next.
enum class StanzaErrorType : std::uint8_t {
    Auth,      // retry after providing credentials
    Cancel,    // do not retry (unrecoverable)
    Continue,  // proceed (the condition was only a warning)
    Modify,    // retry after changing the data sent
    Wait,      // retry after waiting (temporary)
};

// One RFC 6120 §8.3.3 defined condition. Each has a default type (default_type()).
enum class StanzaError : std::uint8_t {
    BadRequest,             // modify
    Conflict,               // cancel
    FeatureNotImplemented,  // cancel
    Forbidden,              // auth
    Gone,                   // cancel; content may be the new address (URI)
    InternalServerError,    // cancel
    ItemNotFound,           // cancel
    JidMalformed,           // modify
    NotAcceptable,          // modify
    NotAllowed,             // cancel
    NotAuthorized,          // auth
    PolicyViolation,        // modify ("modify" or "wait" depending on the policy)
    RecipientUnavailable,   // wait
    Redirect,               // modify; content should be the alternate address (URI)
    RegistrationRequired,   // auth
    RemoteServerNotFound,   // cancel (no SRV/A/AAAA, nothing listening)
    RemoteServerTimeout,    // wait (resolved, but no stream could be negotiated)
    ResourceConstraint,     // wait
    ServiceUnavailable,     // cancel
    SubscriptionRequired,   // auth
    UndefinedCondition,     // cancel here (RFC: any type)
    UnexpectedRequest,      // wait ("wait" or "modify")
};

// Number of StanzaError values (for tables and tests).
inline constexpr std::size_t kStanzaErrorCount = 22;

// Namespace of stanza error conditions and their <text/>.
inline constexpr std::string_view kStanzaErrorsNs = "urn:ietf:params:xml:ns:xmpp-stanzas";

// The condition's element name, e.g. "remote-server-not-found".
[[nodiscard]] std::string_view name(StanzaError e) noexcept;
// The type's attribute value, e.g. "cancel".
[[nodiscard]] std::string_view name(StanzaErrorType t) noexcept;
// The type RFC 6120 §8.3.3 recommends for the condition.
[[nodiscard]] StanzaErrorType default_type(StanzaError e) noexcept;

// Inverses of name(); nullopt for an unknown name.
[[nodiscard]] std::optional<StanzaError> stanza_error_from_name(std::string_view name) noexcept;
[[nodiscard]] std::optional<StanzaErrorType> stanza_error_type_from_name(std::string_view name) noexcept;

// Appends <error type='T'[ by='BY']><COND xmlns='...'/>[<text xmlns='...'>TEXT</text>]</error> to out.
// The <error/> element carries no xmlns, so it belongs inside a stanza of the stream's content
// namespace. `type` defaults to default_type(e); text and by are escaped, empty means absent.
void append_stanza_error(std::string& out, StanzaError e, std::string_view text = {},
                         std::optional<StanzaErrorType> type = std::nullopt,
                         std::string_view by = {});

// Adds the same <error/> as the last child of `stanza` (in the stanza's namespace) and returns it.
// A bounce is: swap 'to'/'from', set type='error', then add_stanza_error().
xml::Element add_stanza_error(xml::Document& doc, xml::Element stanza, StanzaError e,
                              std::string_view text = {},
                              std::optional<StanzaErrorType> type = std::nullopt,
                              std::string_view by = {});

}  // namespace s2s
