#include "proxy/server.h"

#include <cstring>

#include "common/log.h"

namespace s2s {

struct Server::Listener {
    uv_tcp_t tcp{};
    Server* server = nullptr;
    std::string kind;     // "s2s" or "local"
    std::string address;  // "ip port N", for logs
};

Server::Server(uv_loop_t* loop, const Config& config) : loop_(loop), config_(config) {}

Server::~Server() = default;

bool Server::start(std::string* error) {
    for (auto& l : config_.listen_s2s)
        if (!listen(l, "s2s", error)) return false;
    for (auto& l : config_.listen_local)
        if (!listen(l, "local", error)) return false;
    uv_signal_init(loop_, &sigterm_);
    uv_signal_init(loop_, &sigint_);
    uv_signal_init(loop_, &sighup_);
    sigterm_.data = sigint_.data = sighup_.data = this;
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sighup_, on_signal, SIGHUP);
    return true;
}

bool Server::listen(const s2s::Listener& conf, const char* kind, std::string* error) {
    sockaddr_storage addr{};
    int rc = conf.ip_address.find(':') == std::string::npos
                 ? uv_ip4_addr(conf.ip_address.c_str(), conf.port, reinterpret_cast<sockaddr_in*>(&addr))
                 : uv_ip6_addr(conf.ip_address.c_str(), conf.port, reinterpret_cast<sockaddr_in6*>(&addr));
    auto* l = new Listener;
    l->server = this;
    l->kind = kind;
    l->address = conf.ip_address + " port " + std::to_string(conf.port);
    uv_tcp_init(loop_, &l->tcp);
    l->tcp.data = l;
    listeners_.push_back(l);
    if (rc == 0) rc = uv_tcp_bind(&l->tcp, reinterpret_cast<sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), conf.backlog, on_connection);
    if (rc != 0) {
        *error = std::string("cannot listen on ") + l->address + " (listen." + kind + "): " + uv_strerror(rc);
        return false;
    }
    S2S_LOG_NOTICE(LogContext{}, "listening", "%s listener on %s", kind, l->address.c_str());
    return true;
}

void Server::on_connection(uv_stream_t* stream, int status) noexcept {
    auto* l = static_cast<Listener*>(stream->data);
    if (status < 0) {
        S2S_LOG_WARNING(LogContext{}, "accept-failed", "%s: %s", l->address.c_str(), uv_strerror(status));
        return;
    }
    auto* client = new uv_tcp_t;
    uv_tcp_init(l->server->loop_, client);
    if (uv_accept(stream, reinterpret_cast<uv_stream_t*>(client)) == 0)
        S2S_LOG_WARNING(LogContext{}, "not-served",
                        "%s connection on %s closed: stream handling is not built into this version yet",
                        l->kind.c_str(), l->address.c_str());
    uv_close(reinterpret_cast<uv_handle_t*>(client), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
}

void Server::on_signal(uv_signal_t* handle, int signum) noexcept {
    auto* self = static_cast<Server*>(handle->data);
    if (signum == SIGHUP) {
        S2S_LOG_NOTICE(LogContext{}, "sighup", "reload is not supported yet; the running config stays");
        return;
    }
    self->stop(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Server::stop(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    S2S_LOG_NOTICE(LogContext{}, "stopping", "%s: closing listeners", why);
    for (auto* l : listeners_)
        uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
    listeners_.clear();
    for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_})
        if (uv_is_active(reinterpret_cast<uv_handle_t*>(s)) || s->loop) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
}

}  // namespace s2s
