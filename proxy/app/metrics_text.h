// The text the admin endpoint serves at /metrics: every family s2s-proxy exports, with its name,
// help, type and labels, in the Prometheus text exposition format (version 0.0.4).
//
// For the server's /metrics route (Server::metrics_text) and the tests. The server fills a
// MetricsSnapshot from the live objects when it is scraped (connections, the router, the
// verification budget, the stanza memory, the certificates, the loop lag, the process); the
// counters come from metrics.h. Families are written in a fixed order, each with its HELP and
// TYPE lines even when it has no sample yet; names are prefixed with s2s_proxy_, except the
// process_* ones, which keep the names Prometheus client libraries use.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/app/certificate_expiry.h"
#include "proxy/ops/metrics.h"
#include "proxy/ops/process_metrics.h"

namespace s2s {

// The gauges and the router's counters at the moment of a scrape.
struct MetricsSnapshot {
    bool draining = false;      // a SIGTERM drain lets queued stanzas go out
    double uptime_seconds = 0;  // since the server started
    // Open streams by (kind, state); the stanzas they hold, and the fill of the fullest queue
    // (0 to 1), by kind.
    std::map<std::pair<std::string, std::string>, double> connections;
    std::map<std::string, double> queued, fill;
    size_t hosts_in_backoff = 0;   // waiting before the next attempt
    size_t backoff_entries = 0;    // remembered as failing
    size_t verifications = 0;      // dialback verifications under way
    size_t outgoing_links = 0;     // any state
    size_t stanza_memory_bytes = 0;   // held by the trees of all unfinished stanzas
    size_t stanza_memory_budget = 0;  // general.stanza_memory_budget (0: none)
    double loop_lag_seconds = 0;      // LoopLag::worst_seconds()
    size_t antispam_contacts = 0;     // (local, remote) pairs the subscription limit exempts
    std::vector<CertificateExpiry> certificates;  // those the config presents
    RouterCounters router;
    ProcessSample process;  // a value left out is not written

    // Counts one open stream into connections, queued and fill.
    void add_connection(const std::string& kind, const std::string& state, size_t queued_stanzas, double queue_fill);
};

// The whole /metrics text: the snapshot's gauges and the router's counters, the process-wide
// counters `m`, then the process sample.
[[nodiscard]] std::string render_metrics(const MetricsSnapshot& live, const Metrics& m);

// Label value escaping for the text format (\\, \" and \n).
[[nodiscard]] std::string prometheus_label(std::string_view value);

}  // namespace s2s
