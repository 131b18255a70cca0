// proxy/stream/flow_gate: which streams are held back and when they read again. The first cases hold
// streams that are never connected (holding is bookkeeping plus a read stop); the last one runs
// the gate through Stream::send() over real loopback TCP.
#include <doctest/doctest.h>

#include <string>
#include <utility>

#include "proxy/stream/flow_gate.h"
#include "proxy/stream/stream.h"
#include "tests/unit/support/stream_harness.h"

using namespace s2s;

namespace {

using test::Peer;
using test::kStreamHeader;

// A stream that is never connected, owned by `p` (the loop closes it at the end).
Stream* idle_stream(test::TestLoop& t, Peer& p, uint64_t id) {
    p.stream = Stream::create(t.loop(), p, {}, id);
    return p.stream;
}

}  // namespace

TEST_CASE("flow_gate: hold() stops a stream reading until open(); null, the exception and a held stream are skipped") {
    test::TestLoop t;
    Stream* a = idle_stream(t, t.new_peer(), 1);
    Stream* b = idle_stream(t, t.new_peer(), 2);
    FlowGate gate, other;
    gate.hold(nullptr);
    gate.hold(b, b);  // a stream never waits for itself
    CHECK(gate.held() == 0);
    CHECK_FALSE(b->reading_stopped());

    gate.hold(a);
    gate.hold(a);
    other.hold(a);  // a stream waits at one gate at a time
    CHECK(gate.held() == 1);
    CHECK(other.held() == 0);
    CHECK(a->reading_stopped());

    gate.open();
    CHECK(gate.held() == 0);
    CHECK_FALSE(a->reading_stopped());
    other.hold(a);  // free to wait elsewhere now
    CHECK(other.held() == 1);
    other.open();
}

TEST_CASE("flow_gate: a moved gate keeps its streams; a destroyed gate lets them read") {
    test::TestLoop t;
    Stream* a = idle_stream(t, t.new_peer(), 1);
    Stream* b = idle_stream(t, t.new_peer(), 2);
    FlowGate first;
    first.hold(a);
    {
        FlowGate second(std::move(first));
        CHECK(first.held() == 0);
        CHECK(second.held() == 1);
        CHECK(a->reading_stopped());
        first.hold(b);
        second.hold(b);  // b already waits at `first`
        CHECK(second.held() == 1);
        second.open();   // a reads again; `first` still holds b
        CHECK_FALSE(a->reading_stopped());
        second.hold(a);
    }
    CHECK_FALSE(a->reading_stopped());
    CHECK(b->reading_stopped());
    first.open();
    CHECK_FALSE(b->reading_stopped());
}

TEST_CASE("flow_gate: a stream that closes leaves the gate it waits at") {
    test::TestLoop t;
    Peer& p = t.new_peer();
    Peer& q = t.new_peer();
    Stream* a = idle_stream(t, p, 1);
    idle_stream(t, q, 2);
    FlowGate gate;
    gate.hold(a);
    gate.hold(q.stream);
    CHECK(gate.held() == 2);
    a->abort("gone");
    REQUIRE(t.run_until([&] { return p.closed; }));
    CHECK(gate.held() == 1);
    gate.open();
    CHECK_FALSE(q.stream->reading_stopped());
}

TEST_CASE("flow_gate: a source stops reading while the stream it feeds is congested, and reads again once it drains") {
    test::TestLoop t;
    Peer& src = t.new_peer();  // server side of the sender's connection
    Peer& dst = t.new_peer();  // server side of the slow receiver's connection
    int accepted = 0;
    t.listen([&](uv_stream_t* l) {
        Peer& p = accepted++ == 0 ? dst : src;
        p.stream = Stream::create(t.loop(), p, {}, 10 + accepted);
        REQUIRE(uv_accept(l, p.stream->handle()) == 0);
        p.stream->start();
        if (&p == &dst) p.stream->send(kStreamHeader);
    });
    Peer& receiver = t.new_peer();
    int received = 0;
    receiver.on_stanza_hook = [&](Peer&) { ++received; };
    t.connect(receiver, 1);
    REQUIRE(t.run_until([&] { return dst.stream != nullptr && receiver.connect_status == 0; }));
    receiver.stream->pause_reading();  // the receiver does not read for now

    const int kStanzas = 200;
    std::string payload(64 * 1024, 'x');  // enough to fill the kernel socket buffers too
    bool was_stopped = false;
    src.on_stanza_hook = [&](Peer& me) {  // forward each stanza, much enlarged, to the slow receiver
        dst.stream->send("<message><body>" + payload + "</body></message>", me.stream);
        was_stopped |= me.stream->reading_stopped();
    };
    Peer& sender = t.new_peer();
    sender.on_connect_hook = [&](Peer& me) {
        me.stream->send(kStreamHeader);
        for (int i = 0; i < kStanzas; ++i) me.stream->send("<message><body>" + std::string(1024, 'y') + "</body></message>");
    };
    t.connect(sender, 2);
    REQUIRE(t.run_until([&] { return src.stream && src.stream->reading_stopped(); }));
    t.run_for(100);
    size_t forwarded = src.stanzas.size();
    CHECK(forwarded < static_cast<size_t>(kStanzas));  // the source stopped before reading everything
    CHECK(dst.stream->queued_bytes() < Stream::kHardLimit);  // and the destination stayed under its cap

    receiver.stream->resume_reading();  // the receiver reads again: everything flows
    REQUIRE(t.run_until([&] { return received == kStanzas; }, 10000));
    CHECK(was_stopped);
    CHECK_FALSE(src.stream->reading_stopped());
}
