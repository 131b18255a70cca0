// The local domains an outbound link carries (proxy/features/link_domains): authentication state and
// queues. No socket.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/xmpp/xml_stream.h"
#include "proxy/features/link_domains.h"

using namespace s2s;

namespace {

QueuedStanza stanza(const std::string& id) {
    auto d = xml::parse_element("<message from='u@a.test' to='v@b.test' id='" + id + "'/>");
    REQUIRE(d);
    return QueuedStanza::capture(d->root(), xml::NamespaceScope::server_stream());
}

}  // namespace

TEST_CASE("link_domains: each local domain's state and queue; what the link carries and awaits") {
    size_t max_stanzas = 2, max_bytes = 1 << 20;
    LinkDomains domains(max_stanzas, max_bytes);
    CHECK(domains.find("a.test") == nullptr);
    CHECK_FALSE(domains.carries("a.test"));
    LinkDomains::Domain& a = domains.get("a.test");
    CHECK(a.auth == LinkDomains::Auth::None);
    CHECK_FALSE(domains.carries("a.test"));
    CHECK(a.queue.push(stanza("1")));
    CHECK(a.queue.push(stanza("2")));
    CHECK_FALSE(a.queue.push(stanza("3")));  // the limit read when the domain was first seen
    CHECK(domains.carries("a.test"));
    CHECK(domains.queued() == 2);
    CHECK(domains.fill() > 0);
    CHECK_FALSE(domains.pending());
    domains.get("c.test").auth = LinkDomains::Auth::Pending;
    CHECK(domains.pending());
    CHECK(domains.carries("c.test"));
    a.auth = LinkDomains::Auth::Valid;
    PairSet pairs;
    (void)pairs.insert("x.test", "y.test");
    domains.accepted_pairs("b.test", pairs);
    CHECK(pairs.size() == 1);
    CHECK(pairs.contains("b.test", "a.test"));
    std::vector<std::string> drained;
    domains.drain([&](QueuedStanza q) { drained.push_back(q.id); });
    CHECK(drained == std::vector<std::string>{"1", "2"});
    CHECK(domains.queued() == 0);
}
