// The admin HTTP endpoint (`[admin] listen`, loopback by default): /healthz, /readyz and
// /metrics for probes and Prometheus. Requests are parsed with libhttp-parser; each connection
// serves one request and closes (Connection: close). What each path answers comes from the Routes
// the server gives; this file only speaks HTTP.
//
// A client that holds connections open cannot starve the probes: a request must arrive whole
// within a short deadline (kRequestDeadlineMs, then 408); one source address holds at most
// kMaxPerSource connections and the endpoint kMaxConnections; a new connection past either cap
// evicts the oldest one that has not sent its whole request yet (from that source when its own
// cap is hit), so a probe that sends its request at once is served however many idle
// connections others hold. Only when every held connection is waiting for its answer is the new
// one refused. Evictions, refusals and timeouts are counted (admin_connections_dropped_total).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/base/event_loop.h"

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

    static constexpr uint64_t kRequestDeadlineMs = 2000;  // the whole request must arrive within
    static constexpr uint64_t kAnswerDeadlineMs = 10000;  // then the route must answer within
    static constexpr size_t kMaxRequestBytes = 8192;      // request line and headers
    static constexpr size_t kMaxConnections = 32;         // open at once
    static constexpr size_t kMaxPerSource = 8;            // open at once from one source address

    // Binds `address` ("ip:port"); null with a message when it cannot.
    static std::unique_ptr<AdminServer> start(EventLoop& loop, const std::string& address,
                                              std::unordered_map<std::string, Route> routes, std::string* error,
                                              uint64_t request_deadline_ms = kRequestDeadlineMs,
                                              uint64_t answer_deadline_ms = kAnswerDeadlineMs);
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    [[nodiscard]] const std::string& address() const noexcept { return address_; }
    [[nodiscard]] size_t connections() const noexcept { return open_.size(); }

private:
    struct Conn;
    AdminServer(EventLoop& loop, std::string address, std::unordered_map<std::string, Route> routes);
    static void on_connection(uv_stream_t* server, int status) noexcept;
    static void on_deadline(uv_timer_t* timer) noexcept;
    void dispatch(Conn& c);
    void respond(uint64_t conn_id, const HttpResponse& r);
    void close(Conn& c);
    // Makes room for a connection from `source`; false when every candidate is being answered.
    [[nodiscard]] bool make_room(const std::string& source);

    EventLoop& loop_;
    std::string address_;
    std::unordered_map<std::string, Route> routes_;
    uv_tcp_t* listener_ = nullptr;  // freed in its close callback
    std::map<uint64_t, Conn*> open_;                     // by id: the oldest first
    std::unordered_map<std::string, size_t> per_source_;  // open connections by source address
    uint64_t next_id_ = 0;
    uint64_t request_deadline_ms_ = kRequestDeadlineMs;
    uint64_t answer_deadline_ms_ = kAnswerDeadlineMs;
    std::shared_ptr<AdminServer*> self_;  // null once destroyed: late replies check it
};

}  // namespace s2s
