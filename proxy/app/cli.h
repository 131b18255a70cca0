// The command line: `s2s-proxy [--config FILE] [--check-config|--print-config] [--KEY=VALUE ...]`.
#pragma once

#include <string>
#include <vector>

#include "common/config/config_load.h"

namespace s2s {

enum class Command {
    Run,          // load the config and serve
    CheckConfig,  // load, report every problem, exit 0 or 2
    PrintConfig,  // load and print the effective config
    Version,
    Help,
};

struct CommandLine {
    Command command = Command::Run;
    std::string config_path;                  // --config, else $S2S_PROXY_CONFIG
    std::vector<config::Override> overrides;  // --KEY=VALUE, in order
    std::string error;                        // set when the arguments are not understood
};

// Parses argv; env_config is the value of S2S_PROXY_CONFIG (nullptr when unset).
[[nodiscard]] CommandLine parse_command_line(int argc, const char* const* argv, const char* env_config);

// The --help text, with every option from the table.
[[nodiscard]] std::string usage();

}  // namespace s2s
