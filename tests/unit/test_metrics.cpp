// proxy/metrics: counters, the histogram and the Prometheus text they render to.
#include <doctest/doctest.h>

#include <string>

#include "proxy/metrics.h"

using namespace s2s;

TEST_CASE("metrics: labelled counters start at zero and add up") {
    CounterMap m;
    CHECK(m.get("timeout") == 0);
    m.add("timeout");
    m.add("timeout", 2);
    m.add("nxdomain");
    CHECK(m.get("timeout") == 3);
    CHECK(m.values().size() == 2);
}

TEST_CASE("metrics: the histogram's buckets are cumulative") {
    Histogram h;
    h.observe(0.0005);
    h.observe(0.02);
    h.observe(3);
    h.observe(100);
    CHECK(h.count() == 4);
    CHECK(h.sum() == doctest::Approx(103.0205));
    CHECK(h.at_most(0) == 1);   // <= 1 ms
    CHECK(h.at_most(3) == 2);   // <= 25 ms
    CHECK(h.at_most(Histogram::kBounds.size() - 1) == 3);  // <= 10 s; the 100 s one only in +Inf
}

TEST_CASE("metrics: the text format has HELP and TYPE lines, labels and escaped values") {
    Metrics m;
    m.bytes_in[static_cast<int>(Side::Public)] = 12;
    m.dialback.add("receiving:valid", 2);
    m.tls_failures.add("certificate");
    m.dns_latency.observe(0.002);
    std::vector<MetricFamily> gauges{{"connections", "Open streams", "gauge", {{"kind=\"s2s_in\",state=\"ready\"", 3}}},
                                     {"weird", "Escapes", "gauge", {{"x=\"" + prometheus_label("a\"b\\c\nd") + "\"", 1.5}}}};
    std::string text = render_prometheus(gauges, m);
    CHECK(text.find("# HELP s2s_proxy_connections Open streams\n# TYPE s2s_proxy_connections gauge\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_connections{kind=\"s2s_in\",state=\"ready\"} 3\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_weird{x=\"a\\\"b\\\\c\\nd\"} 1.5\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_bytes_received_total{side=\"public\"} 12\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_dialback_total{role=\"receiving\",result=\"valid\"} 2\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_tls_failures_total{reason=\"certificate\"} 1\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_dns_query_duration_seconds_bucket{le=\"0.001\"} 0\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_dns_query_duration_seconds_bucket{le=\"0.005\"} 1\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_dns_query_duration_seconds_bucket{le=\"+Inf\"} 1\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_dns_query_duration_seconds_count 1\n") != std::string::npos);
    CHECK(text.back() == '\n');
}

TEST_CASE("metrics: outgoing candidates refused and local loops refused are exported") {
    Metrics m;
    m.outgoing_refused.add("own_listener", 2);
    m.outgoing_refused.add("denied_network");
    m.local_loops_refused = 3;
    std::string text = render_prometheus({}, m);
    CHECK(text.find("# TYPE s2s_proxy_outgoing_candidates_refused_total counter\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_outgoing_candidates_refused_total{reason=\"own_listener\"} 2\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_outgoing_candidates_refused_total{reason=\"denied_network\"} 1\n") != std::string::npos);
    CHECK(text.find("# TYPE s2s_proxy_local_loops_refused_total counter\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_local_loops_refused_total 3\n") != std::string::npos);
}

TEST_CASE("metrics: outgoing links that failed before they were ready are exported by state") {
    Metrics m;
    m.outgoing_failures.add("connecting", 2);
    m.outgoing_failures.add("tls-handshake");
    std::string text = render_prometheus({}, m);
    CHECK(text.find("# TYPE s2s_proxy_outgoing_link_failures_total counter\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_outgoing_link_failures_total{state=\"connecting\"} 2\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_outgoing_link_failures_total{state=\"tls-handshake\"} 1\n") != std::string::npos);
}

TEST_CASE("metrics: local links that went down are exported by state") {
    Metrics m;
    m.local_link_down.add("ready");
    m.local_link_down.add("connecting", 4);
    std::string text = render_prometheus({}, m);
    CHECK(text.find("# TYPE s2s_proxy_local_link_down_total counter\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_local_link_down_total{state=\"connecting\"} 4\n") != std::string::npos);
    CHECK(text.find("s2s_proxy_local_link_down_total{state=\"ready\"} 1\n") != std::string::npos);
}
