#include "proxy/app/server.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/base/log.h"
#include "common/net/net_address.h"
#include "proxy/app/certificate_expiry.h"
#include "proxy/ops/metrics.h"
#include "proxy/app/metrics_text.h"
#include "proxy/ops/process_metrics.h"
#include "proxy/net/tcp_probe.h"
#include "proxy/resolve/dns_resolver.h"
#include "proxy/app/reload.h"
#include "proxy/app/stream_settings.h"
#include "proxy/app/tls_setup.h"

namespace s2s {
namespace {

// SO_REUSEPORT: several processes (replicas, or an old and a new one during a restart) share
// the port and the kernel spreads new connections among them. 0 or a libuv error.
int set_reuse_port(uv_tcp_t* tcp) {
    uv_os_fd_t fd;
    int rc = uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd);
    if (rc != 0) return rc;
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0 ? 0 : uv_translate_sys_error(errno);
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

Server::Server(EventLoop& loop, Config config, std::vector<config::Setting> settings, ReloadSource reload)
    : loop_(loop),
      config_(std::move(config)),
      settings_(std::move(settings)),
      reload_source_(std::move(reload)),
      keys_(config_.shared),
      policy_(config_, trusted_only(config_)) {}

Server::~Server() {
    if (exit_guard_) uv_close(reinterpret_cast<uv_handle_t*>(exit_guard_), [](uv_handle_t* h) {
        delete reinterpret_cast<uv_timer_t*>(h);
    });
}

void Server::apply_settings(const TlsContexts& tls) {
    fill_outbound_settings(config_, tls, &outbound_);
    outbound_.own_listeners = &own_listeners_;
    outbound_.own_outgoing = &own_outgoing_;
    fill_local_settings(config_, tls, &local_settings_, &local_verify_);
    xml::XmlStream::set_memory_budget(
        config_.stanza_memory_budget.infinite ? 0 : static_cast<size_t>(config_.stanza_memory_budget.value));
    fill_inbound_settings(config_, tls, &inbound_);
    fill_local_in_settings(config_, tls, &own_outgoing_, &local_in_);
    refresh_certificate_expiry();
}

void Server::refresh_certificate_expiry() {
    std::vector<std::string> errors;
    certificates_ = read_certificate_expiry(presented_certificates(config_), &errors);
    for (const std::string& e : errors) S2S_LOG_WARNING(LogContext{}, "certificate-expiry", "%s", e.c_str());
}

void Server::refresh_host_addresses() {
    uv_interface_address_t* list = nullptr;
    int count = 0;
    std::vector<sockaddr_storage> found;
    if (uv_interface_addresses(&list, &count) == 0) {
        for (int i = 0; i < count; ++i) {
            sockaddr_storage a{};
            if (list[i].address.address4.sin_family == AF_INET)
                std::memcpy(&a, &list[i].address.address4, sizeof list[i].address.address4);
            else if (list[i].address.address6.sin6_family == AF_INET6)
                std::memcpy(&a, &list[i].address.address6, sizeof list[i].address.address6);
            else
                continue;
            found.push_back(a);
        }
        uv_free_interface_addresses(list, count);
    } else {
        S2S_LOG_WARNING(LogContext{}, "interfaces", "cannot list this host's addresses: only loopback counts as ours "
                                                     "behind a wildcard listener");
    }
    own_listeners_.set_host_addresses(found);
}

bool Server::start(std::string* error) {
    TlsContexts tls;
    if (!build_tls_contexts(config_, &tls, error)) return false;
    if (!parse_socket_address(config_.local_server, &local_settings_.server)) {
        *error = "local.server: \"" + config_.local_server + "\" must be an IP address (or localhost) and a port";
        return false;
    }
    local_settings_.server_text = config_.local_server;
    local_settings_.mode = config_.local_mode;  // restart-only, like the server's address
    local_settings_.component_name = config_.local_component_name;
    local_settings_.password = config_.local_password;
    // Keys the local server presents on [[listen.local]] are checked with it: at its s2s port
    // (local.verify_server; in s2s mode local.server is that port).
    const std::string& verify_at = config_.local_verify_server.empty() ? config_.local_server : config_.local_verify_server;
    if (config_.local_verify_dialback && config_.local_mode == LocalMode::Component && config_.local_verify_server.empty()) {
        *error = "local.verify_server: component mode needs the local server's loopback s2s port to check its dialback "
                 "keys at (or local.verify_dialback = false)";
        return false;
    }
    if (!parse_socket_address(verify_at, &local_verify_.server)) {
        *error = "local.verify_server: \"" + verify_at + "\" must be an IP address (or localhost) and a port";
        return false;
    }
    local_verify_.server_text = verify_at;
    local_verify_.parse = local_settings_.parse;
    apply_settings(tls);
    warn_if_unverified();
    if (!start_antispam(error)) return false;

    auto dns = DnsResolver::create(loop_, config_, error);
    if (!dns) {
        *error = "s2s.outgoing.dns: " + *error;
        return false;
    }
    S2S_LOG_INFO(LogContext{}, "dns", "remote domains are resolved through %s", dns->servers().c_str());
    resolver_ = std::move(dns);
    router_ = std::make_unique<ProxyRouter>(outbound_, *resolver_);
    ctx_ = std::make_unique<ProxyContext>(ProxyContext{config_, loop_, keys_, policy_, *router_, {}, 0, {}, &rate_limits_});
    local_link_ = std::make_unique<LocalLink>(*ctx_, local_settings_, *router_);
    local_verifier_ = std::make_unique<LocalVerifier>(*ctx_, local_verify_);
    router_->attach(*ctx_, *local_link_);

    // (bound before the listeners only so that a config error comes first: nothing is served
    // before the loop runs)
    if (!config_.local_dns_responder.empty()) {
        dns_responder_ = DnsResponder::start(loop_, config_, error);  // the error names the key
        if (!dns_responder_) return false;
    }
    for (size_t i = 0; i < config_.listen_s2s.size(); ++i)
        if (!listen(config_.listen_s2s[i], inbound_[i]->listener, false, i, error)) return false;
    for (size_t i = 0; i < config_.listen_local.size(); ++i)
        if (!listen(config_.listen_local[i], local_in_[i]->listener, true, i, error)) return false;
    if (config_.admin_enabled && !start_admin(error)) return false;
    for (const std::string* other : {config_.admin_enabled ? &config_.admin_listen : nullptr,
                                     config_.local_dns_responder.empty() ? nullptr : &config_.local_dns_responder}) {
        sockaddr_storage a{};
        if (other && parse_socket_address(*other, &a)) own_listeners_.add(reinterpret_cast<const sockaddr*>(&a));
    }
    refresh_host_addresses();
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
    loop_lag_.start(loop_.uv());
    uv_timer_init(loop_.uv(), &drain_timer_);
    drain_timer_.data = this;
    signals_ = true;
    notifier_.ready("serving: " + std::to_string(config_.listen_s2s.size()) + " public and " +
                    std::to_string(config_.listen_local.size()) + " local listener(s) bound");
    return true;
}

// The [antispam] lists: read now (a file that does not parse stops the start), then watched.
bool Server::start_antispam(std::string* error) {
    SpamFilesLoad spam = load_spam_files(spam_files(config_));
    if (!spam.problems.empty()) {
        *error = spam.problems.front();
        return false;
    }
    for (const std::string& s : spam.summary) S2S_LOG_NOTICE(LogContext{}, "antispam", "%s", s.c_str());
    policy_.set_spam_lists(std::move(spam.lists));
    spam_watcher_ = std::make_unique<SpamFileWatcher>(
        loop_, [this](std::shared_ptr<const SpamLists> lists) { policy_.set_spam_lists(std::move(lists)); });
    spam_watcher_->watch(config_);
    rate_limits_.configure(config_);
    return true;
}

bool Server::reload() {
    if (stopping_) return false;
    notifier_.reloading("reloading the config (SIGHUP)");
    std::string outcome;
    bool applied = apply_reload(&outcome);
    notifier_.ready(outcome);
    return applied;
}

bool Server::apply_reload(std::string* outcome) {
    if (!reload_source_) {
        *outcome = "SIGHUP: no config file to reload from; the running config stays";
        S2S_LOG_NOTICE(LogContext{}, "reload", "%s", outcome->c_str());
        return false;
    }
    config::LoadResult next = reload_source_();
    for (auto& w : next.warnings) S2S_LOG_WARNING(LogContext{}, "reload", "%s", w.str().c_str());
    std::string error;
    if (!next.ok()) {
        for (auto& e : next.errors) S2S_LOG_ERROR(LogContext{}, "reload-refused", "%s", e.str().c_str());
        error = std::to_string(next.errors.size()) + (next.errors.size() == 1 ? " error" : " errors") + " in the config";
    }
    ReloadPlan plan;
    TlsContexts tls;
    if (error.empty()) plan = plan_reload(config_, settings_, next);
    if (error.empty() && !build_tls_contexts(plan.config, &tls, &error) && error.empty())
        error = "the TLS contexts cannot be built";
    if (!error.empty()) {
        *outcome = "reload refused: " + error + "; the running config stays";
        S2S_LOG_ERROR(LogContext{}, "reload-refused", "SIGHUP: %s; the running config stays", error.c_str());
        metrics().reloads.add("refused");
        return false;
    }
    for (auto& n : plan.need_restart) S2S_LOG_WARNING(LogContext{}, "reload", "%s", n.c_str());
    config_ = std::move(plan.config);  // in place: the context and the resolver hold references
    settings_ = std::move(plan.settings);
    std::shared_ptr<const SpamLists> spam = policy_.spam_lists();
    std::string spam_note;
    policy_ = PolicyRules(config_, trusted_only(config_));
    policy_.set_spam_lists(std::move(spam));
    rate_limits_.configure(config_);
    if (spam_watcher_) {
        spam_watcher_->watch(config_);
        // a file that does not parse keeps the lists in force (logged), and the outcome says so
        if (!spam_watcher_->read_now()) spam_note = "; an [antispam] list file was refused, the lists in force stay";
    }
    apply_settings(tls);
    refresh_host_addresses();
    apply_logging(config_);
    warn_if_unverified();
    for (Connection* c : ctx_->connections) c->reconfigure();
    S2S_LOG_NOTICE(LogContext{}, "reloaded", "SIGHUP: %s", reload_summary(plan).c_str());
    *outcome = "reload applied: " + std::to_string(plan.applied.size()) +
               (plan.applied.size() == 1 ? " change, " : " changes, ") + std::to_string(plan.need_restart.size()) +
               (plan.need_restart.size() == 1 ? " waits" : " wait") + " for a restart" + spam_note;
    metrics().reloads.add("applied");
    return true;
}

void Server::warn_if_unverified() const {
    if (config_.local_verify_dialback) return;
    S2S_LOG_WARNING(LogContext{}, "local-unverified",
                    "local.verify_dialback is false: the local server's dialback keys are not checked, so any process "
                    "that can connect to [[listen.local]] may send as any user of general.hosts");
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
    sockaddr_storage bound{};
    int len = sizeof bound;
    if (uv_tcp_getsockname(&l->tcp, reinterpret_cast<sockaddr*>(&bound), &len) == 0)
        own_listeners_.add(reinterpret_cast<const sockaddr*>(&bound));
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
    MetricsSnapshot s;
    s.draining = drain_phase_ != DrainPhase::None;
    s.uptime_seconds = static_cast<double>(loop_.now_ms() - started_ms_) / 1000.0;
    for (const Connection* c : ctx_->connections)
        s.add_connection(c->kind(), c->state_label(), c->queued_stanzas(), c->queue_fill());
    s.hosts_in_backoff = router_->hosts_in_backoff();
    s.backoff_entries = router_->backoff_entries();
    s.verifications = ctx_->verifications.total();
    s.outgoing_links = router_->links();
    s.stanza_memory_bytes = xml::XmlStream::stanza_memory_in_use();
    s.stanza_memory_budget = xml::XmlStream::memory_budget();
    s.loop_lag_seconds = loop_lag_.worst_seconds();
    s.certificates = certificates_;
    s.antispam_contacts = rate_limits_.contacts().size();
    s.router = router_->counters();
    s.process = sample_process();
    return render_metrics(s, metrics());
}

void Server::on_connection(uv_stream_t* stream, int status) noexcept {
    auto* l = static_cast<Listener*>(stream->data);
    if (status < 0) {
        S2S_LOG_WARNING(LogContext{}, "accept-failed", "%s: %s", l->address.c_str(), uv_strerror(status));
        return;
    }
    Server* self = l->server;
    if (l->local) LocalIn::accept(*self->ctx_, *self->router_, *self->local_verifier_, stream, *self->local_in_[l->index]);
    else S2SIn::accept(*self->ctx_, stream, *self->inbound_[l->index]);
}

void Server::on_signal(uv_signal_t* handle, int signum) noexcept {
    auto* self = static_cast<Server*>(handle->data);
    if (signum == SIGHUP) {
        (void)self->reload();
        return;
    }
    const char* name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
    if (self->drain_phase_ != DrainPhase::None) self->stop(name);  // a second signal: no more waiting
    else self->drain(name);
}

void Server::on_trim(uv_timer_t* handle) noexcept {
    auto* self = static_cast<Server*>(handle->data);
    uint64_t now = self->loop_.now_ms();
    for (Connection* c : self->ctx_->connections) c->trim_idle(now, kIdleAfterMs);
}

void Server::close_listeners(bool local_too) {
    std::vector<Listener*> kept;
    for (auto* l : listeners_) {
        if (l->local && !local_too) {
            kept.push_back(l);
            continue;
        }
        uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
    }
    listeners_.swap(kept);
    if (local_too) dns_responder_.reset();  // it only points the local server at our local listeners
}

namespace {

bool is_kind(const Connection* c, std::string_view kind) { return kind == c->kind(); }

}  // namespace

void Server::drain(const char* why) {
    if (stopping_) return;
    if (!ctx_ || !signals_) {
        stop(why);
        return;
    }
    stopping_ = true;
    drain_phase_ = DrainPhase::Delivering;
    close_listeners(false);
    size_t queued = 0;
    for (Connection* c : ctx_->connections) queued += c->queued_stanzas();
    notifier_.stopping(std::string(why) + ": draining, " + std::to_string(queued) + " stanza(s) queued");
    S2S_LOG_NOTICE(LogContext{}, "draining",
                   "%s: public listeners closed; up to %lld ms for %zu queued stanza%s to go out, then the rest is "
                   "bounced",
                   why, static_cast<long long>(config_.shutdown_timeout), queued, queued == 1 ? "" : "s");
    // Nothing more comes in from the federated network: inbound streams end now (what they
    // delivered waits in the links' queues).
    std::vector<Connection*> inbound;
    for (Connection* c : ctx_->connections)
        if (is_kind(c, "s2s_in")) inbound.push_back(c);
    for (Connection* c : inbound) c->shutdown(StreamError::SystemShutdown, "s2s-proxy is shutting down");
    drain_deadline_ = loop_.now_ms() + static_cast<uint64_t>(config_.shutdown_timeout);
    uv_timer_start(&drain_timer_, on_drain_timer, 0, kDrainCheckMs);
}

void Server::on_drain_timer(uv_timer_t* handle) noexcept { static_cast<Server*>(handle->data)->drain_step(); }

void Server::drain_step() {
    if (drain_phase_ == DrainPhase::None) return;
    bool late = loop_.now_ms() >= drain_deadline_;
    size_t outgoing_queued = 0, local_queued = 0, outgoing = 0;
    std::vector<Connection*> idle;
    for (Connection* c : ctx_->connections) {
        if (is_kind(c, "s2s_out")) {
            ++outgoing;
            outgoing_queued += c->queued_stanzas();
            if (c->queued_stanzas() == 0 || (late && drain_phase_ == DrainPhase::Delivering)) idle.push_back(c);
        } else if (!is_kind(c, "s2s_in") && !is_kind(c, "local_in")) {
            local_queued += c->queued_stanzas();
        }
    }
    if (drain_phase_ == DrainPhase::Delivering && late && outgoing_queued > 0)
        S2S_LOG_NOTICE(LogContext{}, "drain-timeout",
                       "general.shutdown_timeout passed with %zu stanza%s for remote domains still queued: bouncing",
                       outgoing_queued, outgoing_queued == 1 ? "" : "s");
    // Outgoing links close once they hold nothing (at the deadline: bouncing what they hold
    // toward local senders, through the local link, which stays up for that).
    for (Connection* c : idle) c->shutdown(StreamError::SystemShutdown, "s2s-proxy is shutting down");
    if (drain_phase_ == DrainPhase::Delivering && (late || (outgoing_queued == 0 && local_queued == 0))) {
        drain_phase_ = DrainPhase::Bouncing;
        drain_deadline_ = loop_.now_ms() + kBounceWaitMs;
        return;
    }
    if (drain_phase_ != DrainPhase::Bouncing) return;
    if (!late && (outgoing > idle.size() || local_queued > 0)) return;
    if (local_queued > 0)
        S2S_LOG_NOTICE(LogContext{}, "drain-timeout", "%zu stanza%s for the local server still queued: bouncing",
                       local_queued, local_queued == 1 ? "" : "s");
    else
        S2S_LOG_NOTICE(LogContext{}, "drained", "nothing left queued");
    stop("drained");
}

void Server::on_exit_guard(uv_timer_t*) noexcept {
    S2S_LOG_ERROR(LogContext{}, "exit", "streams still open %llu ms after shutdown: exiting anyway",
                  static_cast<unsigned long long>(Stream::kCloseFlushMs + kExitMarginMs));
    std::fflush(stderr);
    std::_Exit(1);
}

void Server::stop(const char* why) {
    if (stopping_ && drain_phase_ == DrainPhase::None) return;
    stopping_ = true;
    drain_phase_ = DrainPhase::None;
    S2S_LOG_NOTICE(LogContext{}, "stopping", "%s: closing listeners and streams", why);
    notifier_.stopping(std::string(why) + ": closing listeners and streams");
    close_listeners(true);
    admin_.reset();
    spam_watcher_.reset();
    if (signals_) {
        for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_}) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
        uv_close(reinterpret_cast<uv_handle_t*>(&trim_timer_), nullptr);
        loop_lag_.stop();
        uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
        // Every stream flushes within Stream::kCloseFlushMs; past that margin the process exits.
        exit_guard_ = new uv_timer_t;
        uv_timer_init(loop_.uv(), exit_guard_);
        uv_timer_start(exit_guard_, on_exit_guard, Stream::kCloseFlushMs + kExitMarginMs, 0);
        uv_unref(reinterpret_cast<uv_handle_t*>(exit_guard_));
    }
    signals_ = false;
    if (!ctx_) return;
    // The public side first: what outgoing links bounce goes to local senders over the local
    // link while it is still up.
    std::vector<Connection*> public_side;
    for (Connection* c : ctx_->connections)
        if (is_kind(c, "s2s_out") || is_kind(c, "s2s_in")) public_side.push_back(c);
    for (Connection* c : public_side) c->shutdown(StreamError::SystemShutdown, "s2s-proxy is shutting down");
    if (local_link_) local_link_->shutdown(StreamError::SystemShutdown, "s2s-proxy is shutting down");
    // Shutting one down may create others (a bounce needs a link): repeat until none is new.
    std::unordered_set<Connection*> done(public_side.begin(), public_side.end());
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
