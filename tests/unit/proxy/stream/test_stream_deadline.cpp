// proxy/stream/stream_deadline: the owner's deadline and the stanza deadline of a Stream over real
// loopback TCP.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/stream/stream.h"
#include "tests/unit/support/stream_harness.h"

using namespace s2s;
using test::Peer;
using test::kStreamHeader;
using test::tls_pair;
using Harness = test::StreamHarness;

TEST_CASE("stream_deadline: the deadline fires once and can be replaced or disarmed") {
    Harness h;
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.stream != nullptr && h.client.connect_status == 0; }));
    h.server.stream->set_deadline(5000);
    h.server.stream->set_deadline(30);  // replaces the first
    REQUIRE(h.run_until([&] { return !h.server.events.empty(); }));
    CHECK(h.server.events == std::vector<std::string>{"timeout"});
    h.client.stream->set_deadline(20);
    h.client.stream->set_deadline(0);
    h.run_for(100);
    CHECK(h.client.events == std::vector<std::string>{"connected 0"});
}

TEST_CASE("stream_deadline: a stanza not finished within stanza_timeout_ms ends the stream with policy-violation") {
    Harness h;
    h.options.stanza_timeout_ms = 150;
    const uint64_t before = metrics().stanza_limits.get("timeout");
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(std::string(kStreamHeader) + "<message><body>half"); };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }));
    CHECK(h.server.events == std::vector<std::string>{"open from=a.test", "parse-error policy-violation"});
    CHECK(metrics().stanza_limits.get("timeout") == before + 1);
}

TEST_CASE("stream_deadline: stanzas that each finish in time pass, however the reads cut them; keepalives start no clock") {
    Harness h;
    h.options.stanza_timeout_ms = 200;
    h.connect();
    REQUIRE(h.run_until([&] { return h.client.connect_status == 0 && h.server.stream != nullptr; }));
    h.client.stream->send(std::string(kStreamHeader) + "<message><body>1");
    // Every read ends inside a stanza for 1.2 s, but none of them lives 200 ms.
    for (int i = 2; i <= 12; ++i) {
        h.run_for(100);
        h.client.stream->send("</body></message><message><body>" + std::to_string(i));
    }
    h.client.stream->send("</body></message> ");
    h.run_for(500);  // a trailing keepalive is no stanza
    CHECK(h.server.events.size() == 13);  // open and 12 stanzas
    CHECK(h.server.events.back() == "stanza message");
}

TEST_CASE("stream_deadline: the stanza clock starts again while we hold reading back, and runs once we read again") {
    Harness h;
    h.options.stanza_timeout_ms = 100;
    h.server.on_open_hook = [](Peer& r) { r.stream->pause_reading(); };  // the rest waits in the kernel
    h.client.on_connect_hook = [](Peer& r) { r.stream->send(std::string(kStreamHeader) + "<message><body>half"); };
    h.connect();
    REQUIRE(h.run_until([&] { return !h.server.events.empty(); }));
    h.run_for(400);
    CHECK(h.server.events == std::vector<std::string>{"open from=a.test"});
    h.server.stream->resume_reading();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }, 1000));
    CHECK(h.server.events[1] == "parse-error policy-violation");
}
