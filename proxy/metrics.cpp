#include "proxy/metrics.h"

#include <cstdio>

namespace s2s {

void CounterMap::add(std::string_view label, uint64_t n) {
    auto it = values_.find(label);
    if (it == values_.end()) it = values_.emplace(std::string(label), 0).first;
    it->second += n;
}

uint64_t CounterMap::get(std::string_view label) const {
    auto it = values_.find(label);
    return it == values_.end() ? 0 : it->second;
}

void Histogram::observe(double seconds) {
    if (seconds < 0) seconds = 0;
    for (size_t i = 0; i < kBounds.size(); ++i)
        if (seconds <= kBounds[i]) ++buckets_[i];
    ++count_;
    sum_ += seconds;
}

Metrics& metrics() {
    static Metrics m;
    return m;
}

std::string prometheus_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

namespace {

std::string number(double v) {
    char buf[64];
    if (v == static_cast<double>(static_cast<int64_t>(v)) && v < 9.0e15 && v > -9.0e15)
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    else
        std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}

    void family(const MetricFamily& f) {
        head(f.name, f.help, f.type);
        for (const auto& [labels, value] : f.rows) row(f.name, labels, value);
    }

    void head(const std::string& name, const std::string& help, const std::string& type) {
        out_ += "# HELP s2s_proxy_" + name + " " + help + "\n";
        out_ += "# TYPE s2s_proxy_" + name + " " + type + "\n";
    }

    void row(const std::string& name, const std::string& labels, double value) {
        out_ += "s2s_proxy_" + name;
        if (!labels.empty()) out_ += "{" + labels + "}";
        out_ += " " + number(value) + "\n";
    }

    // A counter family from a CounterMap whose keys are "a:b" (two labels) or "a" (one label).
    void counters(const std::string& name, const std::string& help, const CounterMap& map,
                  const char* label1, const char* label2 = nullptr) {
        head(name, help, "counter");
        for (const auto& [key, value] : map.values()) {
            std::string labels;
            size_t colon = label2 ? key.find(':') : std::string::npos;
            if (colon == std::string::npos) {
                labels = std::string(label1) + "=\"" + prometheus_label(key) + "\"";
            } else {
                labels = std::string(label1) + "=\"" + prometheus_label(key.substr(0, colon)) + "\"," + label2 +
                         "=\"" + prometheus_label(key.substr(colon + 1)) + "\"";
            }
            row(name, labels, static_cast<double>(value));
        }
    }

    void histogram(const std::string& name, const std::string& help, const Histogram& h) {
        head(name, help, "histogram");
        for (size_t i = 0; i < Histogram::kBounds.size(); ++i)
            row(name + "_bucket", "le=\"" + number(Histogram::kBounds[i]) + "\"", static_cast<double>(h.at_most(i)));
        row(name + "_bucket", "le=\"+Inf\"", static_cast<double>(h.count()));
        row(name + "_sum", "", h.sum());
        row(name + "_count", "", static_cast<double>(h.count()));
    }

private:
    std::string& out_;
};

}  // namespace

std::string render_prometheus(const std::vector<MetricFamily>& families, const Metrics& m) {
    std::string out;
    out.reserve(8192);
    Writer w(out);
    for (const MetricFamily& f : families) w.family(f);

    const char* side[2] = {"public", "local"};
    w.head("bytes_received_total", "Bytes read from sockets (ciphertext under TLS), by side", "counter");
    for (int s = 0; s < 2; ++s) w.row("bytes_received_total", std::string("side=\"") + side[s] + "\"", static_cast<double>(m.bytes_in[s]));
    w.head("bytes_sent_total", "Bytes written to sockets (ciphertext under TLS), by side", "counter");
    for (int s = 0; s < 2; ++s) w.row("bytes_sent_total", std::string("side=\"") + side[s] + "\"", static_cast<double>(m.bytes_out[s]));
    w.head("connections_opened_total", "TCP connections accepted or established, by side", "counter");
    for (int s = 0; s < 2; ++s)
        w.row("connections_opened_total", std::string("side=\"") + side[s] + "\"", static_cast<double>(m.streams_opened[s]));

    w.counters("tls_handshakes_total", "Completed TLS handshakes, by our role", m.tls_handshakes, "role");
    w.counters("tls_failures_total", "Failed TLS handshakes and sessions, by reason", m.tls_failures, "reason");
    w.counters("dialback_total",
               "Dialback results, by role (receiving, authoritative, originating; local_receiving and "
               "local_authoritative on [[listen.local]]) and result",
               m.dialback, "role", "result");
    w.counters("local_tls_total",
               "TLS on the local link, by where ([[listen.local]] listener, local.tls client) and how (direct, "
               "starttls; refused: the local server's certificate did not check out)",
               m.local_tls, "where", "how");
    w.counters("sasl_external_total", "SASL EXTERNAL results, by direction and result", m.sasl_external,
               "direction", "result");
    w.counters("secure_domain_refusals_total",
               "Links and claims refused because a domain that needs a valid certificate (s2s.secure_domains, "
               "s2s.secure_auth) showed none, by direction and reason",
               m.secure_domain_refusals, "direction", "reason");
    w.counters("stream_errors_sent_total", "Stream errors sent to peers, by condition", m.stream_errors, "condition");
    w.counters("stanzas_bounced_by_condition_total", "Error replies sent for undeliverable stanzas, by condition",
               m.stanza_bounces, "condition");
    w.counters("proxy_protocol_headers_total",
               "PROXY protocol headers on listen.s2s, by result (accepted, refused) and kind or reason",
               m.proxy_headers, "result", "reason");
    w.counters("connections_refused_total", "Inbound streams refused by a listener limit, by its key",
               m.connections_refused, "limit");
    w.counters("outgoing_candidates_refused_total",
               "Addresses of remote servers not dialled because they lead back into s2s-proxy, by reason "
               "(own_listener: s2s-proxy listens there; denied_network: from DNS, in s2s.outgoing.denied_networks)",
               m.outgoing_refused, "reason");
    w.counters("outgoing_link_failures_total",
               "Outgoing links that failed before they were ever ready (no address, no connection, TLS, no "
               "answer...), by the state they were in: resolving, connecting, awaiting-header, awaiting-features, "
               "tls-handshake, authenticating",
               m.outgoing_failures, "state");
    w.counters("local_link_down_total",
               "Links to the local server that closed other than at shutdown, by the state they were in (ready: it "
               "had been up; connecting, tls-handshake, awaiting-header...: it did not come up)",
               m.local_link_down, "state");
    w.head("local_loops_refused_total",
           "Streams on listen.local refused because they came from one of s2s-proxy's own outgoing links", "counter");
    w.row("local_loops_refused_total", "", static_cast<double>(m.local_loops_refused));
    w.counters("limits_reached_total",
               "Claims refused, or table entries evicted, by a bound on what peers may make the proxy hold, by its key",
               m.limits_reached, "limit");
    w.counters("addresses_refused_total",
               "Domains and JIDs from peers refused as invalid (IDNA/UTS 46 included), by where they were "
               "(stream-header, dialback, stanza) and why",
               m.addresses_refused, "where", "reason");
    w.counters("access_refusals_total",
               "Remote domains refused by a [[listen.s2s]] access rule, by where (dialback, sasl_external, stanza)",
               m.access_refusals, "where");
    w.counters("stanza_limits_total",
               "Streams ended by a per-stanza limit, by which: stanza_size, tag_size, depth, attributes, elements, "
               "memory, budget (general.stanza_memory_budget), timeout (general.stanza_timeout)",
               m.stanza_limits, "reason");

    w.head("dns_queries_total", "Resolutions of remote domains started", "counter");
    w.row("dns_queries_total", "", static_cast<double>(m.dns_queries));
    w.counters("dns_failures_total", "Resolutions that found no usable address, by reason", m.dns_failures, "reason");
    w.histogram("dns_query_duration_seconds", "Time from the start of a resolution to its answer", m.dns_latency);

    w.head("admin_requests_total", "HTTP requests served by the admin endpoint", "counter");
    w.row("admin_requests_total", "", static_cast<double>(m.admin_requests));
    w.counters("admin_connections_dropped_total",
               "Admin connections closed without an answer to a request: evicted to make room, refused, or "
               "no whole request within the deadline",
               m.admin_dropped, "reason");
    w.counters("config_reloads_total", "SIGHUP reloads, by result (applied, refused)", m.reloads, "result");
    return out;
}

}  // namespace s2s
