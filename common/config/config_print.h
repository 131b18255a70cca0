// What --print-config and --help show, generated from the option table and a loaded config.
#pragma once

#include <string>
#include <vector>

#include "common/config/config_load.h"

namespace s2s::config {

// The effective config as TOML in the canonical (newer) layout: every default filled in, options
// without a value shown as comments, secrets masked. Loading the output gives the same config.
[[nodiscard]] std::string print_config(const std::vector<Setting>& settings);

// One line per option: key, default, flags and help.
[[nodiscard]] std::string options_help();

}  // namespace s2s::config
