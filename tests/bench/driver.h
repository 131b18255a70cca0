// The generator side of a run: a libuv loop, the sink, and a set of links to the server under
// test, with the traffic modes the scenarios need. Scenario code is written as a sequence of
// steps: run_until() turns the loop until a condition holds or its deadline passes.
//
// Traffic modes:
//   Quiet      links stay idle once authenticated (memory per link)
//   Saturate   the links keep up to kInFlight bytes in all queued toward the server: they write
//              as fast as the server reads (TCP backpressure decides); optional markers
//              every N stanzas
//   Paced      one link sends `rate` stanzas per second, each stamped when it is written
//   Churn      every link ends its stream as soon as it is authenticated and is replaced by a new
//              one (handshakes)
//   Burst      every link sends `burst_stanzas` stanzas as soon as it is authenticated, then ends
//              its stream; links are opened by open_wave() and not replaced (the soak's waves)
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/link.h"
#include "tests/bench/sink.h"
#include "tests/bench/traffic.h"

namespace s2s::bench {

enum class Traffic { Quiet, Saturate, Paced, Churn, Burst };

// Stanzas per generator write (several TLS records of up to 16 KB in one write).
inline constexpr std::size_t kPumpBatch = 192;
// Bytes all saturating links together keep handed to libuv (each at least kMinInFlight): about
// what one loop turn may encrypt, so the generator's turns stay short.
inline constexpr std::size_t kInFlight = 256 * 1024;
inline constexpr std::size_t kMinInFlight = 16 * 1024;

struct MarkerSeen {
    uint64_t at_ns;  // uv_hrtime() when the sink saw it
    uint64_t value;  // stanzas its link had sent before it
};

class Driver final : private Link::Listener {
public:
    Driver();
    ~Driver();
    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;

    [[nodiscard]] uv_loop_t* loop() noexcept { return &loop_; }

    // The sink (optional): listens before links are opened, and runs on a loop of its own in a
    // thread of its own, so that the generator's bursts of encryption never delay its reads.
    bool start_sink(const SinkOptions& options, const std::string& ip, int port, std::string* error);
    [[nodiscard]] Sink* sink() noexcept { return sink_.get(); }

    // What new links look like. `from_pattern`: the link's domain, '%' replaced by its number.
    LinkOptions link_template;
    std::string from_pattern = "gen.test";
    // Link numbers are taken modulo this in from_pattern (0: not), so that waves of links reuse a
    // pool of remote domains the way a server's peers come back.
    uint64_t domain_pool = 0;
    // Burst: stanzas each link sends before it ends its stream.
    std::size_t burst_stanzas = 1;
    // Saturate: stanzas per write (each write is cut into TLS records of up to 16 KB).
    std::size_t pump_batch = kPumpBatch;
    // New links resume the TLS session of the first link that completed (session tickets).
    bool resume_sessions = false;
    // Source addresses links are spread over (empty: the kernel chooses).
    std::vector<sockaddr_storage> sources;

    // Opens links until `total` exist (ready or negotiating), at most `concurrency` negotiating at
    // once; returns at once, links keep opening while the loop runs.
    void open_links(std::size_t total, std::size_t concurrency);
    // Burst: opens `count` more links, at most `concurrency` negotiating at once; returns at once.
    // The wave is over when wave_done().
    void open_wave(std::size_t count, std::size_t concurrency);
    [[nodiscard]] bool wave_done() const noexcept { return next_id_ >= wave_end_ && links_.empty(); }
    [[nodiscard]] std::size_t ready() const noexcept { return ready_; }
    [[nodiscard]] std::size_t live() const noexcept { return links_.size(); }
    [[nodiscard]] uint64_t failures() const noexcept { return failures_; }
    [[nodiscard]] const std::string& last_failure() const noexcept { return last_failure_; }
    [[nodiscard]] uint64_t completed() const noexcept { return completed_; }  // links that became ready, ever

    void set_traffic(Traffic t);
    [[nodiscard]] Traffic traffic() const noexcept { return traffic_; }
    // Saturate: a marker after every `every` stanzas of each link (0: none), to `marker_to`.
    void set_markers(uint64_t every, const std::string& marker_to) {
        marker_every_ = every;
        marker_to_ = marker_to;
    }
    // Paced: stanzas per second over all links (sent on the first ready link).
    void set_rate(double per_s) { rate_ = per_s; }
    // Sends one marker on every ready link (to `to`), e.g. so that the server has set up its side
    // for every link's domain before the load starts.
    void send_marker_all(const std::string& to);
    [[nodiscard]] uint64_t stanzas_sent() const noexcept { return stanzas_sent_; }
    [[nodiscard]] std::vector<MarkerSeen> markers() const {
        std::lock_guard<std::mutex> lock(markers_mu_);
        return markers_;
    }

    // Turns the loop until done() or `timeout_s` passes; false on timeout.
    bool run_until(const std::function<bool()>& done, double timeout_s);
    // Turns the loop for `seconds`.
    void run_for(double seconds);
    // Closes every link and the sink and turns the loop until they are gone.
    void shutdown();

    [[nodiscard]] static double now_s() { return static_cast<double>(uv_hrtime()) * 1e-9; }

private:
    // Link::Listener
    void on_ready(Link& link) override;
    void on_closed(Link& link, const std::string& reason, bool was_ready) override;
    void on_writable(Link& link) override;

    void stop_sink();
    void open_more();
    void pump(Link& link);
    void pace();
    static void on_tick(uv_timer_t* t) noexcept;

    uv_loop_t loop_{};
    uv_timer_t tick_{};
    // The sink's own loop and thread; sink_stop_ asks it to close everything and end.
    uv_loop_t sink_loop_{};
    uv_async_t sink_stop_{};
    std::thread sink_thread_;
    std::unique_ptr<Sink> sink_;
    std::set<Link*> links_;
    std::size_t target_ = 0, concurrency_ = 0, negotiating_ = 0, ready_ = 0;
    uint64_t next_id_ = 0, wave_end_ = 0, failures_ = 0, completed_ = 0;
    std::string last_failure_;
    Traffic traffic_ = Traffic::Quiet;
    std::unique_ptr<StanzaTemplate> template_;  // for the links' common shape
    std::string batch_;
    uint64_t marker_every_ = 0;
    std::string marker_to_;
    double rate_ = 1000;
    uint64_t pace_start_ns_ = 0, stanzas_sent_ = 0, paced_sent_ = 0;
    mutable std::mutex markers_mu_;
    std::vector<MarkerSeen> markers_;
    bool stopping_ = false;
    std::shared_ptr<const tls::SavedSession> saved_;
};

}  // namespace s2s::bench
