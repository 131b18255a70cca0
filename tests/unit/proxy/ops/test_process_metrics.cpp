// proxy/ops/process_metrics: the process's memory, descriptors and CPU time under the usual names.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <string>

#include "proxy/ops/process_metrics.h"

using namespace s2s;

TEST_CASE("process_metrics: memory, descriptors, CPU time and start time are read") {
    ProcessSample s = sample_process();
    REQUIRE(s.resident_bytes);
    CHECK(*s.resident_bytes > 0);
    REQUIRE(s.virtual_bytes);
    CHECK(*s.virtual_bytes >= *s.resident_bytes);
    REQUIRE(s.open_fds);
    CHECK(*s.open_fds >= 3);
    REQUIRE(s.cpu_seconds);
    REQUIRE(s.start_time);
    double now = static_cast<double>(std::time(nullptr));
    CHECK(*s.start_time <= now + 1);
    CHECK(*s.start_time > now - 24 * 3600);  // the test binary started today

    int fd = open("/dev/null", O_RDONLY);
    REQUIRE(fd >= 0);
    ProcessSample more = sample_process();
    close(fd);
    CHECK(*more.open_fds == *s.open_fds + 1);
}
