// s2s-proxy: an XMPP server-to-server federation proxy that runs beside an existing XMPP server.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "common/config/config_load.h"
#include "common/config/config_print.h"
#include "common/base/log.h"
#include "proxy/app/cli.h"
#include "proxy/app/preflight.h"
#include "proxy/app/reload.h"
#include "proxy/app/server.h"
#include "proxy/app/service_notify.h"

#ifndef S2S_PROXY_VERSION
#define S2S_PROXY_VERSION "0.1.0"
#endif

namespace {

constexpr int kExitConfig = 2;

int serve(s2s::config::LoadResult loaded, s2s::Server::ReloadSource reload) {
    uv_loop_t uv;
    uv_loop_init(&uv);
    int rc = 0;
    {
        s2s::EventLoop loop(&uv);
        {
            s2s::Server server(loop, std::move(loaded.config), std::move(loaded.settings), std::move(reload));
            server.set_notifier(s2s::ServiceNotifier::from_environment());  // systemd's Type=notify
            std::string error;
            if (!server.start(&error)) {
                std::fprintf(stderr, "s2s-proxy: %s\n", error.c_str());
                server.stop("startup failed");
                rc = 1;
            }
            uv_run(&uv, UV_RUN_DEFAULT);  // until every listener and stream has closed
        }  // the server's own handles (DNS) close here
        loop.close();
        uv_run(&uv, UV_RUN_DEFAULT);
    }
    if (uv_loop_close(&uv) != 0) std::fprintf(stderr, "s2s-proxy: some handles were still open at exit\n");
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    s2s::CommandLine cl = s2s::parse_command_line(argc, argv, std::getenv("S2S_PROXY_CONFIG"));
    if (!cl.error.empty()) {
        std::fprintf(stderr, "s2s-proxy: %s\n", cl.error.c_str());
        return kExitConfig;
    }
    switch (cl.command) {
        case s2s::Command::Version: std::printf("s2s-proxy %s\n", S2S_PROXY_VERSION); return 0;
        case s2s::Command::Help: std::fputs(s2s::usage().c_str(), stdout); return 0;
        default: break;
    }
    s2s::config::LoadResult r = s2s::config::load_file(cl.config_path, cl.overrides);
    // Warnings go to the log when the proxy starts (in its format), to stderr otherwise.
    if (!r.ok() || cl.command != s2s::Command::Run)
        for (auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.str().c_str());
    for (auto& e : r.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    if (!r.ok()) {
        std::fprintf(stderr, "s2s-proxy: %zu error%s in the config; nothing started\n", r.errors.size(),
                     r.errors.size() == 1 ? "" : "s");
        return kExitConfig;
    }
    if (cl.command == s2s::Command::CheckConfig) {
        std::vector<std::string> problems = s2s::preflight(r.config);
        for (auto& p : problems) std::fprintf(stderr, "%s\n", p.c_str());
        if (!problems.empty()) {
            std::fprintf(stderr, "s2s-proxy: the config would not start (%zu problem%s)\n", problems.size(),
                         problems.size() == 1 ? "" : "s");
            return kExitConfig;
        }
        for (auto& n : s2s::preflight_notes(r.config)) std::printf("%s\n", n.c_str());
        std::printf("%s: config OK\n", cl.config_path.c_str());
        return 0;
    }
    if (cl.command == s2s::Command::PrintConfig) {
        std::fputs(s2s::config::print_config(r.settings).c_str(), stdout);
        return 0;
    }
    s2s::apply_logging(r.config);
    for (auto& w : r.warnings) S2S_LOG_WARNING(s2s::LogContext{}, "config", "%s", w.str().c_str());
    // SIGHUP reads the same file with the same command-line overrides.
    std::string path = cl.config_path;
    std::vector<s2s::config::Override> overrides = cl.overrides;
    return serve(std::move(r), [path, overrides] { return s2s::config::load_file(path, overrides); });
}
