// The network measurements, each on a Driver the caller has set up (link template, sink, sources)
// and against a server process `pid` whose CPU time and memory are read from /proc. Each returns
// a JSON object; "error" is set when the run could not measure what it should.
#pragma once

#include <string>
#include <vector>

#include "tests/bench/driver.h"
#include "tests/bench/json_out.h"

namespace s2s::bench {

struct ThroughputParams {
    std::size_t links = 1;
    double warmup_s = 1;
    double seconds = 5;
    uint64_t marker_every = 0;  // >0: count what the server processed by its answers to markers
    std::string marker_to;      // the domain markers are sent to (the server's own)
};
JsonOut run_throughput(Driver& d, int pid, const ThroughputParams& p);

// Latency is measured across processes, as between two servers: the generator (run_paced) sends
// stanzas stamped with their send time at a fixed rate; the sink, in another process
// (run_latency_sink), records each one's one-way delay.
struct PacedParams {
    double rate = 1000;
    double seconds = 17;  // the sink's warm-up and window, and a little more
};
JsonOut run_paced(Driver& d, const PacedParams& p);

struct LatencySinkParams {
    double warmup_s = 1;      // from the first timed stanza
    double seconds = 15;      // then recorded for this long
    double timeout_s = 60;    // for the first stanza to arrive
    std::string samples_out;  // file for the sorted delays (ms), thinned for plotting
    std::string raw_out;      // file for every delay (ms) in arrival order (to look for patterns)
};
JsonOut run_latency_sink(Driver& d, const LatencySinkParams& p);

struct IdleParams {
    std::vector<std::size_t> counts = {1000};
    double settle_s = 16;  // s2s-proxy frees idle streams' buffers after 10 s of quiet, swept every 5 s
    std::size_t concurrency = 64;
    double open_timeout_s = 240;
};
JsonOut run_idle(Driver& d, int pid, const IdleParams& p);

struct HandshakeParams {
    std::size_t concurrency = 16;
    double warmup_s = 1;
    double seconds = 6;
};
JsonOut run_handshakes(Driver& d, int pid, const HandshakeParams& p);

}  // namespace s2s::bench
