#include "proxy/app/metrics_text.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>

namespace s2s {

void MetricsSnapshot::add_connection(const std::string& kind, const std::string& state, size_t queued_stanzas,
                                     double queue_fill) {
    connections[{kind, state}] += 1;
    queued[kind] += static_cast<double>(queued_stanzas);
    fill[kind] = std::max(fill[kind], queue_fill);
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

std::string label(const char* key, const std::string& value) {
    return std::string(key) + "=\"" + prometheus_label(value) + "\"";
}

double lookup(const std::map<std::string, double>& m, const std::string& key) {
    auto it = m.find(key);
    return it == m.end() ? 0 : it->second;
}

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}

    void head(const std::string& name, const std::string& help, const std::string& type) {
        out_ += "# HELP s2s_proxy_" + name + " " + help + "\n";
        out_ += "# TYPE s2s_proxy_" + name + " " + type + "\n";
    }

    void row(const std::string& name, const std::string& labels, double value) {
        out_ += "s2s_proxy_" + name;
        if (!labels.empty()) out_ += "{" + labels + "}";
        out_ += " " + number(value) + "\n";
    }

    // A family of one sample without labels.
    void single(const std::string& name, const std::string& help, const std::string& type, double value) {
        head(name, help, type);
        row(name, "", value);
    }

    // A family with one label, one row per value of it.
    void by_label(const std::string& name, const std::string& help, const std::string& type, const char* key,
                  const std::vector<std::pair<std::string, double>>& rows) {
        head(name, help, type);
        for (const auto& [value, n] : rows) row(name, label(key, value), n);
    }

    // A counter family from a CounterMap whose keys are "a:b" (two labels) or "a" (one label).
    void counters(const std::string& name, const std::string& help, const CounterMap& map, const char* label1,
                  const char* label2 = nullptr) {
        head(name, help, "counter");
        for (const auto& [key, value] : map.values()) {
            size_t colon = label2 ? key.find(':') : std::string::npos;
            std::string labels = colon == std::string::npos
                                     ? label(label1, key)
                                     : label(label1, key.substr(0, colon)) + "," + label(label2, key.substr(colon + 1));
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

    // A process_* family (no prefix, full precision); left out when the value could not be read.
    void process(const char* name, const char* help, const char* type, const std::optional<double>& v) {
        if (!v) return;
        char value[64];
        std::snprintf(value, sizeof value, "%.17g", *v);
        out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
                value + "\n";
    }

private:
    std::string& out_;
};

double count(uint64_t n) { return static_cast<double>(n); }

// The process, its streams and queues, and what holds memory or waits.
void write_gauges(Writer& w, const MetricsSnapshot& s) {
    w.single("up", "1 while the process serves", "gauge", 1);
    w.single("draining", "1 while a SIGTERM drain lets queued stanzas go out", "gauge", s.draining ? 1.0 : 0.0);
    w.single("uptime_seconds", "Seconds since start", "gauge", s.uptime_seconds);

    w.head("connections", "Open streams by kind (s2s_in, s2s_out, local_in, local_out, local_component) and state",
           "gauge");
    for (const auto& [key, n] : s.connections)
        w.row("connections", label("kind", key.first) + "," + label("state", key.second), n);
    const char* const queue_kinds[] = {"s2s_out", "local_out", "local_component"};
    w.head("queued_stanzas", "Stanzas waiting for a link to be ready, by link kind", "gauge");
    for (const char* kind : queue_kinds) w.row("queued_stanzas", label("kind", kind), lookup(s.queued, kind));
    w.head("queue_fill_ratio",
           "How near the fullest stanza queue of each link kind is to its limits, 0 to 1: the larger of stanzas and "
           "bytes over their bounds (s2s_out: s2s.outgoing.queue_max_stanzas and queue_max_bytes, per pair of "
           "domains); at 1 stanzas bounce with resource-constraint",
           "gauge");
    for (const char* kind : queue_kinds) w.row("queue_fill_ratio", label("kind", kind), lookup(s.fill, kind));

    w.single("hosts_in_backoff", "Remote hosts whose last connection attempts failed, waiting before the next", "gauge",
             count(s.hosts_in_backoff));
    w.single("backoff_entries", "Remote hosts remembered as failing (waiting, or kept to double their next wait)",
             "gauge", count(s.backoff_entries));
    w.single("dialback_verifications", "Dialback verifications under way for inbound streams", "gauge",
             count(s.verifications));
    w.single("outgoing_links", "Outgoing links to remote domains (any state)", "gauge", count(s.outgoing_links));
    w.single("stanza_memory_bytes", "Bytes the trees of all unfinished stanzas hold now", "gauge",
             count(s.stanza_memory_bytes));
    w.single("stanza_memory_budget_bytes", "general.stanza_memory_budget (0: none)", "gauge",
             count(s.stanza_memory_budget));
    w.single("antispam_contacts",
             "(local, remote) bare JID pairs our users sent a subscription presence to, exempt from "
             "antispam.subscription_rate",
             "gauge", count(s.antispam_contacts));
    w.single("event_loop_lag_seconds",
             "Worst delay of the event loop over the last 10 to 20 s: how long past its time a 250 ms timer ran",
             "gauge", s.loop_lag_seconds);

    w.head("certificate_expiry_timestamp_seconds",
           "When each certificate s2s-proxy presents stops being valid (its notAfter, unix time), by the config key "
           "that names the file and the certificate's subject CN",
           "gauge");
    for (const CertificateExpiry& c : s.certificates)
        w.row("certificate_expiry_timestamp_seconds", label("where", c.key) + "," + label("subject", c.subject),
              static_cast<double>(c.not_after));
}

// Where every accepted stanza went.
void write_router(Writer& w, const RouterCounters& r) {
    w.by_label("stanzas_received_total", "Stanzas accepted, by where they came from", "counter", "from",
               {{"local", count(r.to_remote)}, {"remote", count(r.from_remote)}});
    w.by_label("stanzas_delivered_total", "Stanzas written to the next hop, by where they went", "counter", "to",
               {{"remote", count(r.delivered_remote)}, {"local", count(r.delivered_local)}});
    w.single("stanzas_bounced_total", "Stanzas answered with an error toward their sender", "counter", count(r.bounced));
    w.by_label("stanzas_dropped_total", "Stanzas neither delivered nor bounced, by reason", "counter", "reason",
               {{"presence", count(r.dropped_presence)},
                {"error", count(r.dropped_error)},
                {"to_component", count(r.dropped_to_component)}});
    w.single("bounces_not_sent_total", "Error replies not sent because the sender's host was in backoff", "counter",
             count(r.bounces_undeliverable));
    w.by_label("error_replies_total",
               "The error replies made for bounced stanzas, by what became of them (not counted in "
               "stanzas_delivered_total or stanzas_dropped_total)",
               "counter", "result", {{"delivered", count(r.replies_delivered)}, {"dropped", count(r.replies_dropped)}});
    w.single("backoff_bounces_total", "Stanzas bounced at once because their remote host was in backoff", "counter",
             count(r.backoff_bounces));
}

// Bytes and connections by side, TLS, authentication and what was refused or ended.
void write_streams(Writer& w, const Metrics& m) {
    const char* side[2] = {"public", "local"};
    auto by_side = [&](const char* name, const char* help, const uint64_t (&v)[2]) {
        w.by_label(name, help, "counter", "side", {{side[0], count(v[0])}, {side[1], count(v[1])}});
    };
    by_side("bytes_received_total", "Bytes read from sockets (ciphertext under TLS), by side", m.bytes_in);
    by_side("bytes_sent_total", "Bytes written to sockets (ciphertext under TLS), by side", m.bytes_out);
    by_side("connections_opened_total", "TCP connections accepted or established, by side", m.streams_opened);
    by_side("send_timeouts_total",
            "Streams ended because the peer took none of our output, or left more than the high-water mark of it "
            "waiting, for general.send_timeout, by side",
            m.send_timeouts);

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
    w.counters("outgoing_fallbacks_total",
               "Addresses of remote servers that accepted the connection but failed before the link was "
               "negotiated, so the next address or target was tried, by reason (closed, tls, certificate, "
               "stream_error, timeout, negotiation)",
               m.outgoing_fallbacks, "reason");
    w.counters("outgoing_link_failures_total",
               "Outgoing links that failed before they were ever ready (no address, no connection, TLS, no "
               "answer...), by the state they were in: resolving, connecting, awaiting-header, awaiting-features, "
               "tls-handshake, authenticating",
               m.outgoing_failures, "state");
    w.counters("local_link_down_total",
               "Links to the local server that closed other than at shutdown, by the state they were in (ready: it "
               "had been up; connecting, tls-handshake, awaiting-header...: it did not come up)",
               m.local_link_down, "state");
    w.single("local_loops_refused_total",
             "Streams on listen.local refused because they came from one of s2s-proxy's own outgoing links", "counter",
             count(m.local_loops_refused));
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
    w.counters("antispam_refusals_total",
               "Checks refused by an [antispam] list, by list (spam_domains_file, spam_jids_file) and what was "
               "checked (domain: an authentication or a stanza to or from a listed domain; jid: a stanza from a "
               "listed JID)",
               m.antispam_refusals, "list", "what");
    w.counters("antispam_reloads_total",
               "[antispam] list files read again (SIGHUP or a change on disk), by result: applied, or refused "
               "(a file that does not parse; the previous lists stay)",
               m.antispam_reloads, "result");
    w.counters("antispam_rate_limited_total",
               "Times a stream stopped reading because its remote domain was over an [antispam] rate limit, "
               "by which: stanzas (domain_rate) or subscriptions (subscription_rate)",
               m.antispam_rate_limited, "what");
    w.counters("stanza_limits_total",
               "Streams ended by a per-stanza limit, by which: stanza_size, tag_size, depth, attributes, elements, "
               "memory, budget (general.stanza_memory_budget), timeout (general.stanza_timeout)",
               m.stanza_limits, "reason");
    w.counters("stream_limits_total",
               "A remote's XEP-0478 stream limits honoured on outgoing links, by action: too_large (stanzas over its "
               "max-bytes bounced to their sender), keepalive (whitespace written before its idle-seconds ran out)",
               m.stream_limits, "action");
}

// DNS, the admin endpoint and reloads.
void write_services(Writer& w, const Metrics& m) {
    w.counters("dane_total",
               "DANE outcomes: match or mismatch (a certificate against usable TLSA records), insecure (no AD), "
               "none (securely no usable record), bogus (the TLSA lookup failed: that server is not dialled)",
               m.dane, "outcome");
    w.single("dns_queries_total", "Resolutions of remote domains started", "counter", count(m.dns_queries));
    w.counters("dns_failures_total", "Resolutions that found no usable address, by reason", m.dns_failures, "reason");
    w.histogram("dns_query_duration_seconds", "Time from the start of a resolution to its answer", m.dns_latency);
    w.counters("dns_responder_queries_total",
               "Queries to the DNS responder (local.dns_responder), by result: answered (by the responder), "
               "forwarded (to local.dns_upstream), dropped (not answered: malformed beyond an answer, or not forwarded)",
               m.dns_responder, "result");
    w.counters("dns_responder_upstream_total",
               "The DNS responder's forwards, by how they ended: relayed (the answer went back), timeout (none "
               "within 5 s), unreachable (ICMP error); ignored: datagrams from upstreams that were not the answer",
               m.dns_upstream, "result");

    w.single("admin_requests_total", "HTTP requests served by the admin endpoint", "counter", count(m.admin_requests));
    w.counters("admin_connections_dropped_total",
               "Admin connections closed without an answer to a request: evicted to make room, refused, or "
               "no whole request within the deadline",
               m.admin_dropped, "reason");
    w.counters("config_reloads_total", "SIGHUP reloads, by result (applied, refused)", m.reloads, "result");
}

void write_process(Writer& w, const ProcessSample& p) {
    w.process("process_resident_memory_bytes", "Resident memory size in bytes", "gauge", p.resident_bytes);
    w.process("process_virtual_memory_bytes", "Virtual memory size in bytes", "gauge", p.virtual_bytes);
    w.process("process_open_fds", "Open file descriptors", "gauge", p.open_fds);
    w.process("process_max_fds", "Maximum number of open file descriptors (RLIMIT_NOFILE)", "gauge", p.max_fds);
    w.process("process_cpu_seconds_total", "User and system CPU time spent in seconds", "counter", p.cpu_seconds);
    w.process("process_start_time_seconds", "Start time of the process since the unix epoch in seconds", "gauge",
              p.start_time);
}

}  // namespace

std::string render_metrics(const MetricsSnapshot& live, const Metrics& m) {
    std::string out;
    out.reserve(8192);
    Writer w(out);
    write_gauges(w, live);
    write_router(w, live.router);
    write_streams(w, m);
    write_services(w, m);
    write_process(w, live.process);
    return out;
}

}  // namespace s2s
