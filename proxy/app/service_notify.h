// Tells the service manager that started the process how it is doing: systemd's sd_notify
// protocol (Type=notify), without libsystemd, for the server and main.
//
// Each message is one datagram of newline-separated VAR=VALUE lines, sent to the unix datagram
// socket named by $NOTIFY_SOCKET: a file-system path, or an abstract name when it begins with '@'.
// The process says READY=1 once it serves, RELOADING=1 (with MONOTONIC_USEC) when SIGHUP arrives
// and READY=1 again once the reload is applied or refused, STOPPING=1 when it shuts down, each
// with a STATUS= line for `systemctl status`. Without NOTIFY_SOCKET nothing is sent.
//
// Sending never waits: the socket is non-blocking, so a manager that does not read cannot stall
// the event loop; a message it cannot take is dropped and the first failure is logged.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace s2s {

// The socket address $NOTIFY_SOCKET names ('/path' or '@abstract'); false with a sentence in
// `error` for anything else (a relative path, a vsock address, a name too long).
[[nodiscard]] bool notify_socket_address(std::string_view name, sockaddr_un* out, socklen_t* len, std::string* error);

class ServiceNotifier {
public:
    ServiceNotifier() = default;  // sends nothing
    // `socket` as $NOTIFY_SOCKET gives it; empty: sends nothing.
    explicit ServiceNotifier(std::string socket) : socket_(std::move(socket)) {}
    // From $NOTIFY_SOCKET.
    [[nodiscard]] static ServiceNotifier from_environment();
    ~ServiceNotifier();
    ServiceNotifier(ServiceNotifier&& other) noexcept;
    ServiceNotifier& operator=(ServiceNotifier&& other) noexcept;
    ServiceNotifier(const ServiceNotifier&) = delete;
    ServiceNotifier& operator=(const ServiceNotifier&) = delete;

    [[nodiscard]] bool active() const noexcept { return !socket_.empty(); }

    // READY=1: serving (after start, and after each reload).
    void ready(std::string_view status);
    // RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC now): a reload begins; ready() ends it.
    void reloading(std::string_view status);
    // STOPPING=1 (once; later calls send only the status).
    void stopping(std::string_view status);

    // Sends one message as given; false (with a sentence in `error` when given) when the socket
    // cannot be named or the manager does not take it. True without sending when inactive.
    [[nodiscard]] bool send(std::string_view message, std::string* error = nullptr);

private:
    void send_logged(const std::string& message);

    std::string socket_;
    int fd_ = -1;
    bool stopping_sent_ = false;
    bool failure_logged_ = false;
};

// CLOCK_MONOTONIC in microseconds, as MONOTONIC_USEC wants it.
[[nodiscard]] uint64_t monotonic_usec();

}  // namespace s2s
