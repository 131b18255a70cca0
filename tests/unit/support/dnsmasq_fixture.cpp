#include "tests/unit/support/dnsmasq_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tests/unit/support/test_support.h"

extern char** environ;

namespace s2s::test {

namespace {

constexpr const char* kDnsmasqHost = "127.0.0.53";
constexpr const char* kSilentHost = "127.0.0.54";

using Clock = std::chrono::steady_clock;

int bound_socket(int type, const char* host, int port) {
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host, &a.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int local_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
    return ntohs(a.sin_port);
}

// A port free on 127.0.0.53 for both UDP and TCP (dnsmasq listens on both), or 0.
int free_port() {
    for (int attempt = 0; attempt < 20; ++attempt) {
        int udp = bound_socket(SOCK_DGRAM, kDnsmasqHost, 0);
        if (udp < 0) return 0;
        int port = local_port(udp);
        int tcp = bound_socket(SOCK_STREAM, kDnsmasqHost, port);
        close(udp);
        if (tcp >= 0) {
            close(tcp);
            if (port >= 1024) return port;
        }
    }
    return 0;
}

// Whether every IP address among the line's fields (split on , / = #) is a loopback one.
bool loopback_only(const std::string& line, std::string* bad) {
    std::string token;
    std::string text = line;
    for (char& c : text)
        if (c == ',' || c == '/' || c == '=' || c == '#') c = ' ';
    std::istringstream words(text);
    while (words >> token) {
        in_addr v4{};
        in6_addr v6{};
        if (inet_pton(AF_INET, token.c_str(), &v4) == 1) {
            if ((ntohl(v4.s_addr) >> 24) != 127) return *bad = token, false;
        } else if (inet_pton(AF_INET6, token.c_str(), &v6) == 1) {
            if (!IN6_IS_ADDR_LOOPBACK(&v6)) return *bad = token, false;
        }
    }
    return true;
}

// A DNS query for `name` (type A) with id 0x5353.
std::string dns_query_packet(const std::string& name) {
    std::string p("\x53\x53\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
    size_t start = 0;
    while (start < name.size()) {
        size_t dot = name.find('.', start);
        if (dot == std::string::npos) dot = name.size();
        p += static_cast<char>(dot - start);
        p += name.substr(start, dot - start);
        start = dot + 1;
    }
    p += std::string("\x00\x00\x01\x00\x01", 5);
    return p;
}

// Whether a nameserver on host:port answers a query within `ms`.
bool answers(const char* host, int port, int ms) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host, &a.sin_addr);
    std::string q = dns_query_packet("ready.test");
    bool ok = false;
    if (sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) == static_cast<ssize_t>(q.size())) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, ms) == 1) {
            char buf[512];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            ok = n >= 12 && buf[0] == 0x53 && buf[1] == 0x53;
        }
    }
    close(fd);
    return ok;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Waits for pid to exit for at most `ms`; true if it did (and was reaped).
bool wait_exit(pid_t pid, int ms) {
    auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (true) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) return true;
        if (Clock::now() >= until) return false;
        usleep(5000);
    }
}

}  // namespace

Dnsmasq::Dnsmasq(const std::vector<std::string>& lines) {
    for (auto& line : lines) {
        std::string bad;
        if (!loopback_only(line, &bad)) {
            error_ = "refusing to start dnsmasq: \"" + line + "\" has the non-loopback address " + bad;
            return;
        }
    }
    try {
        dir_ = std::make_unique<TempDir>();
    } catch (const std::exception& e) {
        error_ = e.what();
        return;
    }
    for (int attempt = 0; attempt < 3 && !running(); ++attempt) start_once(lines);
}

bool Dnsmasq::start_once(const std::vector<std::string>& lines) {
    port_ = free_port();
    if (!port_) {
        error_ = "no free port on 127.0.0.53";
        return false;
    }
    std::string conf = "local=/test/\n";
    for (auto& l : lines) conf += l + "\n";
    std::string conf_path = dir_->write("dnsmasq.conf", conf);
    std::string log_path = dir_->path() + "/dnsmasq.log";

    std::vector<std::string> args = {"dnsmasq",
                                     "--keep-in-foreground",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--bind-interfaces",
                                     std::string("--listen-address=") + kDnsmasqHost,
                                     "--port=" + std::to_string(port_),
                                     "--pid-file=",
                                     "--cache-size=0",
                                     "--user=root",
                                     "--conf-file=" + conf_path};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    const char* paths[] = {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"};
    int rc = ENOENT;
    for (const char* path : paths) {
        if (access(path, X_OK) != 0) continue;
        rc = posix_spawn(&pid, path, &actions, nullptr, argv.data(), environ);
        break;
    }
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        error_ = std::string("cannot start dnsmasq (apt-get install dnsmasq-base): ") + std::strerror(rc);
        return false;
    }

    auto until = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < until) {
        int status = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            error_ = "dnsmasq exited at start: " + read_file(log_path);
            return false;
        }
        if (answers(kDnsmasqHost, port_, 20)) {
            pid_ = pid;
            error_.clear();
            return true;
        }
    }
    kill(pid, SIGKILL);
    wait_exit(pid, 2000);
    error_ = "dnsmasq did not answer within 5 s: " + read_file(log_path);
    return false;
}

Dnsmasq::~Dnsmasq() { stop(); }

void Dnsmasq::stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    if (!wait_exit(pid_, 2000)) {
        kill(pid_, SIGKILL);
        wait_exit(pid_, 2000);
    }
    pid_ = -1;
}

std::string Dnsmasq::nameserver() const { return std::string(kDnsmasqHost) + ":" + std::to_string(port_); }

SilentNameserver::SilentNameserver() {
    fd_ = bound_socket(SOCK_DGRAM, kSilentHost, 0);
    if (fd_ >= 0) port_ = local_port(fd_);
}

SilentNameserver::~SilentNameserver() {
    if (fd_ >= 0) close(fd_);
}

std::string SilentNameserver::nameserver() const { return std::string(kSilentHost) + ":" + std::to_string(port_); }

FailingNameserver::FailingNameserver(int rcode) : rcode_(rcode) {
    fd_ = bound_socket(SOCK_DGRAM, kSilentHost, 0);
    if (fd_ < 0) return;
    port_ = local_port(fd_);
    thread_ = std::thread([this] { serve(); });
}

FailingNameserver::~FailingNameserver() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
}

std::string FailingNameserver::nameserver() const { return std::string(kSilentHost) + ":" + std::to_string(port_); }

void FailingNameserver::serve() {
    while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 20) != 1) continue;
        unsigned char buf[1500];
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 12) continue;
        // Keep the header and the question; drop everything after it (EDNS0 OPT).
        size_t end = 12;
        while (end < static_cast<size_t>(n) && buf[end] != 0) end += buf[end] + 1u;
        end += 1 + 4;
        if (end > static_cast<size_t>(n)) continue;
        buf[2] = static_cast<unsigned char>((buf[2] | 0x80) & ~0x02);                 // QR, not truncated
        buf[3] = static_cast<unsigned char>(0x80 | (rcode_ & 0x0f));                   // RA + rcode
        buf[6] = buf[7] = buf[8] = buf[9] = buf[10] = buf[11] = 0;                     // no records
        ++answered_;  // before the answer leaves: a test may look as soon as it arrives
        sendto(fd_, buf, end, 0, reinterpret_cast<sockaddr*>(&from), len);
    }
}

}  // namespace s2s::test
