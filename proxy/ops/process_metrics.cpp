#include "proxy/ops/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace s2s {
namespace {

void statm(ProcessSample& s) {
    std::ifstream in("/proc/self/statm");
    unsigned long long size = 0, resident = 0;
    if (!(in >> size >> resident)) return;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    s.virtual_bytes = static_cast<double>(size) * static_cast<double>(page);
    s.resident_bytes = static_cast<double>(resident) * static_cast<double>(page);
}

void fds(ProcessSample& s) {
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr) return;
    double n = 0;
    while (const dirent* e = readdir(d))
        if (e->d_name[0] != '.') n += 1;
    closedir(d);
    s.open_fds = n - 1;  // less the descriptor of the listing itself
    rlimit l{};
    if (getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur != RLIM_INFINITY) s.max_fds = static_cast<double>(l.rlim_cur);
}

void cpu(ProcessSample& s) {
    rusage u{};
    if (getrusage(RUSAGE_SELF, &u) != 0) return;
    s.cpu_seconds = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
                    static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Field 22 of /proc/self/stat (clock ticks after boot) plus btime from /proc/stat.
void start_time(ProcessSample& s) {
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (!std::getline(stat, line)) return;
    size_t paren = line.rfind(')');  // the command name may hold spaces and parentheses
    if (paren == std::string::npos) return;
    std::istringstream fields(line.substr(paren + 1));
    std::string field;
    unsigned long long ticks = 0;
    for (int i = 3; i <= 22 && fields >> field; ++i)
        if (i == 22) ticks = std::strtoull(field.c_str(), nullptr, 10);
    if (ticks == 0) return;
    std::ifstream proc_stat("/proc/stat");
    unsigned long long btime = 0;
    while (std::getline(proc_stat, line))
        if (line.compare(0, 6, "btime ") == 0) btime = std::strtoull(line.c_str() + 6, nullptr, 10);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime == 0 || hz <= 0) return;
    s.start_time = static_cast<double>(btime) + static_cast<double>(ticks) / static_cast<double>(hz);
}

}  // namespace

ProcessSample sample_process() {
    ProcessSample s;
    statm(s);
    fds(s);
    cpu(s);
    start_time(s);
    return s;
}

}  // namespace s2s
