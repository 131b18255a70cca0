// proxy/ops/metrics: labelled counters and the latency histogram.
#include <doctest/doctest.h>

#include <string>

#include "proxy/ops/metrics.h"

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
