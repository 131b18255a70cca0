// Small pieces of the s2s protocol that every stream state machine writes or reads the same way:
// our stream header, dialback answers, the version and domain checks on what peers send.
#pragma once

#include <string>
#include <string_view>

#include "common/xmpp/jid.h"
#include "common/xml/xml.h"

namespace s2s {

// `<?xml version='1.0'?><stream:stream xmlns='jabber:server' ... db ...>` with the attributes that
// are not empty (`version` is written as '1.0' when `version` is set).
[[nodiscard]] std::string stream_header(std::string_view from, std::string_view to, std::string_view id, bool version);

// A dialback answer (db:result or db:verify): `<db:NAME from to [id] type='TYPE'/>`, or with an
// <error type='cancel'><CONDITION/><text>TEXT</text></error> child when `condition` is given.
[[nodiscard]] std::string dialback_answer(std::string_view name, std::string_view from, std::string_view to,
                                          std::string_view id, std::string_view type,
                                          std::string_view condition = {}, std::string_view text = {});

// The major number of an RFC 6120 version attribute ("1.0" -> 1); 0 when absent or malformed.
[[nodiscard]] int major_version(std::string_view version) noexcept;

// The normalised domain, or "" when `s` is not a valid domain.
[[nodiscard]] std::string domain_of(std::string_view s);

// Rewrites the stanza's attribute `name` ("from" or "to"), parsed as `jid`, when its domainpart is
// not in canonical form ("ａ.test", "Bücher.example"), and points `jid` at the new text. So the
// next hop reads the domain the checks were made on: a server mapping names as IDNA2003 does
// reads "faß.test" as "fass.test", which is another domain under UTS 46. Local and resource parts
// are kept as written. Nothing is allocated when the domain already is canonical.
void canonicalize_address(xml::Document& doc, std::string_view name, JidView& jid);

// Count a domain or a JID from a peer refused as invalid on addresses_refused_total, by `where`
// ("stream-header", "dialback", "stanza") and the reason the JID rules give for `raw`.
void count_refused_domain(std::string_view where, std::string_view raw);
void count_refused_jid(std::string_view where, std::string_view raw);

// Whether a normalised domain is an IP literal ("192.0.2.1", "[2001:db8::1]") rather than a name.
[[nodiscard]] bool is_ip_literal(std::string_view domain) noexcept;

// An attribute's value, or "" when absent.
[[nodiscard]] std::string attr_or_empty(const xml::Element& e, std::string_view name);

}  // namespace s2s
