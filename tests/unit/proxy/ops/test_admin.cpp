// proxy/ops/admin (HTTP endpoint) and proxy/net/tcp_probe, over real loopback TCP in one libuv loop.
#include <doctest/doctest.h>

#include <netinet/in.h>

#include <memory>
#include <string>

#include "common/net/net_address.h"
#include "proxy/ops/admin.h"
#include "proxy/ops/metrics.h"
#include "proxy/net/tcp_probe.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;

namespace {

// A raw TCP client in the test's loop: sends `request`, collects everything until the server
// closes.
struct RawClient {
    uv_tcp_t tcp{};
    uv_connect_t req{};
    uv_write_t wreq{};
    std::string request, response;
    bool done = false;
    int handles = 1;

    RawClient(uv_loop_t* loop, const sockaddr* addr, std::string text) : request(std::move(text)) {
        uv_tcp_init(loop, &tcp);
        tcp.data = req.data = wreq.data = this;
        uv_tcp_connect(&req, &tcp, addr, [](uv_connect_t* r, int status) {
            auto* self = static_cast<RawClient*>(r->data);
            if (status != 0) return self->finish();
            uv_buf_t b = uv_buf_init(self->request.data(), static_cast<unsigned>(self->request.size()));
            if (!self->request.empty()) uv_write(&self->wreq, reinterpret_cast<uv_stream_t*>(&self->tcp), &b, 1, nullptr);
            uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp), EventLoop::alloc_read_buffer,
                          [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                              auto* c = static_cast<RawClient*>(s->data);
                              if (n > 0) c->response.append(buf->base, static_cast<size_t>(n));
                              else if (n < 0) c->finish();
                          });
        });
    }
    void finish() {
        if (done) return;
        done = true;
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp), [](uv_handle_t* h) { --static_cast<RawClient*>(h->data)->handles; });
    }
    [[nodiscard]] std::string status_line() const { return response.substr(0, response.find("\r\n")); }
    [[nodiscard]] std::string body() const {
        size_t p = response.find("\r\n\r\n");
        return p == std::string::npos ? "" : response.substr(p + 4);
    }
};

struct AdminHarness : test::TestLoop {
    std::unique_ptr<AdminServer> admin;
    sockaddr_storage addr{};
    AdminServer::Reply later;  // a reply held back by the "/slow" route
    std::vector<std::unique_ptr<RawClient>> clients;

    explicit AdminHarness(uint64_t deadline_ms = 300) {
        std::unordered_map<std::string, AdminServer::Route> routes;
        routes["/healthz"] = [](AdminServer::Reply r) { r({200, "ok\n"}); };
        routes["/slow"] = [this](AdminServer::Reply r) { later = std::move(r); };
        std::string error;
        for (int port = 39269; port < 39369 && !admin; ++port) {
            admin = AdminServer::start(loop(), "127.0.0.1:" + std::to_string(port), routes, &error, deadline_ms, deadline_ms);
            if (admin) REQUIRE(parse_socket_address(admin->address(), &addr));
        }
        REQUIRE(admin);
    }
    ~AdminHarness() {
        admin.reset();
        run_until([&] {
            for (auto& c : clients)
                if (c->handles > 0) return false;
            return true;
        });
    }
    RawClient& ask(const std::string& request) {
        clients.push_back(std::make_unique<RawClient>(uv(), reinterpret_cast<sockaddr*>(&addr), request));
        RawClient& c = *clients.back();
        REQUIRE(run_until([&] { return c.done; }, 12'000));
        return c;
    }
};

}  // namespace

TEST_CASE("admin: GET and HEAD of a route; unknown paths, other methods and garbage get the right status") {
    AdminHarness h;
    RawClient& ok = h.ask("GET /healthz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(ok.status_line() == "HTTP/1.1 200 OK");
    CHECK(ok.response.find("Content-Length: 3\r\n") != std::string::npos);
    CHECK(ok.response.find("Connection: close\r\n") != std::string::npos);
    CHECK(ok.body() == "ok\n");
    RawClient& head = h.ask("HEAD /healthz HTTP/1.0\r\n\r\n");
    CHECK(head.status_line() == "HTTP/1.1 200 OK");
    CHECK(head.body().empty());
    CHECK(h.ask("GET /nope HTTP/1.1\r\n\r\n").status_line() == "HTTP/1.1 404 Not Found");
    RawClient& post = h.ask("POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    CHECK(post.status_line() == "HTTP/1.1 405 Method Not Allowed");
    CHECK(post.response.find("Allow: GET, HEAD\r\n") != std::string::npos);
    CHECK(h.ask("\x16\x03\x01\x02\x00 hello\r\n\r\n").status_line() == "HTTP/1.1 400 Bad Request");
    CHECK(h.ask("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n").status_line().rfind("HTTP/1.1 4", 0) == 0);
    CHECK(h.admin->connections() == 0);
}

TEST_CASE("admin: a reply may come later; one for a connection that has gone is dropped") {
    AdminHarness h;
    h.clients.push_back(std::make_unique<RawClient>(h.uv(), reinterpret_cast<sockaddr*>(&h.addr), "GET /slow HTTP/1.1\r\n\r\n"));
    RawClient& c = *h.clients.back();
    REQUIRE(h.run_until([&] { return static_cast<bool>(h.later); }));
    h.run_for(50);
    CHECK_FALSE(c.done);
    h.later({503, "not ready\n"});
    REQUIRE(h.run_until([&] { return c.done; }));
    CHECK(c.status_line() == "HTTP/1.1 503 Service Unavailable");
    CHECK(c.body() == "not ready\n");
    // The client gives up first: the late reply finds nothing and does no harm.
    h.later = nullptr;
    h.clients.push_back(std::make_unique<RawClient>(h.uv(), reinterpret_cast<sockaddr*>(&h.addr), "GET /slow HTTP/1.1\r\n\r\n"));
    RawClient& quitter = *h.clients.back();
    REQUIRE(h.run_until([&] { return static_cast<bool>(h.later); }));
    quitter.finish();
    REQUIRE(h.run_until([&] { return h.admin->connections() == 0; }));
    h.later({200, "late\n"});
    // And after the server itself is gone.
    h.later = nullptr;
    h.clients.push_back(std::make_unique<RawClient>(h.uv(), reinterpret_cast<sockaddr*>(&h.addr), "GET /slow HTTP/1.1\r\n\r\n"));
    REQUIRE(h.run_until([&] { return static_cast<bool>(h.later); }));
    h.admin.reset();
    h.later({200, "later still\n"});
    REQUIRE(h.run_until([&] { return h.clients.back()->done; }));
    CHECK(h.clients.back()->response.empty());
}

TEST_CASE("admin: a silent client is answered 408 at the deadline") {
    AdminHarness h;
    RawClient& c = h.ask("GET /healthz HTTP/1.1\r\n");  // headers never end
    CHECK(c.status_line() == "HTTP/1.1 408 Request Timeout");
}

TEST_CASE("admin: a route that never answers gets 503 at the answer deadline") {
    AdminHarness h;
    RawClient& c = h.ask("GET /slow HTTP/1.1\r\n\r\n");
    CHECK(c.status_line() == "HTTP/1.1 503 Service Unavailable");
}

TEST_CASE("admin: idle connections past the per-source cap are evicted, oldest first, and a probe is served") {
    AdminHarness h(5000);
    std::vector<RawClient*> idle;
    for (size_t i = 0; i < AdminServer::kMaxPerSource + 3; ++i) {
        h.clients.push_back(std::make_unique<RawClient>(h.uv(), reinterpret_cast<sockaddr*>(&h.addr), ""));
        idle.push_back(h.clients.back().get());
        REQUIRE(h.run_until([&] { return h.admin->connections() == std::min(i + 1, AdminServer::kMaxPerSource); }));
    }
    // The three oldest made room for the newest ones; the rest are still held.
    REQUIRE(h.run_until([&] { return idle[0]->done && idle[1]->done && idle[2]->done; }));
    for (size_t i = 3; i < idle.size(); ++i) CHECK_FALSE(idle[i]->done);
    CHECK(idle[0]->response.empty());
    uint64_t evicted = metrics().admin_dropped.get("evicted");
    RawClient& probe = h.ask("GET /healthz HTTP/1.1\r\n\r\n");
    CHECK(probe.body() == "ok\n");
    CHECK(metrics().admin_dropped.get("evicted") == evicted + 1);
    CHECK(h.admin->connections() <= AdminServer::kMaxPerSource);
}

TEST_CASE("admin: when every held connection is being answered, a new one is refused") {
    AdminHarness h(5000);
    std::vector<AdminServer::Reply> pending;
    std::unordered_map<std::string, AdminServer::Route> routes;
    routes["/slow"] = [&](AdminServer::Reply r) { pending.push_back(std::move(r)); };
    std::string error;
    std::unique_ptr<AdminServer> busy;
    sockaddr_storage addr{};
    for (int port = 39469; port < 39569 && !busy; ++port) {
        busy = AdminServer::start(h.loop(), "127.0.0.1:" + std::to_string(port), routes, &error, 5000, 5000);
        if (busy) REQUIRE(parse_socket_address(busy->address(), &addr));
    }
    REQUIRE(busy);
    for (size_t i = 0; i < AdminServer::kMaxPerSource; ++i)
        h.clients.push_back(std::make_unique<RawClient>(h.uv(), reinterpret_cast<sockaddr*>(&addr), "GET /slow HTTP/1.1\r\n\r\n"));
    REQUIRE(h.run_until([&] { return pending.size() == AdminServer::kMaxPerSource; }));
    uint64_t refused = metrics().admin_dropped.get("refused");
    h.clients.push_back(std::make_unique<RawClient>(h.uv(), reinterpret_cast<sockaddr*>(&addr), "GET /slow HTTP/1.1\r\n\r\n"));
    RawClient& late = *h.clients.back();
    REQUIRE(h.run_until([&] { return late.done; }));
    CHECK(late.response.empty());
    CHECK(metrics().admin_dropped.get("refused") == refused + 1);
    for (auto& r : pending) r({200, "done\n"});
    REQUIRE(h.run_until([&] { return busy->connections() == 0; }));
    busy.reset();
}

TEST_CASE("admin: an address that is not ip:port, or a port in use, is refused with the key named") {
    test::TestLoop t;
    std::string error;
    CHECK_FALSE(AdminServer::start(t.loop(), "localhost", {}, &error));
    CHECK(error == "admin.listen: \"localhost\" is not an \"ip:port\" address");
    t.listen([](uv_stream_t*) {});
    auto* in = reinterpret_cast<const sockaddr_in*>(t.address());
    std::string busy = "127.0.0.1:" + std::to_string(ntohs(in->sin_port));
    CHECK_FALSE(AdminServer::start(t.loop(), busy, {}, &error));
    CHECK(error.rfind("cannot listen on " + busy + " (admin.listen): ", 0) == 0);
}

TEST_CASE("tcp_probe: a listener answers 0; a closed port answers its error, once") {
    test::TestLoop t;
    t.listen([](uv_stream_t* l) {
        uv_tcp_t* c = new uv_tcp_t;
        uv_tcp_init(l->loop, c);
        uv_accept(l, reinterpret_cast<uv_stream_t*>(c));
        uv_close(reinterpret_cast<uv_handle_t*>(c), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    });
    int calls = 0, status = 1;
    probe_tcp(t.uv(), t.address(), 2000, [&](int s) { ++calls, status = s; });
    REQUIRE(t.run_until([&] { return calls > 0; }));
    CHECK(status == 0);
    sockaddr_in closed{};
    uv_ip4_addr("127.0.0.1", 1, &closed);  // nothing listens on port 1
    calls = 0;
    probe_tcp(t.uv(), reinterpret_cast<sockaddr*>(&closed), 2000, [&](int s) { ++calls, status = s; });
    REQUIRE(t.run_until([&] { return calls > 0; }));
    t.run_for(50);
    CHECK(calls == 1);
    CHECK(status == UV_ECONNREFUSED);
}
