// The process's own resources for /metrics, which metrics_text.h writes under the names
// Prometheus client libraries use (process_resident_memory_bytes, process_open_fds...), so
// dashboards made for them work as they are.
// Read from /proc and getrlimit/getrusage when /metrics is scraped; a value that cannot be read
// is left out.
#pragma once

#include <cstdint>
#include <optional>

namespace s2s {

struct ProcessSample {
    std::optional<double> resident_bytes;   // /proc/self/statm, resident pages
    std::optional<double> virtual_bytes;    // /proc/self/statm, size
    std::optional<double> open_fds;         // entries of /proc/self/fd
    std::optional<double> max_fds;          // RLIMIT_NOFILE soft limit
    std::optional<double> cpu_seconds;      // user + system time
    std::optional<double> start_time;       // unix time the process started
};

[[nodiscard]] ProcessSample sample_process();

}  // namespace s2s
