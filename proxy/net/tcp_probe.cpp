#include "proxy/net/tcp_probe.h"

#include <memory>

namespace s2s {
namespace {

struct Probe {
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    uv_connect_t req{};
    std::function<void(int)> done;
    int open_handles = 2;
    int error = 0;  // a connect that could not even start

    void finish(int status) {
        if (!done) return;
        auto d = std::move(done);
        done = nullptr;
        uv_timer_stop(&timer);
        auto closed = [](uv_handle_t* h) {
            auto* p = static_cast<Probe*>(h->data);
            if (--p->open_handles == 0) delete p;
        };
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp), closed);
        uv_close(reinterpret_cast<uv_handle_t*>(&timer), closed);
        d(status);
    }
};

}  // namespace

void probe_tcp(uv_loop_t* loop, const sockaddr* address, uint64_t timeout_ms, std::function<void(int status)> done) {
    auto* p = new Probe;
    p->done = std::move(done);
    uv_tcp_init(loop, &p->tcp);
    uv_timer_init(loop, &p->timer);
    p->tcp.data = p->timer.data = p->req.data = p;
    auto on_timer = [](uv_timer_t* t) {
        auto* probe = static_cast<Probe*>(t->data);
        probe->finish(probe->error != 0 ? probe->error : UV_ETIMEDOUT);
    };
    uv_timer_start(&p->timer, on_timer, timeout_ms, 0);
    int rc = uv_tcp_connect(&p->req, &p->tcp, address,
                            [](uv_connect_t* req, int status) { static_cast<Probe*>(req->data)->finish(status); });
    if (rc != 0) {
        p->error = rc;  // reported from a callback, as promised: the timer fires at once
        uv_timer_start(&p->timer, on_timer, 0, 0);
    }
}

}  // namespace s2s
