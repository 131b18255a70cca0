#include "proxy/xmpp/xmpp.h"

#include "common/xmpp/jid.h"
#include "common/xmpp/stanza_error.h"
#include "proxy/ops/metrics.h"

namespace s2s {

std::string stream_header(std::string_view from, std::string_view to, std::string_view id, bool version) {
    std::string h = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'";
    auto add = [&h](const char* name, std::string_view value) {
        if (value.empty()) return;
        h.append(" ").append(name).append("='");
        xml::append_escaped_attr(h, value);
        h += "'";
    };
    add("from", from);
    add("to", to);
    add("id", id);
    if (version) h += " version='1.0'";
    return h + ">";
}

std::string dialback_answer(std::string_view name, std::string_view from, std::string_view to, std::string_view id,
                            std::string_view type, std::string_view condition, std::string_view text) {
    std::string r = "<db:" + std::string(name) + " from='" + xml::escape_attr(from) + "' to='" + xml::escape_attr(to) + "'";
    if (!id.empty()) r += " id='" + xml::escape_attr(id) + "'";
    r += " type='" + std::string(type) + "'";
    if (condition.empty()) return r + "/>";
    r += ">";
    append_stanza_error(r, *stanza_error_from_name(condition), text, StanzaErrorType::Cancel);
    return r + "</db:" + std::string(name) + ">";
}

int major_version(std::string_view v) noexcept {
    size_t dot = v.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot > 3) return 0;
    int major = 0;
    for (char c : v.substr(0, dot)) {
        if (c < '0' || c > '9') return 0;
        major = major * 10 + (c - '0');
    }
    return major;
}

std::string domain_of(std::string_view s) { return normalize_domain(s).value_or(""); }

void canonicalize_address(xml::Document& doc, std::string_view name, JidView& jid) {
    auto text = with_canonical_domain(jid);
    if (!text) return;
    xml::Element e = doc.root();
    doc.set_attr(e, name, *text);
    if (auto again = JidView::parse(e.attr(name).value_or(""))) jid = *again;  // always: the text is valid
}

void count_refused_domain(std::string_view where, std::string_view raw) {
    JidError why = JidError::ok;
    (void)is_valid_domain(raw, &why);
    metrics().addresses_refused.add(std::string(where) + ":" + jid_error_name(why));
}

void count_refused_jid(std::string_view where, std::string_view raw) {
    JidError why = JidError::ok;
    (void)JidView::parse(raw, &why);
    metrics().addresses_refused.add(std::string(where) + ":" + jid_error_name(why));
}

// Normalisation leaves an IPv6 literal in brackets, and lets an all-digit last label through only
// in a dotted quad.
bool is_ip_literal(std::string_view domain) noexcept {
    if (domain.empty()) return false;
    if (domain.front() == '[') return true;
    std::string_view last = domain.substr(domain.rfind('.') + 1);  // npos + 1 == 0: the whole name
    if (last.empty()) return false;
    for (char c : last)
        if (c < '0' || c > '9') return false;
    return true;
}

std::string attr_or_empty(const xml::Element& e, std::string_view name) { return std::string(e.attr(name).value_or("")); }

}  // namespace s2s
