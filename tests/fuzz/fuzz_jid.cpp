// libFuzzer target for common/xmpp/jid: parsing never crashes, and on valid input
//  - the owning Jid and the view agree, normalising twice changes nothing,
//  - to_string() parses back to an equal JID (and an equal view),
//  - the domain helpers agree with the parser,
//  - with_canonical_domain gives a JID equal to the input whose domain is already canonical.
#include "common/xmpp/jid.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    s2s::JidError why = s2s::JidError::ok;
    const auto view = s2s::JidView::parse(in, &why);
    const auto jid = s2s::Jid::parse(in);
    require(view.has_value() == jid.has_value());
    require(view.has_value() == (why == s2s::JidError::ok));

    // Domain helpers on the raw input, whatever it is.
    const auto dom = s2s::normalize_domain(in);
    require(dom.has_value() == s2s::is_valid_domain(in));
    if (dom) {
        require(s2s::normalize_domain(*dom) == dom);
        require(s2s::domains_equal(in, *dom));
    }

    if (!jid) return 0;
    const std::string& text = jid->to_string();
    require(*view == jid->view());
    require(s2s::Jid::from_view(*view) == *jid);

    const auto again = s2s::Jid::parse(text);
    require(again.has_value());
    require(*again == *jid);
    require(again->to_string() == text);  // normalising twice = once
    require(again->local() == jid->local());
    require(again->domain() == jid->domain());
    require(again->resource() == jid->resource());

    const auto again_view = s2s::JidView::parse(text);
    require(again_view.has_value());
    require(*again_view == *view);

    require(s2s::normalize_domain(view->domain()) == std::string(jid->domain()));
    require(jid->bare().to_string() == jid->bare_string());
    require(jid->bare().view() == view->bare());

    const auto parts = s2s::Jid::from_parts(view->local(), view->domain(), view->resource());
    require(parts.has_value());
    require(*parts == *jid);

    const auto rewritten = s2s::with_canonical_domain(*view);
    const auto canonical = s2s::JidView::parse(rewritten ? std::string_view(*rewritten) : in);
    require(canonical.has_value());
    require(*canonical == *view);
    require(canonical->domain() == jid->domain());
    require(!s2s::with_canonical_domain(*canonical).has_value());
    return 0;
}
