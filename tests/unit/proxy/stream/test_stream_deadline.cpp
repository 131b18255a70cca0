// proxy/stream/stream_deadline: the owner's deadline, the stanza deadline and the send deadline
// of a Stream over real loopback TCP.
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

// ---- the send deadline --------------------------------------------------------------------------

namespace {

constexpr size_t kChunk = 64 * 1024;

// Small kernel buffers on both ends, so that what the server writes waits in its own output soon.
void small_buffers(Stream& s, bool send) {
    int size = 8192;
    auto* h = reinterpret_cast<uv_handle_t*>(s.handle());
    if (send) (void)uv_send_buffer_size(h, &size);
    else (void)uv_recv_buffer_size(h, &size);
}

// The server answers the client's header with `bytes` bytes of stanzas, in 64 KiB batches.
void answer_with(Harness& h, size_t bytes) {
    h.server.on_open_hook = [bytes](Peer& r) {
        small_buffers(*r.stream, true);
        r.stream->send(kStreamHeader);
        const std::string stanza = "<message><body>" + std::string(kChunk - 32, 'x') + "</body></message>";
        for (size_t sent = 0; sent < bytes; sent += stanza.size()) r.stream->send(stanza);
    };
}

// The client sends its header and reads nothing more (until the test resumes it); `small`: with
// a small kernel receive buffer.
void client_stops_reading(Harness& h, bool small) {
    h.client.on_connect_hook = [small](Peer& r) {
        if (small) small_buffers(*r.stream, false);
        r.stream->pause_reading();
        r.stream->send(kStreamHeader);
    };
}

}  // namespace

TEST_CASE("stream_deadline: a peer that stops reading is told connection-timeout after send_timeout_ms") {
    Harness h;
    h.options.send_timeout_ms = 200;
    answer_with(h, 1024 * 1024);
    client_stops_reading(h, false);  // until told
    const uint64_t before = metrics().send_timeouts[static_cast<int>(Side::Public)];
    h.connect();
    REQUIRE(h.run_until([&] { return !h.server.events.empty(); }));
    const uint64_t start = h.loop().now_ms();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }, 3000));
    CHECK(h.server.events[1] == "send-timeout");
    CHECK(h.loop().now_ms() - start >= 190);
    CHECK(h.server.send_timeout_why.find("more than 262144 bytes of our output waiting for 200 ms") != std::string::npos);
    CHECK(metrics().send_timeouts[static_cast<int>(Side::Public)] == before + 1);
    CHECK(h.server.stream->state() == Stream::State::Closing);
    // The peer reads again: it gets what was queued, then the stream error, then the close.
    h.client.stream->resume_reading();
    REQUIRE(h.run_until([&] { return h.server.closed && h.client.closed; }, 5000));
    CHECK(h.client.events.back() == "close");
    CHECK(h.client.events[h.client.events.size() - 2] == "stream-error connection-timeout");
    CHECK(h.server.closed_reason.find("the peer left more than") != std::string::npos);
}

TEST_CASE("stream_deadline: below the high-water mark, a peer that takes none of our output for send_timeout_ms is cut off") {
    Harness h;
    h.options.send_timeout_ms = 200;
    answer_with(h, 192 * 1024);
    client_stops_reading(h, true);
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 2; }, 3000));
    CHECK(h.server.events[1] == "send-timeout");
    CHECK(h.server.send_timeout_why.find("the peer took none of our output for 200 ms") != std::string::npos);
}

TEST_CASE("stream_deadline: a peer that reads slowly but keeps our output below the high-water mark is not cut off") {
    Harness h;
    h.options.send_timeout_ms = 500;
    answer_with(h, 192 * 1024);
    h.client.on_connect_hook = [](Peer& r) {
        small_buffers(*r.stream, false);
        r.stream->set_rate_limit(96 * 1024);  // about 2 s for all of it: the clock restarts as it reads
        r.stream->send(kStreamHeader);
    };
    h.connect();
    REQUIRE(h.run_until([&] { return h.client.events.size() >= 5; }, 5000));  // connected, open, 3 stanzas
    CHECK(h.server.events == std::vector<std::string>{"open from=a.test"});
    CHECK_FALSE(h.server.closed);
}

TEST_CASE("stream_deadline: the owner may end the stream its own way when the peer stops reading") {
    Harness h;
    h.options.send_timeout_ms = 100;
    answer_with(h, 192 * 1024);
    h.server.on_send_timeout_hook = [](Peer& r) { r.stream->abort("the owner's own ending"); };
    client_stops_reading(h, false);
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.closed; }, 3000));
    CHECK(h.server.closed_reason == "the owner's own ending");
}

TEST_CASE("stream_deadline: with send_timeout_ms 0 a peer that stops reading holds the stream") {
    Harness h;
    answer_with(h, 192 * 1024);
    client_stops_reading(h, true);
    h.connect();
    REQUIRE(h.run_until([&] { return !h.server.events.empty(); }));
    h.run_for(400);
    CHECK(h.server.events == std::vector<std::string>{"open from=a.test"});
    CHECK_FALSE(h.server.closed);
}
