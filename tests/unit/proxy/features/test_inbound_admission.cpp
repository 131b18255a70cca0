// What one client address may cost on a listener (proxy/features/inbound_admission): the counts a stream
// holds, refused past their limits, given back when it goes. No socket.
#include <doctest/doctest.h>

#include <memory>

#include "proxy/features/inbound_admission.h"
#include "proxy/ops/metrics.h"

using namespace s2s;

TEST_CASE("inbound_admission: streams per client address are counted while they live, refused past the limit") {
    InboundSettings settings;
    settings.listener = "listen.s2s.0";
    settings.max_connections_per_host = Limit{2, false};
    settings.max_connection_rate_per_host = Limit{0, true};
    LogContext log{1, "", ""};
    uint64_t refused = metrics().connections_refused.get("max_connections_per_host");
    auto one = std::make_unique<InboundAdmission>(settings);
    auto two = std::make_unique<InboundAdmission>(settings);
    auto three = std::make_unique<InboundAdmission>(settings);
    CHECK_FALSE(one->admit_host("192.0.2.7", 0, log));
    CHECK_FALSE(two->admit_host("192.0.2.7", 0, log));
    CHECK(three->admit_host("192.0.2.7", 0, log) == "too many connections from your address");
    CHECK(three->host() == "192.0.2.7");
    CHECK(metrics().connections_refused.get("max_connections_per_host") == refused + 1);
    CHECK(settings.per_host["192.0.2.7"] == 3);  // the refused one counts until it goes
    three.reset();
    two.reset();
    CHECK(settings.per_host["192.0.2.7"] == 1);
    one.reset();
    CHECK(settings.per_host.count("192.0.2.7") == 0);
}

TEST_CASE("inbound_admission: new connections a second per address, and TLS handshakes at once per listener") {
    InboundSettings settings;
    settings.max_connection_rate_per_host = Limit{1, false};
    settings.max_tls_handshakes = Limit{1, false};
    LogContext log{1, "", ""};
    InboundAdmission first(settings), second(settings);
    CHECK_FALSE(first.admit_host("192.0.2.8", 1000, log));
    CHECK(second.admit_host("192.0.2.8", 1000, log) == "too many new connections from your address; try again later");
    CHECK_FALSE(first.begin_handshake(log));
    CHECK(settings.handshakes == 1);
    CHECK(second.begin_handshake(log) == "too many TLS handshakes in progress; try again later");
    first.end_handshake();
    first.end_handshake();  // once only
    CHECK(settings.handshakes == 0);
    {
        InboundAdmission third(settings);
        CHECK_FALSE(third.begin_handshake(log));
        CHECK(settings.handshakes == 1);
    }
    CHECK(settings.handshakes == 0);
}
