#include "tests/bench/waves.h"

#include <string>

namespace s2s::bench {

JsonOut run_wave(Driver& d, const WaveParams& p) {
    static uint64_t wave = 0;
    ++wave;
    JsonOut j;
    j.num("wave", static_cast<double>(wave));
    d.burst_stanzas = p.stanzas;
    d.set_traffic(Traffic::Burst);
    const uint64_t completed0 = d.completed(), failures0 = d.failures(), sent0 = d.stanzas_sent();
    const uint64_t got0 = d.sink()->counters().stanzas;
    const double t0 = Driver::now_s();
    d.open_wave(p.links, p.concurrency);
    const bool ended = d.run_until([&] { return d.wave_done(); }, p.timeout_s);
    const double t1 = Driver::now_s();
    const uint64_t sent = d.stanzas_sent() - sent0;
    // What the server accepted reaches the sink a little after the links ended.
    const bool arrived = d.run_until([&] { return d.sink()->counters().stanzas - got0 >= sent; }, p.delivery_timeout_s);
    const uint64_t failures = d.failures() - failures0;
    j.num("seconds", t1 - t0)
        .num("links", static_cast<double>(d.completed() - completed0))
        .num("failures", static_cast<double>(failures))
        .num("sent", static_cast<double>(sent))
        .num("delivered", static_cast<double>(d.sink()->counters().stanzas - got0));
    if (!ended) j.str("error", "the wave's links had not all ended after " + std::to_string(p.timeout_s) + " s");
    else if (failures > 0) j.str("error", std::to_string(failures) + " links failed; last: " + d.last_failure());
    else if (!arrived) j.str("error", "stanzas sent did not all reach the sink");
    return j;
}

}  // namespace s2s::bench
