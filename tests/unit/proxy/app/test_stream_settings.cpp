// proxy/app/stream_settings: the settings objects the streams read, filled from a loaded config.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/config/config_load.h"
#include "proxy/app/stream_settings.h"

using namespace s2s;

namespace {

Config load(const std::string& extra) {
    config::LoadResult r = config::load("t.toml",
                                        "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:5270\"\n" + extra,
                                        {});
    for (auto& e : r.errors) MESSAGE(e.str());
    REQUIRE(r.ok());
    return r.config;
}

}  // namespace

TEST_CASE("stream_settings: parser limits, with infinity capped and the deadline in ms") {
    Config c = load("");
    Limit size;
    size.value = 100000;
    xml::StreamOptions o = parse_options(c, size);
    CHECK(o.limits.max_stanza_size == 100000);
    CHECK(o.limits.max_stanza_memory == xml::StreamLimits::memory_for(100000));
    CHECK(o.limits.max_stanza_elements == static_cast<size_t>(c.max_stanza_elements));
    CHECK(o.stanza_timeout_ms == static_cast<uint64_t>(c.stanza_timeout.value));
    size.infinite = true;
    CHECK(parse_options(c, size).limits.max_stanza_size == static_cast<size_t>(kMaxStanzaSizeCap));
}

TEST_CASE("stream_settings: outgoing links: deadlines in ms, a zero state timeout is the smallest the timer has") {
    TlsContexts tls;
    OutboundSettings o;
    fill_outbound_settings(load("[s2s.outgoing]\nstate_timeout = 0\nconnection_timeout = 1234\n"
                                "stream_timeout = \"infinity\"\nmax_retry_delay = 7\nqueue_max_stanzas = 12\n"),
                           tls, &o);
    CHECK(o.state_timeout_ms == 1);
    CHECK(o.connect_timeout_ms == 1234);
    CHECK(o.idle_timeout_ms == 0);
    CHECK(o.max_retry_delay_ms == 7000);
    CHECK(o.queue_max_stanzas == 12);
    CHECK(o.max_rate == 0);
    fill_outbound_settings(load("[s2s.outgoing]\nstate_timeout = \"infinity\"\n"), tls, &o);
    CHECK(o.state_timeout_ms == 0);
}

TEST_CASE("stream_settings: outgoing links list what they accept in <bidi/> (XEP-0478) unless s2s.stream_limits is off") {
    TlsContexts tls;
    OutboundSettings o;
    fill_outbound_settings(load("[s2s.outgoing]\nmax_stanza_size = 20_000\nstream_timeout = 90_000\n"), tls, &o);
    CHECK(o.limits == "<limits xmlns='urn:xmpp:stream-limits:0'><max-bytes>20000</max-bytes>"
                      "<idle-seconds>90</idle-seconds></limits>");
    fill_outbound_settings(load("[s2s]\nstream_limits = false\n"), tls, &o);
    CHECK(o.limits.empty());
}

TEST_CASE("stream_settings: the local link checks the name it was configured by, unless told another") {
    TlsContexts tls;
    LocalSettings link;
    LocalVerifySettings verify;
    fill_local_settings(load(""), tls, &link, &verify);
    CHECK(link.tls.server_name.empty());  // an IP address is no name to check
    Config c = load("");
    c.local_server = "xmpp.a.test:5270";
    c.local_verify_server = "verify.a.test:5269";
    fill_local_settings(c, tls, &link, &verify);
    CHECK(link.tls.server_name == "xmpp.a.test");
    CHECK(verify.tls.server_name == "verify.a.test");
    c.local_tls_server_name = "named.a.test";
    fill_local_settings(c, tls, &link, &verify);
    CHECK(link.tls.server_name == "named.a.test");
    CHECK(verify.tls.server_name == "named.a.test");
}

TEST_CASE("stream_settings: one entry per listener, updated in place on the next fill") {
    Config c = load("[[listen.s2s]]\nport = 5269\nstate_timeout = 2000\n[[listen.s2s]]\nport = 5270\n"
                    "[[listen.local]]\nport = 5271\n");
    TlsContexts tls;
    tls.listeners.resize(c.listen_s2s.size());
    tls.local_listeners.resize(c.listen_local.size());
    std::vector<std::unique_ptr<InboundSettings>> inbound;
    fill_inbound_settings(c, tls, &inbound);
    REQUIRE(inbound.size() == 2);
    CHECK(inbound[0]->listener == "listen.s2s.0");
    CHECK(inbound[1]->listener == "listen.s2s.1");
    CHECK(inbound[0]->state_timeout_ms == 2000);
    const InboundSettings* first = inbound[0].get();
    fill_inbound_settings(c, tls, &inbound);
    CHECK(inbound[0].get() == first);  // streams hold references: the same object is updated

    SocketAddressSet own;
    std::vector<std::unique_ptr<LocalInSettings>> local;
    fill_local_in_settings(c, tls, &own, &local);
    REQUIRE(local.size() == 1);
    CHECK(local[0]->listener == "listen.local.0");
    CHECK(local[0]->own_outgoing == &own);
    CHECK(local[0]->verify_dialback);
}
