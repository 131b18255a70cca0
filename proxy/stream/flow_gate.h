// Backpressure between streams: where a stream waits while what it feeds has no room (another
// stream's output above its high-water mark, a stanza queue filling up). The writer names the
// stream a stanza was read from (its source, passed along with the stanza: Stream::send(),
// QueuedStanza::source); hold() stops that stream reading, open() lets every stream held here
// read again. A gate opens when it is destroyed, and a stream that goes away leaves the gate it
// waits at. Used by Stream (the sources waiting for its output) and StanzaQueue (queue.h).
#pragma once

#include <cstddef>
#include <vector>

namespace s2s {

class Stream;

class FlowGate {
public:
    FlowGate() = default;
    ~FlowGate() { open(); }
    FlowGate(FlowGate&& other) noexcept;  // the held streams wait at the new gate
    FlowGate& operator=(FlowGate&&) = delete;
    FlowGate(const FlowGate&) = delete;
    FlowGate& operator=(const FlowGate&) = delete;

    // Holds `source`, unless it is null (what is written was read from no stream: s2s-proxy's
    // own words, a stanza taken from a queue), is `except`, or already waits somewhere.
    void hold(Stream* source, const Stream* except = nullptr);
    void open();
    [[nodiscard]] std::size_t held() const noexcept { return held_.size(); }

private:
    friend class Stream;
    // A stream going away stops waiting here (without being told to read again).
    void leave(const Stream* source);

    std::vector<Stream*> held_;
};

}  // namespace s2s
