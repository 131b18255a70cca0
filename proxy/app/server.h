// The process: builds the shared services from the config (dialback keys, policy, TLS contexts,
// resolver, router, local link) and binds the listeners on one libuv loop.
//
// SIGHUP reloads the config file (with the same command-line overrides): the reloadable options
// take effect for new streams, and shapers for open ones too, without dropping a link; a change
// to any other option is reported as needing a restart (see reload.h). A config with errors, or
// whose certificates cannot be loaded, is refused with its errors logged, and the running one
// stays.
//
// SIGTERM or SIGINT drains. The public listeners close and inbound public streams end with
// system-shutdown; the admin endpoint stays (/readyz answers 503), and so do the local listeners
// and the local link, because the local server still needs them to verify dialback and to take
// bounces. Outgoing links close with system-shutdown as soon as they hold nothing queued. After
// general.shutdown_timeout, outgoing links still holding stanzas are closed and bounce them to
// their local senders, who get kBounceWaitMs to receive them; then everything is closed, each
// stream has Stream::kCloseFlushMs to flush, and the process exits at most kExitMarginMs after
// that whatever happens. A second signal ends the wait at once.
//
// The service manager hears of each step through a ServiceNotifier (service_notify.h): READY=1
// once every listener is bound, RELOADING=1 then READY=1 around each SIGHUP with the outcome as
// STATUS=, STOPPING=1 when a drain or stop begins.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/config/config_load.h"
#include "common/base/event_loop.h"
#include "common/net/net_address.h"
#include "proxy/ops/admin.h"
#include "proxy/xmpp/context.h"
#include "proxy/xmpp/dialback.h"
#include "proxy/resolve/dns_responder.h"
#include "proxy/local/local_in.h"
#include "proxy/local/local_link.h"
#include "proxy/local/local_verify.h"
#include "proxy/ops/loop_lag.h"
#include "proxy/xmpp/policy.h"
#include "proxy/app/certificate_expiry.h"
#include "proxy/app/spam_files.h"
#include "proxy/app/service_notify.h"
#include "proxy/resolve/resolver.h"
#include "proxy/routing/router.h"
#include "proxy/s2s/s2s_in.h"
#include "proxy/app/tls_contexts.h"

namespace s2s {

class Server {
public:
    // Loads the config again for SIGHUP (the file and the command-line overrides).
    using ReloadSource = std::function<config::LoadResult()>;

    // `settings` are the loaded config's (LoadResult::settings), compared with a reloaded one's;
    // without a reload source SIGHUP only logs that there is nothing to reload from.
    Server(EventLoop& loop, Config config, std::vector<config::Setting> settings = {}, ReloadSource reload = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Where start(), reload(), drain() and stop() report to the service manager (by default nowhere).
    void set_notifier(ServiceNotifier notifier) { notifier_ = std::move(notifier); }
    // Builds TLS contexts and binds every listener, then tells the service manager it is ready;
    // false with a message when one cannot be set up.
    [[nodiscard]] bool start(std::string* error);
    // Closes the listeners and ends every stream now, bouncing what is queued; the loop then ends
    // once they have closed.
    void stop(const char* why);
    // Stops accepting and lets queued stanzas go out for up to general.shutdown_timeout, then stop().
    void drain(const char* why);
    // SIGHUP: loads the config again and applies it; false (the running config stays) when it has
    // errors or its TLS contexts cannot be built.
    bool reload();

    // The Prometheus text for /metrics: a MetricsSnapshot of the live objects, written out with
    // the process counters by render_metrics (metrics_text.h).
    [[nodiscard]] std::string metrics_text() const;
    // /readyz: listeners bound, not shutting down, and the local server accepts connections.
    void check_ready(AdminServer::Reply reply);

    [[nodiscard]] ProxyRouter& router() noexcept { return *router_; }
    [[nodiscard]] ProxyContext& context() noexcept { return *ctx_; }

    // How long after the final stop() the process exits at the latest.
    static constexpr uint64_t kExitMarginMs = 1000;

private:
    struct Listener;
    // Fills the settings objects the streams read (outbound_, inbound_, local_in_, local_settings_,
    // local_verify_) from config_, in place (stream_settings.h): streams hold references to them.
    void apply_settings(const TlsContexts& tls);
    // Reads the expiry of the certificates config_ presents into certificates_ (from apply_settings).
    void refresh_certificate_expiry();
    void close_listeners(bool local_too);
    [[nodiscard]] bool start_antispam(std::string* error);
    // Logs a warning when local.verify_dialback is off (at start and after each reload).
    void warn_if_unverified() const;
    // reload() without the service manager's RELOADING/READY around it; `outcome` says what happened.
    bool apply_reload(std::string* outcome);
    void drain_step();
    static void on_drain_timer(uv_timer_t* handle) noexcept;
    static void on_exit_guard(uv_timer_t* handle) noexcept;
    static constexpr uint64_t kDrainCheckMs = 100;
    // After the deadline, how long bounces may take to reach local senders through the local link.
    static constexpr uint64_t kBounceWaitMs = 3000;
    enum class DrainPhase {
        None,        // serving, or stopped
        Delivering,  // up to general.shutdown_timeout: queued stanzas go out
        Bouncing,    // up to kBounceWaitMs: outgoing links are closed, their bounces reach local senders
    };
    static void on_connection(uv_stream_t* server, int status) noexcept;
    static void on_signal(uv_signal_t* handle, int signum) noexcept;
    static void on_trim(uv_timer_t* handle) noexcept;
    static constexpr uint64_t kTrimEveryMs = 5000;   // how often idle streams are looked at
    static constexpr uint64_t kIdleAfterMs = 10000;  // quiet this long counts as idle
    bool listen(const s2s::Listener& conf, const std::string& name, bool local, size_t index, std::string* error);
    bool start_admin(std::string* error);
    // The host's interface addresses into own_listeners_ (at start and on SIGHUP).
    void refresh_host_addresses();
    static constexpr uint64_t kReadyProbeMs = 2000;  // how long /readyz waits for the local server

    EventLoop& loop_;
    Config config_;                          // the running config; ctx_ and the resolver read it
    std::vector<config::Setting> settings_;  // its settings, for the next reload's comparison
    ReloadSource reload_source_;
    ServiceNotifier notifier_;
    DialbackKeys keys_;
    PolicyRules policy_;
    OutboundSettings outbound_;
    LocalSettings local_settings_;
    // Where this process listens (every listener, the admin endpoint and the DNS responder, with
    // the host's interface addresses for wildcard binds): outgoing links never dial there.
    // (Declared before the router: links still open when it goes erase their ends from these.)
    ListenerSet own_listeners_;
    SocketAddressSet own_outgoing_;  // local ends of open outgoing links, for [[listen.local]]
    LocalVerifySettings local_verify_;
    std::unique_ptr<Resolver> resolver_;
    std::unique_ptr<ProxyRouter> router_;
    RateLimits rate_limits_{loop_};          // [antispam] domain_rate, subscription_rate (outlives ctx_)
    std::unique_ptr<ProxyContext> ctx_;
    std::unique_ptr<LocalLink> local_link_;
    std::unique_ptr<LocalVerifier> local_verifier_;  // checks the local server's dialback keys
    std::unique_ptr<DnsResponder> dns_responder_;  // local.dns_responder, when set
    std::unique_ptr<SpamFileWatcher> spam_watcher_;  // [antispam] list files: read again when they change
    std::unique_ptr<AdminServer> admin_;           // admin.listen, when admin.enabled
    uint64_t started_ms_ = 0;                      // loop time at start, for uptime
    std::vector<CertificateExpiry> certificates_;  // what /metrics says of the certificates presented
    std::vector<std::unique_ptr<InboundSettings>> inbound_;
    std::vector<std::unique_ptr<LocalInSettings>> local_in_;
    std::vector<Listener*> listeners_;  // owned; freed in their close callbacks
    uv_signal_t sigterm_{}, sigint_{}, sighup_{};
    uv_timer_t trim_timer_{};  // frees idle streams' parsers and buffers
    LoopLag loop_lag_;         // event_loop_lag_seconds
    uv_timer_t drain_timer_{};  // while draining: looks for links with nothing left to send
    uv_timer_t* exit_guard_ = nullptr;  // after stop(): exits if the loop has not ended in time
    uint64_t drain_deadline_ = 0;
    bool signals_ = false;
    DrainPhase drain_phase_ = DrainPhase::None;
    bool stopping_ = false;
};

}  // namespace s2s
