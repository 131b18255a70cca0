// A connection the process tracks, so that shutdown, reload and metrics can reach every stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>

#include "common/xmpp/stream_error.h"

namespace s2s {

class Connection {
public:
    explicit Connection(uint64_t id) : id_(id) {}
    virtual ~Connection() = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Ends the stream with this error (e.g. system-shutdown) and closes the connection.
    virtual void shutdown(StreamError error, const std::string& why) = 0;
    // Frees memory the connection does not need while idle (see Stream::trim_if_idle).
    virtual void trim_idle(uint64_t now_ms, uint64_t idle_ms) = 0;
    // The settings it reads were reloaded (SIGHUP): apply what an open stream can take on, such
    // as its shaper's rate. Timeouts and limits are read from the settings when next used.
    virtual void reconfigure() {}

    // For metrics: the stream type ("s2s_in", "s2s_out", "local_in", "local_out",
    // "local_component"), its state machine's current state, and the stanzas it holds waiting to
    // be sent.
    [[nodiscard]] virtual const char* kind() const noexcept = 0;
    [[nodiscard]] virtual const char* state_label() const noexcept = 0;
    [[nodiscard]] virtual size_t queued_stanzas() const noexcept { return 0; }
    // How near its fullest queue is to its limits (StanzaQueue::fill), 0 to 1.
    [[nodiscard]] virtual double queue_fill() const noexcept { return 0; }

    [[nodiscard]] uint64_t id() const noexcept { return id_; }

private:
    uint64_t id_;
};

// The live connections; a connection adds itself when it starts and removes itself when its
// socket has closed, just before it is freed.
using ConnectionSet = std::unordered_set<Connection*>;

}  // namespace s2s
