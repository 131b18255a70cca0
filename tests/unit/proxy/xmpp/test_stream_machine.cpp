// The stream-machine base (StreamMachine): a small machine of three states, accepted on a real
// loopback socket with a scripted peer at the other end, shows what every stream machine gets.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "proxy/xmpp/stream_machine.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/null_router.h"
#include "tests/unit/support/stream_harness.h"

using namespace s2s;
using test::Peer;

namespace {

enum class ToyState {
    Waiting,  // accepted: the peer's header next
    Open,     // the peer's header came
    Closing,  // ended
};

// Records what the base makes it do; the test decides when it ends.
class Toy final : public StreamMachine<Toy, ToyState> {
public:
    using State = ToyState;
    static const char* state_name(State s) noexcept {
        switch (s) {
            case State::Waiting: return "waiting";
            case State::Open: return "open";
            case State::Closing: return "closing";
        }
        return "?";
    }
    explicit Toy(ProxyContext& ctx) : StreamMachine(ctx, State::Waiting) {}
    ~Toy() override = default;

    [[nodiscard]] const char* kind() const noexcept override { return "toy"; }
    void shutdown(StreamError error, const std::string& why) override { end_stream_with(error, why, why); }

    // The base's protected calls, for the test.
    bool accept(uv_stream_t* listener) {
        if (!accept_stream(listener, {}, Side::Public)) return false;
        return stream_->start();
    }
    void go(State s) { enter(s); }
    bool end(const std::string& why, std::string_view header = {}) { return end_stream(why, header); }
    bool end_with(StreamError e, const std::string& text, std::string_view header, bool writable) {
        return end_stream_with(e, text, "ended: " + text, header, writable);
    }
    bool close(const std::string& why) { return close_stream(why); }
    bool abort(const std::string& why) { return abort_stream(why); }
    [[nodiscard]] bool has_stream() const noexcept { return stream_ != nullptr; }

    std::vector<std::string> entered_log;  // each entered() call, by state name
    std::function<void(Toy&)> on_open;     // runs when the peer's header came
    bool* closed = nullptr;                // set when the socket has closed (the Toy is freed then)

private:
    friend StreamMachine;
    void entered(State s) { entered_log.push_back(state_name(s)); }

    void on_stream_open(const xml::StreamHeader&) override {
        enter(State::Open);
        if (on_open) on_open(*this);
    }
    void on_stanza(xml::Document&) override {}
    void on_stream_close() override { end("the peer closed"); }
    void on_stream_error(StreamError error, std::string_view text) override {
        end_with(error, std::string(text), test::kStreamHeader, true);
    }
    void on_timeout() override {}
    void on_closed(const std::string& reason) override {
        (void)reason;
        stream_ = nullptr;
        if (closed) *closed = true;
        delete this;
    }
};

struct Fixture {
    test::TestLoop t;
    Config config;
    DialbackKeys keys{"secret"};
    PolicyRules policy{config, false};
    test::NullRouter router;
    ProxyContext ctx{config, t.loop(), keys, policy, router, {}, 0};
    Peer& peer = t.new_peer();
    Toy* toy = nullptr;
    bool toy_closed = false;
    std::function<void(Toy&)> on_open;

    Fixture() {
        t.listen([this](uv_stream_t* l) {
            toy = new Toy(ctx);
            toy->closed = &toy_closed;
            toy->on_open = on_open;
            REQUIRE(toy->accept(l));
        });
        peer.on_connect_hook = [](Peer& p) { p.stream->send(test::kStreamHeader); };
    }
    ~Fixture() {
        for (Connection* c : std::vector<Connection*>(ctx.connections.begin(), ctx.connections.end()))
            c->shutdown(StreamError::SystemShutdown, "test over");
        t.shutdown([this] { return ctx.connections.empty(); });
    }
    // Connects the peer and runs until the toy's socket has closed and the peer's too.
    void run() {
        t.connect(peer);
        REQUIRE(t.run_until([&] { return toy_closed && peer.closed; }));
    }
};

}  // namespace

TEST_CASE("stream machine: in the context's connections, under its own id, from made to freed") {
    Fixture f;
    auto* a = new Toy(f.ctx);
    auto* b = new Toy(f.ctx);
    CHECK(f.ctx.connections.size() == 2);
    CHECK(f.ctx.connections.count(a) == 1);
    CHECK(a->id() != b->id());
    delete a;
    CHECK(f.ctx.connections.size() == 1);
    CHECK(f.ctx.connections.count(b) == 1);
    delete b;
    CHECK(f.ctx.connections.empty());
}

TEST_CASE("stream machine: enter() sets the state, then the machine's entered(); state_label() names it") {
    Fixture f;
    auto* toy = new Toy(f.ctx);
    CHECK(toy->state() == ToyState::Waiting);
    CHECK(std::string(toy->state_label()) == "waiting");
    CHECK(toy->entered_log.empty());  // the first state is not entered
    toy->go(ToyState::Open);
    CHECK(toy->state() == ToyState::Open);
    CHECK(std::string(toy->state_label()) == "open");
    CHECK(toy->entered_log == std::vector<std::string>{"open"});
    toy->trim_idle(0, 0);  // no stream: nothing to trim
    delete toy;
}

TEST_CASE("stream machine: a machine ends once; without a stream it only enters Closing") {
    Fixture f;
    auto* toy = new Toy(f.ctx);
    SUBCASE("end") { CHECK(toy->end("done")); }
    SUBCASE("end_with") { CHECK(toy->end_with(StreamError::PolicyViolation, "no", {}, true)); }
    SUBCASE("close") { CHECK(toy->close("done")); }
    SUBCASE("abort") { CHECK(toy->abort("done")); }
    CHECK(toy->state() == ToyState::Closing);
    CHECK(toy->entered_log == std::vector<std::string>{"closing"});
    // Every later ending does nothing.
    CHECK_FALSE(toy->end("again"));
    CHECK_FALSE(toy->end_with(StreamError::SystemShutdown, "again", {}, true));
    CHECK_FALSE(toy->close("again"));
    CHECK_FALSE(toy->abort("again"));
    CHECK(toy->entered_log == std::vector<std::string>{"closing"});
    delete toy;
}

TEST_CASE("stream machine: end_stream_with() writes our header when owed and the error, counted once") {
    const uint64_t before = metrics().stream_errors.get("policy-violation");
    Fixture f;
    f.on_open = [](Toy& toy) {
        CHECK(toy.end_with(StreamError::PolicyViolation, "not here", test::kStreamHeader, true));
        CHECK(toy.state() == ToyState::Closing);
        CHECK_FALSE(toy.end_with(StreamError::SystemShutdown, "twice", {}, true));
    };
    f.run();
    CHECK(f.toy_closed);
    CHECK(metrics().stream_errors.get("policy-violation") == before + 1);
    CHECK(f.peer.events ==
          std::vector<std::string>{"connected 0", "open from=a.test", "stream-error policy-violation", "close"});
    CHECK(f.peer.saw("not here"));
    CHECK(f.ctx.connections.empty());
}

TEST_CASE("stream machine: where no XML may be written, end_stream_with() counts the error and closes silently") {
    const uint64_t before = metrics().stream_errors.get("connection-timeout");
    Fixture f;
    f.on_open = [](Toy& toy) {
        CHECK(toy.end_with(StreamError::ConnectionTimeout, "quiet", test::kStreamHeader, false));
    };
    f.run();
    CHECK(metrics().stream_errors.get("connection-timeout") == before + 1);
    CHECK(f.peer.events == std::vector<std::string>{"connected 0"});
}

TEST_CASE("stream machine: end_stream() and close_stream() end without an error, abort_stream() drops the rest") {
    const uint64_t before = metrics().stream_errors.get("policy-violation");
    Fixture f;
    SUBCASE("end: our header and the closing tag") {
        f.on_open = [](Toy& toy) { CHECK(toy.end("finished", test::kStreamHeader)); };
        f.run();
        CHECK(f.peer.events == std::vector<std::string>{"connected 0", "open from=a.test", "close"});
    }
    SUBCASE("close: what is queued leaves, nothing is added") {
        f.on_open = [](Toy& toy) { CHECK(toy.close("finished")); };
        f.run();
        CHECK(f.peer.events == std::vector<std::string>{"connected 0"});
    }
    SUBCASE("abort") {
        f.on_open = [](Toy& toy) { CHECK(toy.abort("finished")); };
        f.run();
        CHECK(f.peer.events == std::vector<std::string>{"connected 0"});
    }
    CHECK(metrics().stream_errors.get("policy-violation") == before);
}

TEST_CASE("stream machine: a peer that breaks the stream is answered through the same ending") {
    Fixture f;
    f.peer.on_connect_hook = [](Peer& p) { p.stream->send(std::string(test::kStreamHeader) + "<a><b></a>"); };
    f.run();
    CHECK(f.peer.saw("not-well-formed"));
}
