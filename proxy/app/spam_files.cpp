#include "proxy/app/spam_files.h"

#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "common/base/log.h"
#include "common/config/config_load.h"
#include "proxy/ops/metrics.h"

namespace s2s {

struct SpamFileWatcher::Dir {
    uv_fs_event_t handle{};
    SpamFileWatcher* owner = nullptr;
    std::string path;
    std::set<std::string> names;  // the list files in it
};

namespace {

std::string dir_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool read_file(const std::string& path, std::string* text) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream s;
    s << in.rdbuf();
    *text = s.str();
    return !in.bad();
}

}  // namespace

std::vector<SpamFile> spam_files(const Config& config) {
    std::vector<SpamFile> files;
    for (auto [key, path] : {std::pair{"spam_domains_file", &config.antispam_spam_domains_file},
                             std::pair{"spam_jids_file", &config.antispam_spam_jids_file},
                             std::pair{"whitelist_domains_file", &config.antispam_whitelist_domains_file}})
        if (!path->empty()) files.push_back({key, *path, config::locate(config, std::string("antispam.") + key)});
    return files;
}

SpamFilesLoad load_spam_files(const std::vector<SpamFile>& files) {
    SpamFilesLoad out;
    if (files.empty()) return out;
    std::vector<SpamList> domains;
    SpamList jids, whitelist;
    for (const SpamFile& f : files) {
        SpamList list;
        list.source = f.path;
        list.key = f.key;
        std::string text, error;
        if (!read_file(f.path, &text)) {
            out.problems.push_back(f.where + ": " + f.path + ": cannot be read");
            continue;
        }
        SpamListKind kind = f.key == "spam_jids_file" ? SpamListKind::Jids : SpamListKind::Domains;
        if (!parse_spam_list(text, kind, &list, &error)) {
            out.problems.push_back(f.where + ": " + f.path + ": " + error);
            continue;
        }
        out.summary.push_back("antispam." + f.key + ": " + f.path + ": " + std::to_string(list.size()) + " entries (" +
                              std::to_string(list.hashed.size()) + " hashed)");
        if (f.key == "spam_jids_file") jids = std::move(list);
        else if (f.key == "whitelist_domains_file") whitelist = std::move(list);
        else domains.push_back(std::move(list));
    }
    if (out.problems.empty())
        out.lists = std::make_shared<const SpamLists>(std::move(domains), std::move(jids), std::move(whitelist));
    return out;
}

SpamFileWatcher::SpamFileWatcher(EventLoop& loop, Apply apply) : loop_(loop), apply_(std::move(apply)) {}

SpamFileWatcher::~SpamFileWatcher() {
    stop_watching();
    if (settle_) {
        uv_close(reinterpret_cast<uv_handle_t*>(settle_),
                 [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        settle_ = nullptr;
    }
}

void SpamFileWatcher::stop_watching() noexcept {
    for (Dir* d : dirs_) {
        uv_fs_event_stop(&d->handle);
        uv_close(reinterpret_cast<uv_handle_t*>(&d->handle), [](uv_handle_t* h) { delete static_cast<Dir*>(h->data); });
    }
    dirs_.clear();
}

void SpamFileWatcher::watch(const Config& config) {
    stop_watching();
    files_ = spam_files(config);
    for (const SpamFile& f : files_) {
        std::string dir = dir_of(f.path);
        Dir* d = nullptr;
        for (Dir* have : dirs_)
            if (have->path == dir) d = have;
        if (!d) {
            d = new Dir;
            d->owner = this;
            d->path = dir;
            uv_fs_event_init(loop_.uv(), &d->handle);
            d->handle.data = d;
            int rc = uv_fs_event_start(&d->handle, on_event, dir.c_str(), 0);
            if (rc != 0)
                S2S_LOG_WARNING(LogContext{}, "antispam", "%s: changes in %s are not watched (%s); SIGHUP reads it",
                                f.where.c_str(), dir.c_str(), uv_strerror(rc));
            dirs_.push_back(d);
        }
        d->names.insert(base_of(f.path));
    }
}

void SpamFileWatcher::on_event(uv_fs_event_t* handle, const char* filename, int, int status) noexcept {
    Dir* d = static_cast<Dir*>(handle->data);
    SpamFileWatcher* self = d->owner;
    // Another file in the directory is no concern; "..data" is the link a Kubernetes ConfigMap
    // volume swaps when it updates its files (which are links through it).
    if (status == 0 && filename && !d->names.count(filename) && std::string_view(filename) != "..data") return;
    if (!self->settle_) {
        self->settle_ = new uv_timer_t;
        uv_timer_init(self->loop_.uv(), self->settle_);
        self->settle_->data = self;
    }
    uv_timer_start(self->settle_, on_settled, kSettleMs, 0);  // restarts: waits for the writes to stop
}

void SpamFileWatcher::on_settled(uv_timer_t* timer) noexcept {
    auto* self = static_cast<SpamFileWatcher*>(timer->data);
    try {
        self->read_now();
    } catch (const std::exception& e) {  // bad_alloc: the lists in force stay
        S2S_LOG_ERROR(LogContext{}, "antispam", "reading the lists failed: %s", e.what());
    }
}

bool SpamFileWatcher::read_now() {
    SpamFilesLoad load = load_spam_files(files_);
    if (!load.problems.empty()) {
        metrics().antispam_reloads.add("refused");
        for (const std::string& p : load.problems)
            S2S_LOG_WARNING(LogContext{}, "antispam", "%s; the lists in force stay", p.c_str());
        return false;
    }
    metrics().antispam_reloads.add("applied");
    for (const std::string& s : load.summary) S2S_LOG_NOTICE(LogContext{}, "antispam", "%s", s.c_str());
    apply_(std::move(load.lists));
    return true;
}

}  // namespace s2s
