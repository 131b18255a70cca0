// libFuzzer target for the admin endpoint's request path (proxy/ops/admin): fuzzer-chosen bytes
// arrive on a loopback connection in chunks of varying size, then the client half-closes.
// Promises checked, each run:
//  - the connection is closed by the endpoint within 5 s of the client's end of stream;
//  - what came back is nothing, or one HTTP/1.1 answer: a status line with a known code, headers
//    ending in an empty line, and a body as long as its Content-Length (none for HEAD);
//  - nothing of the connection is left in the server afterwards.
// /healthz answers at once, /readyz on a later turn of the loop, /metrics with the real
// Prometheus text.
//
// Input: [0] flags (exactly 1: /readyz never answers, so the endpoint's answer deadline, 20 ms
// here, ends it with 503), [1] chunk seed, then the request bytes.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "proxy/ops/admin.h"
#include "proxy/app/metrics_text.h"
#include "tests/fuzz/wire_peer.h"

using namespace s2s;

namespace {

struct World {
    std::unique_ptr<AdminServer> server;
    uint16_t port = 0;
    uv_timer_t later{};
    AdminServer::Reply pending;
    bool silent = false;

    World() {
        fuzzwire::Loop& loop = fuzzwire::Loop::get();
        uv_timer_init(&loop.uv, &later);
        later.data = this;
        std::unordered_map<std::string, AdminServer::Route> routes;
        routes["/healthz"] = [](AdminServer::Reply r) { r({200, "ok\n"}); };
        routes["/readyz"] = [this](AdminServer::Reply r) {
            if (silent) return;
            pending = std::move(r);
            uv_timer_start(&later, [](uv_timer_t* t) {
                auto* w = static_cast<World*>(t->data);
                auto reply = std::move(w->pending);
                w->pending = nullptr;
                if (reply) reply({503, "not ready\n"});
            }, 0, 0);
        };
        routes["/metrics"] = [](AdminServer::Reply r) {
            r({200, render_metrics({}, metrics()), "text/plain; version=0.0.4"});
        };
        // A free loopback port: the kernel picks one, the endpoint binds it.
        for (int attempt = 0; attempt < 20 && !server; ++attempt) {
            int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            socklen_t len = sizeof a;
            if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
                ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
                fuzzwire::die("no free port");
            ::close(fd);
            port = ntohs(a.sin_port);
            std::string error;
            server = AdminServer::start(*loop.loop, "127.0.0.1:" + std::to_string(port), routes, &error,
                                        AdminServer::kRequestDeadlineMs, 20);
        }
        if (!server) fuzzwire::die("the admin endpoint could not listen");
    }
    static World& get() {
        static World* w = new World();
        return *w;
    }
};

void check_answer(const std::string& got, bool complete) {
    if (got.empty()) return;
    if (got.compare(0, 9, "HTTP/1.1 ") != 0) fuzzwire::die("an answer that is not HTTP/1.1");
    if (got.size() < 12) fuzzwire::die("a cut status line");
    const int status = std::atoi(got.substr(9, 3).c_str());
    if (status != 200 && status != 400 && status != 404 && status != 405 && status != 408 && status != 431 &&
        status != 503)
        fuzzwire::die("an unexpected status");
    const size_t end = got.find("\r\n\r\n");
    if (end == std::string::npos) fuzzwire::die("headers without their end");
    const size_t cl = got.find("Content-Length: ");
    if (cl == std::string::npos || cl > end) fuzzwire::die("no Content-Length");
    const size_t length = std::strtoul(got.c_str() + cl + 16, nullptr, 10);
    const size_t body = got.size() - end - 4;
    if (complete && body != 0 && body != length) fuzzwire::die("a body unlike its Content-Length");
    if (got.find("HTTP/1.1 ", 9) != std::string::npos) fuzzwire::die("two answers on one connection");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    World& w = World::get();
    fuzzwire::Loop& loop = fuzzwire::Loop::get();
    w.silent = data[0] == 1;

    fuzzwire::Peer peer;
    peer.connect_to(w.port);
    if (!loop.run_until([&] { return w.server->connections() == 1; })) fuzzwire::die("the connection was not accepted");
    fuzzwire::Chunker chunks(data[1]);
    size_t pos = 2;
    while (pos < size && !peer.eof) {
        const size_t n = std::min(chunks.next(), size - pos);
        if (!peer.write(reinterpret_cast<const char*>(data) + pos, n)) break;
        pos += n;
        loop.turn();
        peer.drain();
    }
    peer.half_close();
    if (!loop.run_until([&] {
            peer.drain();
            return peer.eof && w.server->connections() == 0;
        }))
        fuzzwire::die("the admin connection was not closed within 5 s of the client's end of stream");
    peer.close();
    check_answer(peer.got, peer.got_bytes < fuzzwire::Peer::kKeep);
    uv_timer_stop(&w.later);
    w.pending = nullptr;
    loop.turn();
    return 0;
}
