// The process: builds the shared services from the config (dialback keys, policy, TLS contexts,
// resolver, router, local link), binds the listeners on one libuv loop, and shuts down cleanly
// on SIGTERM/SIGINT: listeners closed, every stream ended with system-shutdown, queued stanzas
// bounced.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/event_loop.h"
#include "proxy/admin.h"
#include "proxy/context.h"
#include "proxy/dialback.h"
#include "proxy/dns_responder.h"
#include "proxy/local_in.h"
#include "proxy/local_link.h"
#include "proxy/policy.h"
#include "proxy/resolver.h"
#include "proxy/router.h"
#include "proxy/s2s_in.h"

namespace s2s {

class Server {
public:
    Server(EventLoop& loop, const Config& config);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Builds TLS contexts and binds every listener; false with a message when one cannot be set up.
    [[nodiscard]] bool start(std::string* error);
    // Closes the listeners and ends every stream; the loop then ends once they have closed.
    void stop(const char* why);

    // The Prometheus text for /metrics: live gauges plus the process counters.
    [[nodiscard]] std::string metrics_text() const;
    // /readyz: listeners bound, not shutting down, and the local server accepts connections.
    void check_ready(AdminServer::Reply reply);

    [[nodiscard]] ProxyRouter& router() noexcept { return *router_; }
    [[nodiscard]] ProxyContext& context() noexcept { return *ctx_; }

private:
    struct Listener;
    static void on_connection(uv_stream_t* server, int status) noexcept;
    static void on_signal(uv_signal_t* handle, int signum) noexcept;
    static void on_trim(uv_timer_t* handle) noexcept;
    static constexpr uint64_t kTrimEveryMs = 5000;   // how often idle streams are looked at
    static constexpr uint64_t kIdleAfterMs = 10000;  // quiet this long counts as idle
    bool listen(const s2s::Listener& conf, const std::string& name, bool local, size_t index, std::string* error);
    bool start_admin(std::string* error);
    static constexpr uint64_t kReadyProbeMs = 2000;  // how long /readyz waits for the local server

    EventLoop& loop_;
    const Config& config_;
    DialbackKeys keys_;
    PolicyRules policy_;
    OutboundSettings outbound_;
    LocalSettings local_settings_;
    std::unique_ptr<Resolver> resolver_;
    std::unique_ptr<ProxyRouter> router_;
    std::unique_ptr<ProxyContext> ctx_;
    std::unique_ptr<LocalLink> local_link_;
    std::unique_ptr<DnsResponder> dns_responder_;  // local.dns_responder, when set
    std::unique_ptr<AdminServer> admin_;           // admin.listen, when admin.enabled
    uint64_t started_ms_ = 0;                      // loop time at start, for uptime
    std::vector<std::unique_ptr<InboundSettings>> inbound_;
    std::vector<std::unique_ptr<LocalInSettings>> local_in_;
    std::vector<Listener*> listeners_;  // owned; freed in their close callbacks
    uv_signal_t sigterm_{}, sigint_{}, sighup_{};
    uv_timer_t trim_timer_{};  // frees idle streams' parsers and buffers
    bool signals_ = false;
    bool stopping_ = false;
};

}  // namespace s2s
