#include "proxy/app/reload.h"

#include <map>
#include <set>

#include "common/config/config_table.h"
#include "common/base/log.h"

namespace s2s {
namespace {

// A listener keeps its socket: its address, port and socket options stay; the rest is new.
void keep_listeners(const std::vector<Listener>& running, const std::vector<Listener>& next,
                    std::vector<Listener>* out) {
    std::vector<Listener> kept = running;
    for (size_t i = 0; i < running.size() && i < next.size(); ++i) {
        kept[i] = next[i];
        kept[i].port = running[i].port;
        kept[i].ip_address = running[i].ip_address;
        kept[i].reuse_port = running[i].reuse_port;
        kept[i].backlog = running[i].backlog;
    }
    *out = std::move(kept);
}

// `next` with every restart-only option (restart_only_keys()) at its running value.
Config keep_restart_only(const Config& running, const Config& next) {
    Config c = next;
    c.hosts = running.hosts;
    c.shared = running.shared;
    c.outgoing.dns_nameservers = running.outgoing.dns_nameservers;
    c.outgoing.dns_timeout = running.outgoing.dns_timeout;
    c.outgoing.dns_retries = running.outgoing.dns_retries;
    c.outgoing.dane = running.outgoing.dane;  // the DNS client asks with DO from its start
    c.local_server = running.local_server;
    c.local_mode = running.local_mode;
    c.local_password = running.local_password;
    c.local_component_name = running.local_component_name;
    c.local_dns_responder = running.local_dns_responder;
    c.local_verify_server = running.local_verify_server;
    c.admin_enabled = running.admin_enabled;
    c.admin_listen = running.admin_listen;
    keep_listeners(running.listen_s2s, next.listen_s2s, &c.listen_s2s);
    keep_listeners(running.listen_local, next.listen_local, &c.listen_local);
    return c;
}

// For "listen.s2s.3.port": "listen.s2s.3" and 3; otherwise false.
bool listener_entry(const std::string& key, std::string* entry, size_t* index) {
    for (const char* prefix : {"listen.s2s.", "listen.local."}) {
        std::string p = prefix;
        if (key.compare(0, p.size(), p) != 0) continue;
        size_t dot = key.find('.', p.size());
        std::string idx = key.substr(p.size(), dot == std::string::npos ? std::string::npos : dot - p.size());
        if (idx.empty() || idx.size() > 6 || idx.find_first_not_of("0123456789") != std::string::npos) return false;
        *entry = p + idx;
        *index = std::stoul(idx);
        return true;
    }
    return false;
}

// Whether the table marks the option a concrete key belongs to Reloadable.
bool reloadable(const std::string& key) {
    const config::OptionSpec* spec = config::find_option(key);
    return spec && (spec->flags & config::Reloadable);
}

std::string shown(const config::Setting* s) {
    if (!s || s->toml.empty()) return "unset";
    return s->toml;
}

}  // namespace

const std::vector<std::string>& restart_only_keys() {
    static const std::vector<std::string> keys = [] {
        std::vector<std::string> out;
        for (const config::OptionSpec& o : config::options())
            if (!(o.flags & config::Reloadable)) out.push_back(o.key);
        return out;
    }();
    return keys;
}

ReloadPlan plan_reload(const Config& running, const std::vector<config::Setting>& running_settings,
                       const config::LoadResult& next) {
    ReloadPlan plan;
    plan.config = keep_restart_only(running, next.config);

    std::map<std::string, const config::Setting*> before, after;
    for (auto& s : running_settings) before[s.key] = &s;
    for (auto& s : next.settings) after[s.key] = &s;
    std::set<std::string> keys;
    for (auto& [k, s] : before) keys.insert(k);
    for (auto& [k, s] : after) keys.insert(k);
    size_t s2s_count[2] = {running.listen_s2s.size(), next.config.listen_s2s.size()};
    size_t local_count[2] = {running.listen_local.size(), next.config.listen_local.size()};

    std::set<std::string> entries_reported;
    for (const std::string& key : keys) {
        const config::Setting* b = before.count(key) ? before[key] : nullptr;
        const config::Setting* a = after.count(key) ? after[key] : nullptr;
        const config::Setting* keep = b;  // what the merged settings hold for this key
        bool same = (b && a && (b->toml == a->toml || (b->generated && a->generated))) ||
                    (!b && !a);
        std::string entry;
        size_t index = 0;
        if (!same && listener_entry(key, &entry, &index)) {
            const size_t* count = entry.compare(0, 11, "listen.s2s.") == 0 ? s2s_count : local_count;
            if (index >= count[0] || index >= count[1]) {
                if (entries_reported.insert(entry).second)
                    plan.need_restart.push_back(entry + (index >= count[0] ? ": a new listener" : ": removing a listener") +
                                                " takes effect only after a restart");
                if (b) plan.settings.push_back(*b);
                continue;
            }
        }
        if (!same) {
            if (reloadable(key)) {
                plan.applied.push_back(key);
                keep = a;
            } else if ((b && b->secret) || (a && a->secret)) {
                plan.need_restart.push_back(key + " changed; it takes effect only after a restart");
            } else {
                plan.need_restart.push_back(key + " changed from " + shown(b) + " to " + shown(a) +
                                            "; it takes effect only after a restart");
            }
        }
        // The same value, now written out or now left to its default: the new record says which
        // (a tls subsection or s2s.use_starttls means something by being there; the config has it).
        if (same && a && b && a->defaulted != b->defaulted) {
            keep = a;
            std::string what = key + (a->defaulted ? " (now left to its default)" : " (now written out)");
            if (reloadable(key))
                plan.applied.push_back(what);
            else
                plan.need_restart.push_back(what + "; it takes effect only after a restart");
        }
        if (keep) plan.settings.push_back(*keep);
    }
    return plan;
}

void apply_logging(const Config& c) {
    LogLevel level = LogLevel::warning;
    switch (c.loglevel) {
        case LogSetting::None: level = LogLevel::off; break;
        case LogSetting::Emergency: case LogSetting::Alert: case LogSetting::Critical: case LogSetting::Error:
            level = LogLevel::error;
            break;
        case LogSetting::Warning: level = LogLevel::warning; break;
        case LogSetting::Notice: level = LogLevel::notice; break;
        case LogSetting::Info: level = LogLevel::info; break;
        case LogSetting::Debug: case LogSetting::All: level = LogLevel::debug; break;
    }
    set_log_level(level);
    set_log_format(c.log_format == LogFormatSetting::Json ? LogFormat::json : LogFormat::text);
}

}  // namespace s2s
