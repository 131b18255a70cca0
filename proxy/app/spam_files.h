// The [antispam] list files (spam_domains_file, spam_jids_file, whitelist_domains_file): read,
// parsed and handed over as one SpamLists, all or nothing. At start a file that does not parse
// stops the start (and --check-config names the key, the file and the line); later, on SIGHUP
// and when a file changes on disk, it is logged and counted and the lists in force stay.
//
// Changes on disk are seen through libuv fs events on the files' directories (so a file replaced
// by rename is seen too: editors, a Kubernetes ConfigMap update); after a change the files are
// read once things have been quiet for kSettleMs.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/base/event_loop.h"
#include "common/config/config.h"
#include "proxy/xmpp/spam_lists.h"

namespace s2s {

struct SpamFilesLoad {
    std::shared_ptr<const SpamLists> lists;  // null when a file failed, or no file is configured
    std::vector<std::string> problems;       // "proxy.toml:12: antispam.spam_domains_file: /x: line 3: ..."
    std::vector<std::string> summary;        // "antispam.spam_domains_file: /x: 120 entries (3 hashed)"
};

// One configured list file: its key ("spam_domains_file"), path, and where the key was set
// ("proxy.toml:12: antispam.spam_domains_file").
struct SpamFile {
    std::string key, path, where;
};
[[nodiscard]] std::vector<SpamFile> spam_files(const Config& config);

// Reads and parses every configured list file.
[[nodiscard]] SpamFilesLoad load_spam_files(const std::vector<SpamFile>& files);

class SpamFileWatcher {
public:
    static constexpr uint64_t kSettleMs = 200;
    using Apply = std::function<void(std::shared_ptr<const SpamLists>)>;

    // Watches the directories of `config`'s list files; `apply` gets every set of lists read
    // successfully after a change (null when no file is configured any more).
    SpamFileWatcher(EventLoop& loop, Apply apply);
    ~SpamFileWatcher();
    SpamFileWatcher(const SpamFileWatcher&) = delete;
    SpamFileWatcher& operator=(const SpamFileWatcher&) = delete;

    // The files to watch from now on (start, and every applied SIGHUP).
    void watch(const Config& config);
    // Reads the files now (SIGHUP): applies them, or logs, counts and keeps the lists in force.
    // False when a file did not parse.
    bool read_now();

private:
    struct Dir;
    static void on_event(uv_fs_event_t* handle, const char* filename, int events, int status) noexcept;
    static void on_settled(uv_timer_t* timer) noexcept;
    void stop_watching() noexcept;

    EventLoop& loop_;
    Apply apply_;
    std::vector<SpamFile> files_;
    std::vector<Dir*> dirs_;                    // freed in their close callbacks
    uv_timer_t* settle_ = nullptr;              // freed in its close callback
};

}  // namespace s2s
