// Real nameservers for DNS tests, on loopback only.
//
//     s2s::test::Dnsmasq dns({"srv-host=_xmpp-server._tcp.b.test,host.b.test,5269,10,0",
//                             "host-record=host.b.test,127.0.0.3"});
//     REQUIRE_MESSAGE(dns.running(), dns.error());
//     options.nameservers = {dns.nameserver()};            // "127.0.0.53:PORT"
//
// Dnsmasq runs dnsmasq (Debian package dnsmasq-base) with DESIGN.md's verified flags on 127.0.0.53
// and a free high port, `local=/test/` added (names under .test without a record are NXDOMAIN), and
// no upstream server: nothing it is asked leaves the machine. Every address in the lines must be a
// loopback one (127.0.0.0/8 or ::1), or it refuses to start. It is waited for until it answers (at
// most 5 s) and stopped by PID (SIGTERM, then SIGKILL); its directory is removed.
//
// SilentNameserver is a UDP socket on 127.0.0.54 that never answers (timeout tests);
// FailingNameserver answers every query with one rcode, e.g. 2 (SERVFAIL), from a thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace s2s::test {

class TempDir;

class Dnsmasq {
public:
    explicit Dnsmasq(const std::vector<std::string>& lines);
    ~Dnsmasq();
    Dnsmasq(const Dnsmasq&) = delete;
    Dnsmasq& operator=(const Dnsmasq&) = delete;

    [[nodiscard]] bool running() const { return pid_ > 0; }
    [[nodiscard]] const std::string& error() const { return error_; }  // why it is not running
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] std::string nameserver() const;  // "127.0.0.53:PORT"
    void stop();

private:
    bool start_once(const std::vector<std::string>& lines);

    std::unique_ptr<TempDir> dir_;
    pid_t pid_ = -1;
    int port_ = 0;
    std::string error_;
};

class SilentNameserver {
public:
    SilentNameserver();
    ~SilentNameserver();
    SilentNameserver(const SilentNameserver&) = delete;
    SilentNameserver& operator=(const SilentNameserver&) = delete;
    [[nodiscard]] bool ok() const { return fd_ >= 0; }
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] std::string nameserver() const;  // "127.0.0.54:PORT"

private:
    int fd_ = -1;
    int port_ = 0;
};

class FailingNameserver {
public:
    explicit FailingNameserver(int rcode);
    ~FailingNameserver();
    FailingNameserver(const FailingNameserver&) = delete;
    FailingNameserver& operator=(const FailingNameserver&) = delete;
    [[nodiscard]] bool ok() const { return fd_ >= 0; }
    [[nodiscard]] std::string nameserver() const;  // "127.0.0.54:PORT"
    [[nodiscard]] int answered() const { return answered_.load(); }

private:
    void serve();

    int fd_ = -1;
    int port_ = 0;
    int rcode_;
    std::atomic<bool> stop_{false};
    std::atomic<int> answered_{0};
    std::thread thread_;
};

}  // namespace s2s::test
