// What every stream state machine of the proxy is built on (S2SIn, S2SOut, LocalIn, LocalVerify,
// and LocalReconnect under the two local links): the connection the process tracks, the one
// Stream it owns at a time, its state, the one way that state changes, and the ways the stream
// ends. A machine then says only what its protocol does in each state.
//
// The rules it keeps for every machine:
// - A machine is in ProxyContext::connections from the moment it is made until it is freed.
// - The state changes only through enter(s), which sets it and then calls the machine's own
//   entered(s), where a state arms what it needs on entry (a deadline, routes); a machine that
//   arms nothing declares no entered().
// - A machine's State has a Closing value: the state it ends in. end_stream(), end_stream_with(),
//   close_stream() and abort_stream() are the ways a machine ends its stream: each enters Closing
//   first (so nothing it calls back finds the machine open), then ends the stream if it has one;
//   once the machine is Closing they do nothing and say so (false). The stream error itself is
//   written and counted by Stream::end_with (stream.h); the machine logs why before it ends. A
//   machine that outlives its streams (LocalReconnect opens a new one after a close) drops one
//   stream through the Stream itself; the endings here are the machine's own end.
// - The stream tells the machine on_closed() when its socket has closed, and is freed right after:
//   the machine forgets it there (stream_ = nullptr) and decides what follows.
//
// Why a class template over the machine and its State (CRTP) rather than a base class with
// virtual functions: each machine keeps its own `enum class State` (a comment on each value,
// switches the compiler checks for a missing one), the state's name for logs and metrics and what
// a state arms on entry are found at compile time (no virtual call, nothing per object), and the
// base holds nothing the machines did not hold already: the context, the stream and the state (a
// machine that declares its small fields first fills the room left after the state). The part
// that does not depend on the State (joining the connections, making or accepting the
// stream) is StreamMachineBase, compiled once. The State is declared before the machine's class
// (the base needs it to hold the state); the machine names it State again, and declares
// `static const char* state_name(State) noexcept`.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/xmpp/stream_error.h"
#include "common/xmpp/xml_stream.h"
#include "proxy/ops/metrics.h"
#include "proxy/stream/connection.h"
#include "proxy/stream/stream.h"
#include "proxy/xmpp/context.h"

namespace s2s {

class StreamMachineBase : public Connection, protected Stream::Owner {
public:
    // Frees the idle stream's memory (Stream::trim_if_idle).
    void trim_idle(uint64_t now_ms, uint64_t idle_ms) override {
        if (stream_) stream_->trim_if_idle(now_ms, idle_ms);
    }

protected:
    // Joins ctx.connections under a new connection id.
    explicit StreamMachineBase(ProxyContext& ctx);
    // Leaves ctx.connections.
    ~StreamMachineBase() override;

    // A new stream for this machine, not yet accepted or connected: its bytes counted on `side`,
    // reading held to `max_rate` bytes/s (0: no limit).
    Stream& open_stream(const xml::StreamOptions& parse, Side side, uint64_t max_rate = 0);
    // The same, for the connection waiting on `listener`; false when it could not be accepted
    // (the stream then aborts and on_closed() follows).
    [[nodiscard]] bool accept_stream(uv_stream_t* listener, const xml::StreamOptions& parse, Side side,
                                     uint64_t max_rate = 0);

    ProxyContext& ctx_;
    Stream* stream_ = nullptr;  // null until made, and once on_closed() has been told
};

template <class Machine, class State>
class StreamMachine : public StreamMachineBase {
public:
    [[nodiscard]] State state() const noexcept { return state_; }
    [[nodiscard]] const char* state_label() const noexcept override { return Machine::state_name(state_); }

protected:
    StreamMachine(ProxyContext& ctx, State first) : StreamMachineBase(ctx), state_(first) {}
    ~StreamMachine() override = default;

    // The one way the state changes: then the machine's entered(s).
    void enter(State s) {
        state_ = s;
        static_cast<Machine*>(this)->entered(s);
    }
    // What a state arms on entry; a machine that arms something declares its own.
    void entered(State) noexcept {}

    // Whether the machine has ended (or is ending) its stream.
    [[nodiscard]] bool closing() const noexcept { return state_ == State::Closing; }

    // Ends the stream: `header` (ours, when owed) and </stream:stream>, then the close (Stream::end).
    bool end_stream(const std::string& why, std::string_view header = {}) {
        if (!begin_ending()) return false;
        if (stream_) stream_->end(why, header);
        return true;
    }
    // Ends the stream with `error` and `text` (Stream::end_with: written and counted there), or,
    // where no XML may be written (`writable` false: a TLS handshake under way, or expected first
    // on a direct-TLS port), counts it and closes without a word (Stream::end_unsent).
    bool end_stream_with(StreamError error, std::string_view text, const std::string& why,
                         std::string_view header = {}, bool writable = true) {
        if (!begin_ending()) return false;
        if (stream_ && writable) stream_->end_with(error, text, why, header);
        else if (stream_) stream_->end_unsent(error, why);
        return true;
    }
    // Closes the stream once what is queued has left, adding nothing (Stream::close).
    bool close_stream(const std::string& why) {
        if (!begin_ending()) return false;
        if (stream_) stream_->close(why);
        return true;
    }
    // Closes the stream now, dropping what is queued (Stream::abort).
    bool abort_stream(const std::string& why) {
        if (!begin_ending()) return false;
        if (stream_) stream_->abort(why);
        return true;
    }

    State state_;

private:
    bool begin_ending() {
        if (closing()) return false;
        enter(State::Closing);
        return true;
    }
};

}  // namespace s2s
