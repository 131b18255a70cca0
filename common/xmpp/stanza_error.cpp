// Stanza error names, default types and serialization.
#include "common/xmpp/stanza_error.h"

#include <array>

namespace s2s {
namespace {

struct Condition {
    std::string_view name;
    StanzaErrorType type;
};

// Indexed by StanzaError; order must follow the enum. Types per RFC 6120 §8.3.3.
constexpr std::array<Condition, kStanzaErrorCount> kConditions = {{
    {"bad-request", StanzaErrorType::Modify},
    {"conflict", StanzaErrorType::Cancel},
    {"feature-not-implemented", StanzaErrorType::Cancel},
    {"forbidden", StanzaErrorType::Auth},
    {"gone", StanzaErrorType::Cancel},
    {"internal-server-error", StanzaErrorType::Cancel},
    {"item-not-found", StanzaErrorType::Cancel},
    {"jid-malformed", StanzaErrorType::Modify},
    {"not-acceptable", StanzaErrorType::Modify},
    {"not-allowed", StanzaErrorType::Cancel},
    {"not-authorized", StanzaErrorType::Auth},
    {"policy-violation", StanzaErrorType::Modify},
    {"recipient-unavailable", StanzaErrorType::Wait},
    {"redirect", StanzaErrorType::Modify},
    {"registration-required", StanzaErrorType::Auth},
    {"remote-server-not-found", StanzaErrorType::Cancel},
    {"remote-server-timeout", StanzaErrorType::Wait},
    {"resource-constraint", StanzaErrorType::Wait},
    {"service-unavailable", StanzaErrorType::Cancel},
    {"subscription-required", StanzaErrorType::Auth},
    {"undefined-condition", StanzaErrorType::Cancel},
    {"unexpected-request", StanzaErrorType::Wait},
}};
static_assert(static_cast<std::size_t>(StanzaError::UnexpectedRequest) + 1 == kStanzaErrorCount);

// Indexed by StanzaErrorType.
constexpr std::array<std::string_view, 5> kTypeNames = {"auth", "cancel", "continue", "modify",
                                                        "wait"};

const Condition& condition(StanzaError e) noexcept {
    const auto i = static_cast<std::size_t>(e);
    return kConditions[i < kConditions.size() ? i
                                              : static_cast<std::size_t>(StanzaError::UndefinedCondition)];
}

}  // namespace

std::string_view name(StanzaError e) noexcept { return condition(e).name; }

std::string_view name(StanzaErrorType t) noexcept {
    const auto i = static_cast<std::size_t>(t);
    return i < kTypeNames.size() ? kTypeNames[i] : std::string_view("cancel");
}

StanzaErrorType default_type(StanzaError e) noexcept { return condition(e).type; }

std::optional<StanzaError> stanza_error_from_name(std::string_view n) noexcept {
    for (std::size_t i = 0; i < kConditions.size(); ++i) {
        if (kConditions[i].name == n) return static_cast<StanzaError>(i);
    }
    return std::nullopt;
}

std::optional<StanzaErrorType> stanza_error_type_from_name(std::string_view n) noexcept {
    for (std::size_t i = 0; i < kTypeNames.size(); ++i) {
        if (kTypeNames[i] == n) return static_cast<StanzaErrorType>(i);
    }
    return std::nullopt;
}

void append_stanza_error(std::string& out, StanzaError e, std::string_view text,
                         std::optional<StanzaErrorType> type, std::string_view by) {
    out += "<error type='";
    out += name(type.value_or(default_type(e)));
    out += '\'';
    if (!by.empty()) {
        out += " by='";
        xml::append_escaped_attr(out, by);
        out += '\'';
    }
    out += "><";
    out += name(e);
    out += " xmlns='";
    out += kStanzaErrorsNs;
    out += "'/>";
    if (!text.empty()) {
        out += "<text xmlns='";
        out += kStanzaErrorsNs;
        out += "'>";
        xml::append_escaped_text(out, text);
        out += "</text>";
    }
    out += "</error>";
}

xml::Element add_stanza_error(xml::Document& doc, xml::Element stanza, StanzaError e,
                              std::string_view text, std::optional<StanzaErrorType> type,
                              std::string_view by) {
    xml::Element error = doc.add_element(stanza, "error", stanza.ns());
    doc.set_attr(error, "type", name(type.value_or(default_type(e))));
    if (!by.empty()) doc.set_attr(error, "by", by);
    doc.add_element(error, name(e), kStanzaErrorsNs);
    if (!text.empty()) {
        xml::Element t = doc.add_element(error, "text", kStanzaErrorsNs);
        doc.add_text(t, text);
    }
    return error;
}

}  // namespace s2s
