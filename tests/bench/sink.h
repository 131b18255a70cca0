// The sink: a minimal XMPP server on loopback that plays the receiving end of the benchmark.
//
// - Behind s2s-proxy it is the local server (`local.server`): it accepts the proxy's plain
//   stream, answers every dialback request valid (it never needs to verify), counts stanzas and
//   measures each one's one-way delay from the send time the generator wrote into its id.
// - In the direct latency baseline the generator connects to it itself, with STARTTLS.
// - In the Prosody runs it is the generator domain's authoritative server: Prosody connects to it
//   (found through DNS SRV) to verify the generator's dialback keys, and sends its replies to the
//   generator's markers (XMPP pings) here.
//
// Stanza ids written by the generator (tests/bench/traffic.h): "t<20 digits>" carries the send
// time in ns of uv_hrtime(); "m<20 digits>" is a marker: the number of stanzas its link sent
// before it.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/tls/tls_context.h"

namespace s2s::bench {

struct SinkOptions {
    std::string domain;                           // the domain we answer as
    std::shared_ptr<const tls::Context> tls;      // offer STARTTLS when set
};

// Updated by the sink's loop thread, readable from any thread.
struct SinkCounters {
    std::atomic<uint64_t> stanzas{0};   // message/presence/iq received (markers and replies included)
    std::atomic<uint64_t> timed{0};     // stanzas with a send time in their id
    std::atomic<uint64_t> markers{0};   // marker stanzas or replies to them
    std::atomic<uint64_t> dialback_answered{0};
    std::atomic<uint64_t> streams{0};   // streams opened to us
    std::atomic<uint64_t> errors{0};    // streams that broke (bad XML, TLS failure...)
};

// Runs on one loop (one thread); counters(), latencies(), last_error(), connections() and
// record_latency() may be used from other threads.
class Sink {
public:
    Sink(uv_loop_t* loop, SinkOptions options);
    ~Sink();
    Sink(const Sink&) = delete;
    Sink& operator=(const Sink&) = delete;

    // Listens on ip:port (port 0: any); false and `error` set on failure.
    bool listen(const std::string& ip, int port, std::string* error);
    [[nodiscard]] int port() const noexcept { return port_; }

    // Records the one-way delay (ns) of every timed stanza while on.
    void record_latency(bool on) { recording_ = on; }
    [[nodiscard]] std::vector<uint64_t> latencies() const {
        std::lock_guard<std::mutex> lock(mu_);
        return latencies_;
    }
    void clear_latencies() {
        std::lock_guard<std::mutex> lock(mu_);
        latencies_.clear();
    }

    // Called (in the sink's thread) for each marker with its value (stanzas sent before it on
    // its link).
    std::function<void(uint64_t value)> on_marker;

    [[nodiscard]] const SinkCounters& counters() const noexcept { return counters_; }
    [[nodiscard]] std::size_t connections() const noexcept { return connections_; }
    // The last error a stream reported (for the run's diagnostics).
    [[nodiscard]] std::string last_error() const {
        std::lock_guard<std::mutex> lock(mu_);
        return last_error_;
    }

    // Stops listening and closes every stream (in the sink's thread).
    void close();

private:
    class Conn;
    friend class Conn;
    static void on_connection(uv_stream_t* server, int status) noexcept;

    uv_loop_t* loop_;
    SinkOptions options_;
    uv_tcp_t listener_{};
    bool listening_ = false;
    int port_ = 0;
    std::atomic<bool> recording_{false};
    mutable std::mutex mu_;           // latencies_, last_error_
    std::vector<uint64_t> latencies_;
    SinkCounters counters_;
    std::vector<Conn*> conns_;
    std::atomic<std::size_t> connections_{0};
    std::string last_error_;
};

}  // namespace s2s::bench
