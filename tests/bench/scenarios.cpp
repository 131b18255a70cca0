#include "tests/bench/scenarios.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "tests/bench/proc_stats.h"

namespace s2s::bench {

namespace {

double self_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

// Opens `n` links and waits until all are authenticated; "" or why not.
std::string open_and_wait(Driver& d, std::size_t n, std::size_t concurrency, double timeout_s) {
    d.open_links(n, concurrency);
    bool ok = d.run_until([&] { return d.ready() >= n || d.failures() > 0; }, timeout_s);
    if (d.failures() > 0) return "a link failed: " + d.last_failure();
    if (!ok)
        return "only " + std::to_string(d.ready()) + " of " + std::to_string(n) + " links authenticated within " +
               std::to_string(static_cast<int>(timeout_s)) + " s";
    return "";
}

double percentile(const std::vector<double>& sorted, double q) {
    if (sorted.empty()) return NAN;
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

}  // namespace

JsonOut run_throughput(Driver& d, int pid, const ThroughputParams& p) {
    JsonOut j;
    j.num("links", static_cast<double>(p.links));
    if (std::string e = open_and_wait(d, p.links, 64, 120); !e.empty()) return j.str("error", e);
    // One stanza per link first, until each has reached the sink: the server behind the link under
    // test sets up its side for each new domain (s2s-proxy: dialback on the local link) before
    // the load starts, so what is measured is the steady state.
    if (d.sink()) {
        const uint64_t before = d.sink()->counters().stanzas;
        d.send_marker_all(p.marker_to);
        if (!d.run_until([&] { return d.sink()->counters().stanzas >= before + p.links || d.failures() > 0; }, 30))
            return j.str("error", "the first stanza of each link did not reach the sink within 30 s (" +
                                      std::to_string(d.sink()->counters().stanzas - before) + " of " +
                                      std::to_string(p.links) + ")");
    }
    d.set_markers(p.marker_every, p.marker_to);
    d.set_traffic(Traffic::Saturate);
    d.run_for(p.warmup_s);
    const ProcSample s0 = sample_process(pid);
    const double g0 = self_cpu_s();
    const double t0 = Driver::now_s();
    const uint64_t c0 = d.sink() ? d.sink()->counters().stanzas.load() : 0;
    d.run_for(p.seconds);
    const ProcSample s1 = sample_process(pid);
    const double g1 = self_cpu_s();
    const double t1 = Driver::now_s();
    const uint64_t c1 = d.sink() ? d.sink()->counters().stanzas.load() : 0;
    d.set_traffic(Traffic::Quiet);
    const double window = t1 - t0;
    if (d.failures() > 0) return j.str("error", "a link failed: " + d.last_failure());
    if (!s0.ok || !s1.ok) return j.str("error", "cannot read /proc/" + std::to_string(pid));

    double rate = 0;
    if (p.marker_every > 0) {
        // What the server processed: its answers to the markers (each carries the number of
        // stanzas sent before it), first and last inside the window.
        const std::vector<MarkerSeen> markers = d.markers();
        const MarkerSeen* a = nullptr;
        const MarkerSeen* b = nullptr;
        for (const MarkerSeen& m : markers) {
            double at = static_cast<double>(m.at_ns) * 1e-9;
            if (at < t0 || at > t1) continue;
            if (!a) a = &m;
            b = &m;
        }
        if (!a || a == b)
            return j.str("error", "fewer than two marker answers in the window (" + std::to_string(markers.size()) +
                                      " in all): the server did not answer the pings");
        rate = static_cast<double>(b->value - a->value) / (static_cast<double>(b->at_ns - a->at_ns) * 1e-9);
        j.num("markers_answered", static_cast<double>(markers.size()));
    } else {
        rate = static_cast<double>(c1 - c0) / window;
    }
    const double cpu = s1.cpu_s - s0.cpu_s;
    const double processed = rate * window;
    j.num("stanzas_per_s", rate);
    j.num("cpu_s_per_100k", processed > 0 ? cpu / processed * 1e5 : NAN);
    j.num("stanzas_per_cpu_s", cpu > 0 ? processed / cpu : NAN);
    j.num("server_cpu_util", cpu / window);
    j.num("generator_cpu_util", (g1 - g0) / window);
    j.num("window_s", window);
    j.num("stanzas_sent", static_cast<double>(d.stanzas_sent()));
    if (d.sink()) j.num("sink_stanzas", static_cast<double>(d.sink()->counters().stanzas));
    if (rate <= 0) j.str("error", "nothing arrived");
    return j;
}

JsonOut run_paced(Driver& d, const PacedParams& p) {
    JsonOut j;
    if (std::string e = open_and_wait(d, 1, 1, 30); !e.empty()) return j.str("error", e);
    d.set_rate(p.rate);
    d.set_traffic(Traffic::Paced);
    d.run_for(p.seconds);
    d.set_traffic(Traffic::Quiet);
    j.num("sent", static_cast<double>(d.stanzas_sent()));
    if (d.failures() > 0) j.str("error", "the link failed: " + d.last_failure());
    return j;
}

JsonOut run_latency_sink(Driver& d, const LatencySinkParams& p) {
    JsonOut j;
    Sink* sink = d.sink();
    if (!sink) return j.str("error", "no sink");
    if (!d.run_until([&] { return sink->counters().timed > 0; }, p.timeout_s))
        return j.str("error", "no timed stanza arrived within " + std::to_string(static_cast<int>(p.timeout_s)) + " s");
    d.run_for(p.warmup_s);
    sink->clear_latencies();
    sink->record_latency(true);
    const uint64_t timed0 = sink->counters().timed;
    d.run_for(p.seconds);
    sink->record_latency(false);
    const uint64_t timed = sink->counters().timed - timed0;
    std::vector<double> ms;
    for (uint64_t ns : sink->latencies()) ms.push_back(static_cast<double>(ns) * 1e-6);
    if (!p.raw_out.empty()) {
        std::ofstream f(p.raw_out);
        for (double v : ms) f << v << '\n';
    }
    std::sort(ms.begin(), ms.end());
    j.num("samples", static_cast<double>(ms.size()));
    j.num("rate", static_cast<double>(timed) / p.seconds);
    j.num("p50_ms", percentile(ms, 0.50));
    j.num("p90_ms", percentile(ms, 0.90));
    j.num("p99_ms", percentile(ms, 0.99));
    j.num("p999_ms", percentile(ms, 0.999));
    j.num("max_ms", ms.empty() ? NAN : ms.back());
    double sum = 0;
    for (double v : ms) sum += v;
    j.num("mean_ms", ms.empty() ? NAN : sum / static_cast<double>(ms.size()));
    if (sink->counters().errors > 0) j.str("error", "a stream to the sink broke: " + sink->last_error());
    else if (ms.size() < 10) j.str("error", "only " + std::to_string(ms.size()) + " stanzas arrived in the window");
    if (!p.samples_out.empty()) {
        // The distribution for the plot: every 10th sample, and every sample of the slowest 2%.
        std::ofstream f(p.samples_out);
        const std::size_t n = ms.size();
        for (std::size_t i = 0; i < n; ++i)
            if (i % 10 == 0 || i + 1 >= n || i >= n - n / 50)
                f << ms[i] << ' ' << static_cast<double>(i + 1) / static_cast<double>(n) << '\n';
    }
    return j;
}

JsonOut run_idle(Driver& d, int pid, const IdleParams& p) {
    JsonOut j;
    d.set_traffic(Traffic::Quiet);
    d.run_for(1);
    const ProcSample base = sample_process(pid);
    if (!base.ok) return j.str("error", "cannot read /proc/" + std::to_string(pid));
    j.num("baseline_rss_kb", static_cast<double>(base.rss_kb));
    std::vector<double> links, rss, per_link, open_s;
    for (std::size_t count : p.counts) {
        const double t = Driver::now_s();
        if (std::string e = open_and_wait(d, count, p.concurrency, p.open_timeout_s); !e.empty()) {
            j.nums("links", links).nums("rss_kb", rss).nums("per_link_kb", per_link);
            return j.str("error", e);
        }
        open_s.push_back(Driver::now_s() - t);
        d.run_for(p.settle_s);
        const ProcSample s = sample_process(pid);
        if (d.failures() > 0 || d.ready() != count) {
            j.nums("links", links).nums("rss_kb", rss).nums("per_link_kb", per_link);
            return j.str("error", std::to_string(d.ready()) + " of " + std::to_string(count) +
                                      " idle links still open; last failure: " + d.last_failure());
        }
        links.push_back(static_cast<double>(count));
        rss.push_back(static_cast<double>(s.rss_kb));
        per_link.push_back((static_cast<double>(s.rss_kb) - static_cast<double>(base.rss_kb)) /
                           static_cast<double>(count));
    }
    j.nums("links", links).nums("rss_kb", rss).nums("per_link_kb", per_link).nums("open_s", open_s);
    j.num("failures", static_cast<double>(d.failures()));
    return j;
}

JsonOut run_handshakes(Driver& d, int pid, const HandshakeParams& p) {
    JsonOut j;
    d.set_traffic(Traffic::Churn);
    d.open_links(p.concurrency, p.concurrency);
    d.run_for(p.warmup_s);
    const uint64_t c0 = d.completed();
    const ProcSample s0 = sample_process(pid);
    const double g0 = self_cpu_s();
    const double t0 = Driver::now_s();
    d.run_for(p.seconds);
    const uint64_t c1 = d.completed();
    const ProcSample s1 = sample_process(pid);
    const double g1 = self_cpu_s();
    const double t1 = Driver::now_s();
    d.open_links(0, 0);  // no more; the open ones finish
    (void)d.run_until([&] { return d.live() == 0; }, 10);
    if (!s0.ok || !s1.ok) return j.str("error", "cannot read /proc/" + std::to_string(pid));
    const double window = t1 - t0, cpu = s1.cpu_s - s0.cpu_s, n = static_cast<double>(c1 - c0);
    j.num("handshakes_per_s", n / window);
    j.num("handshakes_per_cpu_s", cpu > 0 ? n / cpu : NAN);
    j.num("server_ms_per_link", n > 0 ? cpu / n * 1e3 : NAN);
    j.num("server_cpu_util", cpu / window);
    j.num("generator_cpu_util", (g1 - g0) / window);
    j.num("completed", n);
    j.num("failures", static_cast<double>(d.failures()));
    j.num("resumed", d.resume_sessions ? 1 : 0);
    if (d.failures() > 0) j.str("error", std::to_string(d.failures()) + " links failed; last: " + d.last_failure());
    else if (n <= 0) j.str("error", "no link completed");
    return j;
}

}  // namespace s2s::bench
