#include "proxy/server.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "common/log.h"
#include "common/net_address.h"
#include "proxy/metrics.h"
#include "proxy/tcp_probe.h"
#include "proxy/dns_resolver.h"
#include "proxy/tls_setup.h"

namespace s2s {
namespace {

// "Limit" values in ms for deadlines: infinity means none (0).
uint64_t ms(const s2s::Limit& l) { return l.infinite ? 0 : static_cast<uint64_t>(l.value); }

// SO_REUSEPORT: several processes (replicas, or an old and a new one during a restart) share
// the port and the kernel spreads new connections among them. 0 or a libuv error.
int set_reuse_port(uv_tcp_t* tcp) {
    uv_os_fd_t fd;
    int rc = uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd);
    if (rc != 0) return rc;
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0 ? 0 : uv_translate_sys_error(errno);
}

// A shaper's rate in bytes per second, or 0 for "none" (the config checked that the name exists).
uint64_t rate_of(const Config& c, const std::string& shaper) {
    auto it = c.shapers.find(shaper);
    return shaper == "none" || it == c.shapers.end() ? 0 : static_cast<uint64_t>(it->second.max_rate);
}

// The parser limits for a stream: max_stanza_size, with "infinity" capped so one peer cannot
// make the process buffer without bound.
xml::StreamOptions parse_options(const s2s::Limit& max_stanza_size) {
    constexpr size_t kCeiling = 16 * 1024 * 1024;
    xml::StreamOptions o;
    o.limits.max_stanza_size = max_stanza_size.infinite ? kCeiling : static_cast<size_t>(max_stanza_size.value);
    return o;
}

}  // namespace

struct Server::Listener {
    uv_tcp_t tcp{};
    Server* server = nullptr;
    bool local = false;      // [[listen.local]] or [[listen.s2s]]
    size_t index = 0;        // into inbound_ or local_in_
    std::string name;        // "listen.s2s.0"
    std::string address;     // "ip port N", for logs
};

Server::Server(EventLoop& loop, const Config& config)
    : loop_(loop), config_(config), keys_(config.shared), policy_(config) {}

Server::~Server() = default;

bool Server::start(std::string* error) {
    // Outgoing links.
    outbound_.tls = outbound_tls_mode(config_);
    if (outbound_.tls != OutboundTls::None) {
        outbound_.tls_context = make_outgoing_context(config_, "", &outbound_.have_certificate, error);
        if (!outbound_.tls_context) {
            *error = "s2s.outgoing.tls: " + *error;
            return false;
        }
        for (auto& d : config_.domain_certs) {
            bool with_cert = false;
            auto ctx = make_outgoing_context(config_, d.domain, &with_cert, error);
            if (!ctx) {
                *error = "s2s.domain_certfile (" + d.domain + "): " + *error;
                return false;
            }
            outbound_.domain_contexts[d.domain] = ctx;
        }
    }
    outbound_.connect_timeout_ms = ms(config_.outgoing.connection_timeout);
    outbound_.state_timeout_ms = ms(config_.outgoing.state_timeout);
    outbound_.idle_timeout_ms = ms(config_.outgoing.stream_timeout);
    outbound_.parse = parse_options(config_.outgoing.max_stanza_size);
    outbound_.max_retry_delay_ms = static_cast<uint64_t>(config_.outgoing.max_retry_delay) * 1000;
    outbound_.queue_max_stanzas = static_cast<size_t>(config_.outgoing.queue_max_stanzas);
    outbound_.queue_max_bytes = static_cast<size_t>(config_.outgoing.queue_max_bytes);
    outbound_.max_rate = rate_of(config_, config_.outgoing.shaper);
    outbound_.bidi = config_.bidi;

    // The local link.
    if (!parse_socket_address(config_.local_server, &local_settings_.server)) {
        *error = "local.server: \"" + config_.local_server + "\" must be an IP address (or localhost) and a port";
        return false;
    }
    local_settings_.server_text = config_.local_server;
    local_settings_.queue_timeout_ms = ms(config_.local_queue_timeout);

    resolver_ = DnsResolver::create(loop_, config_, error);
    if (!resolver_) {
        *error = "s2s.outgoing.dns: " + *error;
        return false;
    }
    router_ = std::make_unique<ProxyRouter>(outbound_, *resolver_);
    ctx_ = std::make_unique<ProxyContext>(ProxyContext{config_, loop_, keys_, policy_, *router_, {}, 0});
    local_link_ = std::make_unique<LocalLink>(*ctx_, local_settings_, *router_);
    router_->attach(*ctx_, *local_link_);

    // (bound before the listeners only so that a config error comes first: nothing is served
    // before the loop runs)
    if (!config_.local_dns_responder.empty()) {
        dns_responder_ = DnsResponder::start(loop_, config_, error);  // the error names the key
        if (!dns_responder_) return false;
    }
    for (size_t i = 0; i < config_.listen_s2s.size(); ++i) {
        const s2s::Listener& l = config_.listen_s2s[i];
        auto s = std::make_unique<InboundSettings>();
        s->listener = "listen.s2s." + std::to_string(i);
        s->tls = inbound_tls_mode(config_, l);
        if (s->tls != InboundTls::None) {
            s->tls_context = make_listener_context(config_, l, error);
            if (!s->tls_context) {
                *error = s->listener + ".tls: " + *error;
                return false;
            }
        }
        s->state_timeout_ms = ms(l.state_timeout);
        s->idle_timeout_ms = ms(config_.outgoing.stream_timeout);
        s->parse = parse_options(l.max_stanza_size);
        s->max_connections = l.max_connections;
        s->max_rate = rate_of(config_, l.shaper);
        s->bidi = config_.bidi;
        s->proxy_protocol = l.proxy_protocol;
        s->proxy_trusted = l.proxy_trusted;
        s->max_connections_per_host = l.max_connections_per_host;
        inbound_.push_back(std::move(s));
        if (!listen(l, inbound_.back()->listener, false, i, error)) return false;
    }
    for (size_t i = 0; i < config_.listen_local.size(); ++i) {
        const s2s::Listener& l = config_.listen_local[i];
        auto s = std::make_unique<LocalInSettings>();
        s->listener = "listen.local." + std::to_string(i);
        s->access = l.access;
        s->state_timeout_ms = ms(l.state_timeout);
        s->max_rate = rate_of(config_, l.shaper);
        s->parse = parse_options(l.max_stanza_size);
        local_in_.push_back(std::move(s));
        if (!listen(l, local_in_.back()->listener, true, i, error)) return false;
    }
    if (config_.admin_enabled && !start_admin(error)) return false;
    started_ms_ = loop_.now_ms();
    uv_signal_init(loop_.uv(), &sigterm_);
    uv_signal_init(loop_.uv(), &sigint_);
    uv_signal_init(loop_.uv(), &sighup_);
    sigterm_.data = sigint_.data = sighup_.data = this;
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sighup_, on_signal, SIGHUP);
    uv_timer_init(loop_.uv(), &trim_timer_);
    trim_timer_.data = this;
    uv_timer_start(&trim_timer_, on_trim, kTrimEveryMs, kTrimEveryMs);
    uv_unref(reinterpret_cast<uv_handle_t*>(&trim_timer_));
    signals_ = true;
    return true;
}

bool Server::listen(const s2s::Listener& conf, const std::string& name, bool local, size_t index, std::string* error) {
    sockaddr_storage addr{};
    int rc = conf.ip_address.find(':') == std::string::npos
                 ? uv_ip4_addr(conf.ip_address.c_str(), conf.port, reinterpret_cast<sockaddr_in*>(&addr))
                 : uv_ip6_addr(conf.ip_address.c_str(), conf.port, reinterpret_cast<sockaddr_in6*>(&addr));
    auto* l = new Listener;
    l->server = this;
    l->local = local;
    l->index = index;
    l->name = name;
    l->address = conf.ip_address + " port " + std::to_string(conf.port);
    // With reuse_port the socket exists before bind, so SO_REUSEPORT can be set on it.
    uv_tcp_init_ex(loop_.uv(), &l->tcp, conf.reuse_port ? addr.ss_family : AF_UNSPEC);
    l->tcp.data = l;
    listeners_.push_back(l);
    if (rc == 0 && conf.reuse_port) rc = set_reuse_port(&l->tcp);
    if (rc == 0) rc = uv_tcp_bind(&l->tcp, reinterpret_cast<sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&l->tcp), conf.backlog, on_connection);
    if (rc != 0) {
        *error = "cannot listen on " + l->address + " (" + name.substr(0, name.rfind('.')) + "): " + uv_strerror(rc);
        return false;
    }
    S2S_LOG_NOTICE(LogContext{}, "listening", "%s on %s", name.c_str(), l->address.c_str());
    return true;
}

bool Server::start_admin(std::string* error) {
    std::unordered_map<std::string, AdminServer::Route> routes;
    routes["/healthz"] = [](AdminServer::Reply reply) { reply({200, "ok\n"}); };  // answering at all is the test
    routes["/readyz"] = [this](AdminServer::Reply reply) { check_ready(std::move(reply)); };
    routes["/metrics"] = [this](AdminServer::Reply reply) {
        reply({200, metrics_text(), "text/plain; version=0.0.4; charset=utf-8"});
    };
    admin_ = AdminServer::start(loop_, config_.admin_listen, std::move(routes), error);
    return admin_ != nullptr;
}

void Server::check_ready(AdminServer::Reply reply) {
    if (stopping_) {
        reply({503, "not ready: shutting down\n"});
        return;
    }
    std::string server = config_.local_server;
    probe_tcp(loop_.uv(), reinterpret_cast<const sockaddr*>(&local_settings_.server), kReadyProbeMs,
              [reply, server](int status) {
                  if (status == 0) reply({200, "ready\n"});
                  else reply({503, "not ready: local server " + server + " does not accept connections: " +
                                       uv_strerror(status) + "\n"});
              });
}

std::string Server::metrics_text() const {
    std::vector<MetricFamily> f;
    auto family = [&f](const char* name, const char* help, const char* type) -> MetricFamily& {
        f.push_back({name, help, type, {}});
        return f.back();
    };
    auto label = [](const char* k, const std::string& v) { return std::string(k) + "=\"" + prometheus_label(v) + "\""; };

    family("up", "1 while the process serves", "gauge").rows.push_back({"", 1});
    family("uptime_seconds", "Seconds since start", "gauge")
        .rows.push_back({"", static_cast<double>(loop_.now_ms() - started_ms_) / 1000.0});

    // Connections by kind and state, and the stanzas they hold.
    std::map<std::pair<std::string, std::string>, double> by_state;
    std::map<std::string, double> queued;
    for (const Connection* c : ctx_->connections) {
        by_state[{c->kind(), c->state_label()}] += 1;
        queued[c->kind()] += static_cast<double>(c->queued_stanzas());
    }
    MetricFamily& conns = family("connections", "Open streams by kind (s2s_in, s2s_out, local_in, local_out) and state", "gauge");
    for (const auto& [key, n] : by_state) conns.rows.push_back({label("kind", key.first) + "," + label("state", key.second), n});
    MetricFamily& q = family("queued_stanzas", "Stanzas waiting for a link to be ready, by link kind", "gauge");
    for (const char* kind : {"s2s_out", "local_out"}) q.rows.push_back({label("kind", kind), queued[kind]});
    family("hosts_in_backoff", "Remote hosts whose last connection attempts failed, waiting before the next", "gauge")
        .rows.push_back({"", static_cast<double>(router_->hosts_in_backoff())});
    family("outgoing_links", "Outgoing links to remote domains (any state)", "gauge")
        .rows.push_back({"", static_cast<double>(router_->links())});

    // Where every accepted stanza went.
    const RouterCounters& r = router_->counters();
    MetricFamily& in = family("stanzas_received_total", "Stanzas accepted, by where they came from", "counter");
    in.rows.push_back({label("from", "local"), static_cast<double>(r.to_remote)});
    in.rows.push_back({label("from", "remote"), static_cast<double>(r.from_remote)});
    MetricFamily& out = family("stanzas_delivered_total", "Stanzas written to the next hop, by where they went", "counter");
    out.rows.push_back({label("to", "remote"), static_cast<double>(r.delivered_remote)});
    out.rows.push_back({label("to", "local"), static_cast<double>(r.delivered_local)});
    family("stanzas_bounced_total", "Stanzas answered with an error toward their sender", "counter")
        .rows.push_back({"", static_cast<double>(r.bounced)});
    MetricFamily& dropped = family("stanzas_dropped_total", "Stanzas neither delivered nor bounced, by reason", "counter");
    dropped.rows.push_back({label("reason", "presence"), static_cast<double>(r.dropped_presence)});
    dropped.rows.push_back({label("reason", "error"), static_cast<double>(r.dropped_error)});
    family("bounces_not_sent_total", "Error replies not sent because the sender's host was in backoff", "counter")
        .rows.push_back({"", static_cast<double>(r.bounces_undeliverable)});
    family("backoff_bounces_total", "Stanzas bounced at once because their remote host was in backoff", "counter")
        .rows.push_back({"", static_cast<double>(r.backoff_bounces)});
    return render_prometheus(f, metrics());
}

void Server::on_connection(uv_stream_t* stream, int status) noexcept {
    auto* l = static_cast<Listener*>(stream->data);
    if (status < 0) {
        S2S_LOG_WARNING(LogContext{}, "accept-failed", "%s: %s", l->address.c_str(), uv_strerror(status));
        return;
    }
    Server* self = l->server;
    if (l->local) LocalIn::accept(*self->ctx_, *self->router_, stream, *self->local_in_[l->index]);
    else S2SIn::accept(*self->ctx_, stream, *self->inbound_[l->index]);
}

void Server::on_signal(uv_signal_t* handle, int signum) noexcept {
    auto* self = static_cast<Server*>(handle->data);
    if (signum == SIGHUP) {
        S2S_LOG_NOTICE(LogContext{}, "sighup", "reload is not supported yet; the running config stays");
        return;
    }
    self->stop(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

void Server::on_trim(uv_timer_t* handle) noexcept {
    auto* self = static_cast<Server*>(handle->data);
    uint64_t now = self->loop_.now_ms();
    for (Connection* c : self->ctx_->connections) c->trim_idle(now, kIdleAfterMs);
}

void Server::stop(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    S2S_LOG_NOTICE(LogContext{}, "stopping", "%s: closing listeners and streams", why);
    for (auto* l : listeners_)
        uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
    listeners_.clear();
    dns_responder_.reset();
    admin_.reset();
    if (signals_) {
        for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_}) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&trim_timer_), nullptr);
    }
    signals_ = false;
    if (!ctx_) return;
    if (local_link_) local_link_->shutdown(StreamError::SystemShutdown, "s2s-proxy is shutting down");
    // Shutting one down may create others (a bounce needs a link): repeat until none is new.
    std::unordered_set<Connection*> done;
    for (;;) {
        std::vector<Connection*> todo;
        for (Connection* c : ctx_->connections)
            if (!done.count(c)) todo.push_back(c);
        if (todo.empty()) break;
        for (Connection* c : todo) {
            done.insert(c);
            c->shutdown(StreamError::SystemShutdown, "s2s-proxy is shutting down");
        }
    }
}

}  // namespace s2s
