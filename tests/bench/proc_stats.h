// What the benchmark reads about the server under test from /proc: CPU time used (utime + stime
// of /proc/PID/stat) and resident memory (VmRSS of /proc/PID/status).
#pragma once

#include <cstdint>
#include <string>

namespace s2s::bench {

struct ProcSample {
    bool ok = false;
    double cpu_s = 0;     // user + system CPU seconds since the process started
    uint64_t rss_kb = 0;  // resident set size
};

[[nodiscard]] ProcSample sample_process(int pid);

// Raises this process's open-file limit to its hard limit; returns the new soft limit.
uint64_t raise_fd_limit();

}  // namespace s2s::bench
