// SIGHUP: what a newly loaded config may change in the running process.
//
// Options marked Reloadable in the config table (certificates, policies, shapers, address
// overrides, timeouts, limits, logging...) take their new values; the others (general.hosts, the
// dialback secret, listener addresses and ports, the local link's address and mode, the admin
// endpoint, the DNS client) keep their running values and each change to one is reported as
// needing a restart. Listeners cannot be added or removed by a reload: the running list stays,
// and its entries take the new values of their reloadable keys.
#pragma once

#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/config/config_load.h"

namespace s2s {

struct ReloadPlan {
    Config config;                             // what to run with from now on
    std::vector<config::Setting> settings;     // its settings (compared at the next reload)
    std::vector<std::string> applied;          // reloadable keys whose value changed
    std::vector<std::string> need_restart;     // one sentence per change that waits for a restart
};

// Compares the running config and its settings (as loaded, or as a previous plan left them: their
// values are what the restart-only options keep) with a newly loaded one that has no errors.
// Secret values never appear in the sentences.
[[nodiscard]] ReloadPlan plan_reload(const Config& running, const std::vector<config::Setting>& running_settings,
                                     const config::LoadResult& next);

// What the log says of an applied reload, e.g. "certificates and keys read again; 2 changes
// applied: KEY, KEY; 1 change waits for a restart" (the sentences of need_restart are logged on
// their own).
[[nodiscard]] std::string reload_summary(const ReloadPlan& plan);

// The key patterns (as in the config table, in its order) whose running value a reload keeps:
// every option the table does not mark Reloadable.
[[nodiscard]] const std::vector<std::string>& restart_only_keys();

// general.loglevel and general.log_format, applied to the process's logger.
void apply_logging(const Config& config);

}  // namespace s2s
