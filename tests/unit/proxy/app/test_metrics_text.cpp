// proxy/app/metrics_text: the /metrics text written from a snapshot of the live objects and the counters.
#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "proxy/app/metrics_text.h"

using namespace s2s;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Every one of `parts` stands in `text`.
void check_has(const std::string& text, std::initializer_list<const char*> parts) {
    for (const char* part : parts) {
        INFO(part);
        CHECK(has(text, part));
    }
}

// The family names in the order their TYPE lines come.
std::vector<std::string> families(const std::string& text) {
    std::vector<std::string> out;
    for (size_t at = 0; (at = text.find("# TYPE ", at)) != std::string::npos; at += 7)
        out.push_back(text.substr(at + 7, text.find(' ', at + 7) - at - 7));
    return out;
}

}  // namespace

TEST_CASE("metrics_text: the text format has HELP and TYPE lines, labels and escaped values") {
    MetricsSnapshot s;
    s.add_connection("s2s_in", "ready", 0, 0);
    s.add_connection("s2s_in", "ready", 0, 0);
    s.add_connection("s2s_in", "ready", 0, 0);
    s.certificates = {{"s2s.certfile", "a\"b\\c\nd", 1580515200}};
    Metrics m;
    m.bytes_in[static_cast<int>(Side::Public)] = 12;
    m.dialback.add("receiving:valid", 2);
    m.tls_failures.add("certificate");
    m.dns_latency.observe(0.002);
    std::string text = render_metrics(s, m);
    CHECK(has(text, "# HELP s2s_proxy_connections Open streams by kind"));
    CHECK(has(text, "# TYPE s2s_proxy_connections gauge\n"));
    CHECK(has(text, "s2s_proxy_connections{kind=\"s2s_in\",state=\"ready\"} 3\n"));
    CHECK(has(text, "s2s_proxy_certificate_expiry_timestamp_seconds{where=\"s2s.certfile\",subject=\"a\\\"b\\\\c\\nd\"} "
                    "1580515200\n"));
    CHECK(has(text, "s2s_proxy_bytes_received_total{side=\"public\"} 12\n"));
    CHECK(has(text, "s2s_proxy_bytes_received_total{side=\"local\"} 0\n"));
    CHECK(has(text, "s2s_proxy_dialback_total{role=\"receiving\",result=\"valid\"} 2\n"));
    CHECK(has(text, "s2s_proxy_tls_failures_total{reason=\"certificate\"} 1\n"));
    CHECK(has(text, "s2s_proxy_dns_query_duration_seconds_bucket{le=\"0.001\"} 0\n"));
    CHECK(has(text, "s2s_proxy_dns_query_duration_seconds_bucket{le=\"0.005\"} 1\n"));
    CHECK(has(text, "s2s_proxy_dns_query_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
    CHECK(has(text, "s2s_proxy_dns_query_duration_seconds_count 1\n"));
    CHECK(text.back() == '\n');
}

TEST_CASE("metrics_text: every family is written, in a fixed order, even with no sample yet") {
    std::string text = render_metrics(MetricsSnapshot{}, Metrics{});
    std::vector<std::string> names = families(text);
    REQUIRE(names.size() == 58);
    CHECK(names.front() == "s2s_proxy_up");
    CHECK(names[14] == "s2s_proxy_certificate_expiry_timestamp_seconds");
    CHECK(names[15] == "s2s_proxy_stanzas_received_total");
    CHECK(names.back() == "s2s_proxy_config_reloads_total");
    CHECK(has(text, "# TYPE s2s_proxy_tls_handshakes_total counter\n# HELP s2s_proxy_tls_failures_total"));
    CHECK(has(text, "s2s_proxy_up 1\n"));
    CHECK(has(text, "s2s_proxy_draining 0\n"));
    CHECK(has(text, "s2s_proxy_send_timeouts_total{side=\"public\"} 0\n"));
    CHECK_FALSE(has(text, "process_"));  // no sample, no process families
}

TEST_CASE("metrics_text: the gauges come from the snapshot") {
    MetricsSnapshot s;
    s.draining = true;
    s.uptime_seconds = 1.5;
    s.add_connection("s2s_out", "ready", 3, 0.25);
    s.add_connection("s2s_out", "connecting", 2, 0.5);
    s.hosts_in_backoff = 4;
    s.stanza_memory_budget = 1 << 20;
    s.loop_lag_seconds = 0.0123;
    std::string text = render_metrics(s, Metrics{});
    CHECK(has(text, "s2s_proxy_draining 1\n"));
    CHECK(has(text, "s2s_proxy_uptime_seconds 1.5\n"));
    CHECK(has(text, "s2s_proxy_connections{kind=\"s2s_out\",state=\"connecting\"} 1\n"
                    "s2s_proxy_connections{kind=\"s2s_out\",state=\"ready\"} 1\n"));
    // Every queued link kind has a row; a stream of a kind without a queue adds none.
    CHECK(has(text, "s2s_proxy_queued_stanzas{kind=\"s2s_out\"} 5\ns2s_proxy_queued_stanzas{kind=\"local_out\"} 0\n"
                    "s2s_proxy_queued_stanzas{kind=\"local_component\"} 0\n"));
    CHECK(has(text, "s2s_proxy_queue_fill_ratio{kind=\"s2s_out\"} 0.5\n"));  // the fullest
    CHECK(has(text, "s2s_proxy_hosts_in_backoff 4\n"));
    CHECK(has(text, "s2s_proxy_stanza_memory_budget_bytes 1048576\n"));
    CHECK(has(text, "s2s_proxy_event_loop_lag_seconds 0.0123\n"));
}

TEST_CASE("metrics_text: where the router's stanzas went") {
    MetricsSnapshot s;
    s.router.to_remote = 1;
    s.router.from_remote = 2;
    s.router.delivered_remote = 3;
    s.router.dropped_to_component = 4;
    s.router.replies_dropped = 5;
    s.router.backoff_bounces = 6;
    check_has(render_metrics(s, Metrics{}),
              {"s2s_proxy_stanzas_received_total{from=\"local\"} 1\ns2s_proxy_stanzas_received_total{from=\"remote\"} 2\n",
               "s2s_proxy_stanzas_delivered_total{to=\"remote\"} 3\n",
               "s2s_proxy_stanzas_dropped_total{reason=\"to_component\"} 4\n",
               "s2s_proxy_error_replies_total{result=\"dropped\"} 5\n",
               "# TYPE s2s_proxy_backoff_bounces_total counter\ns2s_proxy_backoff_bounces_total 6\n"});
}

TEST_CASE("metrics_text: refusals and failures are exported by label") {
    Metrics m;
    m.outgoing_refused.add("own_listener", 2);
    m.outgoing_refused.add("denied_network");
    m.outgoing_fallbacks.add("tls", 2);
    m.local_loops_refused = 3;
    m.outgoing_failures.add("connecting", 2);
    m.outgoing_failures.add("tls-handshake");
    m.local_link_down.add("ready");
    m.local_link_down.add("connecting", 4);
    m.dane.add("match", 2);
    m.dane.add("bogus");
    check_has(render_metrics({}, m),
              {"# TYPE s2s_proxy_dane_total counter\n", "s2s_proxy_dane_total{outcome=\"bogus\"} 1\n",
               "s2s_proxy_dane_total{outcome=\"match\"} 2\n",
               "# TYPE s2s_proxy_outgoing_candidates_refused_total counter\n",
               "s2s_proxy_outgoing_candidates_refused_total{reason=\"own_listener\"} 2\n",
               "s2s_proxy_outgoing_candidates_refused_total{reason=\"denied_network\"} 1\n",
               "# TYPE s2s_proxy_outgoing_fallbacks_total counter\n",
               "s2s_proxy_outgoing_fallbacks_total{reason=\"tls\"} 2\n",
               "# TYPE s2s_proxy_local_loops_refused_total counter\ns2s_proxy_local_loops_refused_total 3\n",
               "# TYPE s2s_proxy_outgoing_link_failures_total counter\n",
               "s2s_proxy_outgoing_link_failures_total{state=\"connecting\"} 2\n",
               "s2s_proxy_outgoing_link_failures_total{state=\"tls-handshake\"} 1\n",
               "# TYPE s2s_proxy_local_link_down_total counter\n",
               "s2s_proxy_local_link_down_total{state=\"connecting\"} 4\n",
               "s2s_proxy_local_link_down_total{state=\"ready\"} 1\n"});
}

TEST_CASE("metrics_text: the process's figures come last, unprefixed; missing values are left out") {
    MetricsSnapshot s;
    s.process.resident_bytes = 4096;
    s.process.open_fds = 12;
    s.process.cpu_seconds = 1.5;
    std::string text = render_metrics(s, Metrics{});
    check_has(text, {"# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 4096\n",
                     "# TYPE process_open_fds gauge\nprocess_open_fds 12\n",
                     "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n"});
    CHECK_FALSE(has(text, "process_max_fds"));
    CHECK_FALSE(has(text, "process_start_time_seconds"));
    CHECK(text.rfind("s2s_proxy_") < text.find("process_"));
}
