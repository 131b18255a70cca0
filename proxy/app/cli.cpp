#include "proxy/app/cli.h"

#include <cstring>

#include "common/config/config_print.h"

namespace s2s {

CommandLine parse_command_line(int argc, const char* const* argv, const char* env_config) {
    CommandLine cl;
    if (env_config) cl.config_path = env_config;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--check-config") {
            cl.command = Command::CheckConfig;
        } else if (arg == "--print-config") {
            cl.command = Command::PrintConfig;
        } else if (arg == "--version" || arg == "-V") {
            cl.command = Command::Version;
        } else if (arg == "--help" || arg == "-h") {
            cl.command = Command::Help;
        } else if (arg == "--config" || arg == "-c") {
            if (i + 1 >= argc) {
                cl.error = arg + " needs a file name";
                return cl;
            }
            cl.config_path = argv[++i];
        } else if (arg.rfind("--config=", 0) == 0) {
            cl.config_path = arg.substr(9);
        } else if (arg.rfind("--", 0) == 0 && arg.find('=') != std::string::npos && arg.find('.') < arg.find('=')) {
            size_t eq = arg.find('=');
            cl.overrides.push_back({arg.substr(2, eq - 2), arg.substr(eq + 1)});
        } else {
            cl.error = "unknown argument " + arg +
                       " (options are --KEY=VALUE with a dotted key, e.g. --s2s.default_policy=deny; see --help)";
            return cl;
        }
    }
    if (cl.config_path.empty() && (cl.command == Command::Run || cl.command == Command::CheckConfig ||
                                   cl.command == Command::PrintConfig))
        cl.error = "no config file: pass --config FILE or set S2S_PROXY_CONFIG";
    return cl;
}

std::string usage() {
    return "Usage: s2s-proxy --config FILE [--KEY=VALUE ...]        serve\n"
           "       s2s-proxy --config FILE --check-config [...]    report every problem in the config; exit 0 or 2\n"
           "       s2s-proxy --config FILE --print-config [...]    print the effective config\n"
           "       s2s-proxy --version | --help\n"
           "\n"
           "S2S_PROXY_CONFIG in the environment is the default for --config. NOTIFY_SOCKET (set by systemd for\n"
           "Type=notify) is where it reports ready, reloading and stopping (config-examples/systemd/).\n"
           "Any key below can be set on the command line as --KEY=VALUE, which wins over the file. VALUE is\n"
           "TOML (--s2s.outgoing.port=5270, --general.hosts='[\"a.test\"]'); a VALUE that is not TOML is a\n"
           "string, or for list keys a comma-separated list (--general.hosts=a.test,b.test). Entries of a\n"
           "list are numbered from 0: --listen.s2s.0.port=15269. The 6.x keys (s2s.address, s2s.dns.*,\n"
           "s2s.max_retry_delay) are accepted for their s2s.outgoing.* equivalents.\n"
           "\n"
           "Options (* is an entry number or a table name):\n" +
           config::options_help();
}

}  // namespace s2s
