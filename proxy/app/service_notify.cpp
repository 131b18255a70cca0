#include "proxy/app/service_notify.h"

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <utility>

#include "common/base/log.h"

namespace s2s {
namespace {

// A STATUS= value is one line.
std::string one_line(std::string_view text) {
    std::string out(text);
    for (char& c : out)
        if (c == '\n' || c == '\r') c = ' ';
    return out;
}

}  // namespace

bool notify_socket_address(std::string_view name, sockaddr_un* out, socklen_t* len, std::string* error) {
    std::memset(out, 0, sizeof *out);
    out->sun_family = AF_UNIX;
    if (name.empty() || (name[0] != '/' && name[0] != '@')) {
        *error = "NOTIFY_SOCKET \"" + std::string(name) +
                 "\" is neither an absolute path nor an abstract name beginning with '@'";
        return false;
    }
    if (name.size() >= sizeof out->sun_path) {
        *error = "NOTIFY_SOCKET is " + std::to_string(name.size()) + " bytes long; a unix socket name has at most " +
                 std::to_string(sizeof out->sun_path - 1);
        return false;
    }
    std::memcpy(out->sun_path, name.data(), name.size());
    if (name[0] == '@') out->sun_path[0] = '\0';  // abstract: no terminating NUL counts
    *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (name[0] == '/' ? 1 : 0));
    return true;
}

uint64_t monotonic_usec() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

ServiceNotifier ServiceNotifier::from_environment() {
    const char* name = std::getenv("NOTIFY_SOCKET");
    return ServiceNotifier(name ? name : "");
}

ServiceNotifier::~ServiceNotifier() {
    if (fd_ >= 0) ::close(fd_);
}

ServiceNotifier::ServiceNotifier(ServiceNotifier&& other) noexcept
    : socket_(std::move(other.socket_)),
      fd_(std::exchange(other.fd_, -1)),
      stopping_sent_(other.stopping_sent_),
      failure_logged_(other.failure_logged_) {
    other.socket_.clear();
}

ServiceNotifier& ServiceNotifier::operator=(ServiceNotifier&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        socket_ = std::move(other.socket_);
        other.socket_.clear();
        fd_ = std::exchange(other.fd_, -1);
        stopping_sent_ = other.stopping_sent_;
        failure_logged_ = other.failure_logged_;
    }
    return *this;
}

bool ServiceNotifier::send(std::string_view message, std::string* error) {
    if (!active()) return true;
    std::string why;
    sockaddr_un addr{};
    socklen_t len = 0;
    if (!notify_socket_address(socket_, &addr, &len, &why)) {
        if (error) *error = why;
        return false;
    }
    if (fd_ < 0) fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) {
        if (error) *error = std::string("cannot make a unix datagram socket: ") + std::strerror(errno);
        return false;
    }
    ssize_t n = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
    int err = errno;
    if (n == static_cast<ssize_t>(message.size())) return true;
    if (error) {
        *error = "NOTIFY_SOCKET " + socket_ + ": " +
                 (n < 0 ? (err == EAGAIN ? std::string("the service manager is not reading (its queue is full)")
                                         : std::string(std::strerror(err)))
                        : std::string("message cut short"));
    }
    return false;
}

void ServiceNotifier::send_logged(const std::string& message) {
    std::string error;
    if (send(message, &error) || failure_logged_) return;
    failure_logged_ = true;
    S2S_LOG_WARNING(LogContext{}, "service-notify", "cannot tell the service manager \"%s\": %s",
                    one_line(message).c_str(), error.c_str());
}

void ServiceNotifier::ready(std::string_view status) { send_logged("READY=1\nSTATUS=" + one_line(status)); }

void ServiceNotifier::reloading(std::string_view status) {
    send_logged("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()) + "\nSTATUS=" + one_line(status));
}

void ServiceNotifier::stopping(std::string_view status) {
    send_logged((stopping_sent_ ? "STATUS=" : "STOPPING=1\nSTATUS=") + one_line(status));
    stopping_sent_ = true;
}

}  // namespace s2s
