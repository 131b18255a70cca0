// The soak's load (tests/bench/soak.py): waves of links that open, authenticate, send a few
// stanzas and end their streams, into a server whose local server is the driver's sink. One wave
// runs at a time; between waves nothing is open, so the server under test should fall back to
// its idle footprint.
#pragma once

#include <cstddef>

#include "tests/bench/driver.h"
#include "tests/bench/json_out.h"

namespace s2s::bench {

struct WaveParams {
    std::size_t links = 2000;       // links opened in the wave
    std::size_t concurrency = 64;   // at most this many negotiating at once
    std::size_t stanzas = 5;        // each link sends this many, then ends its stream
    double timeout_s = 300;         // for every link to end
    double delivery_timeout_s = 30;  // then for the sink to have every stanza
};

// One wave on `d` (traffic Burst, the sink started). Prints nothing; returns: wave (its number
// from 1), seconds, links (that authenticated), failures, sent, delivered (stanzas the sink got
// during the wave), and "error" when a link failed or a stanza did not arrive.
JsonOut run_wave(Driver& d, const WaveParams& p);

}  // namespace s2s::bench
