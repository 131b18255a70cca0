// The admin HTTP endpoint (`[admin] listen`, loopback by default): /healthz, /readyz and
// /metrics for probes and Prometheus. Requests are parsed with libhttp-parser; each connection
// serves one request and closes (Connection: close), within a deadline, and only a few
// connections are served at once. What each path answers comes from the Routes the server
// gives; this file only speaks HTTP.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/event_loop.h"

namespace s2s {

struct HttpResponse {
    int status = 200;
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";
};

class AdminServer {
public:
    using Reply = std::function<void(HttpResponse)>;
    // A route answers through `reply`, at once or later (the readiness check connects to the
    // local server first); a reply for a connection that has gone meanwhile is dropped.
    using Route = std::function<void(Reply reply)>;

    static constexpr uint64_t kDeadlineMs = 10000;     // a request must be read and answered within
    static constexpr size_t kMaxRequestBytes = 8192;   // request line and headers
    static constexpr size_t kMaxConnections = 32;      // served at once; more are closed at once

    // Binds `address` ("ip:port"); null with a message when it cannot.
    static std::unique_ptr<AdminServer> start(EventLoop& loop, const std::string& address,
                                              std::unordered_map<std::string, Route> routes, std::string* error,
                                              uint64_t deadline_ms = kDeadlineMs);
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    [[nodiscard]] const std::string& address() const noexcept { return address_; }
    [[nodiscard]] size_t connections() const noexcept { return open_.size(); }

private:
    struct Conn;
    AdminServer(EventLoop& loop, std::string address, std::unordered_map<std::string, Route> routes);
    static void on_connection(uv_stream_t* server, int status) noexcept;
    void dispatch(Conn& c);
    void respond(uint64_t conn_id, const HttpResponse& r);
    void close(Conn& c);

    EventLoop& loop_;
    std::string address_;
    std::unordered_map<std::string, Route> routes_;
    uv_tcp_t* listener_ = nullptr;  // freed in its close callback
    std::unordered_map<uint64_t, Conn*> open_;
    uint64_t next_id_ = 0;
    uint64_t deadline_ms_ = kDeadlineMs;
    std::shared_ptr<AdminServer*> self_;  // null once destroyed: late replies check it
};

}  // namespace s2s
