// The [antispam] list files (proxy/app/spam_files): loaded from a real temp directory, with
// config keys located as a real config file sets them; the watcher on the real loop, with files
// rewritten in place and replaced by rename.
#include <doctest/doctest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/config/config_load.h"
#include "proxy/app/spam_files.h"
#include "proxy/ops/metrics.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/test_support.h"

using namespace s2s;

namespace {

// The config of proxy.toml with the [antispam] keys given (e.g. "spam_domains_file = \"/x\"").
Config config_with(const std::vector<std::string>& antispam) {
    std::string text = "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n[antispam]\n";
    for (const std::string& line : antispam) text += line + "\n";
    config::LoadResult r = config::load("proxy.toml", text, {});
    REQUIRE_MESSAGE(r.ok(), r.errors.front().message);
    return r.config;
}

std::string key(const char* name, const std::string& path) { return std::string(name) + " = \"" + path + "\""; }

// One list file `key` in a temp directory (first written with `text`), watched on a real loop;
// the lists applied so far in `sets`.
struct Watching {
    test::TempDir dir;
    std::string path;
    test::TestLoop t;
    std::vector<std::shared_ptr<const SpamLists>> sets;
    std::unique_ptr<SpamFileWatcher> w;

    Watching(const char* key_name, const std::string& file, const std::string& text)
        : path(dir.write(file, text)) {
        w = std::make_unique<SpamFileWatcher>(t.loop(), [this](std::shared_ptr<const SpamLists> l) {
            sets.push_back(std::move(l));
        });
        w->watch(config_with({key(key_name, path)}));
    }
    ~Watching() {
        w.reset();
        t.run_for(10);  // the watcher's handles close
    }
};

// Within the settle time and a margin for the file system's events.
constexpr uint64_t kPickedUpMs = SpamFileWatcher::kSettleMs + 800;

}  // namespace

TEST_CASE("spam_files: each configured file is read into one set of lists, with a summary per file") {
    test::TempDir dir;
    std::string domains = dir.write("domains.txt", "# the JabberSPAM list\nspam.test\n\n" + std::string(64, 'a') + "\n");
    std::string jids = dir.write("jids.txt", "spammer@c.test  # since Monday\n");
    std::string white = dir.write("white.txt", "ok.spam.test\n");
    Config c = config_with({key("spam_domains_file", domains), key("spam_jids_file", jids),
                            key("whitelist_domains_file", white)});
    std::vector<SpamFile> files = spam_files(c);
    REQUIRE(files.size() == 3);
    CHECK(files[0].key == "spam_domains_file");
    CHECK(files[0].where == "proxy.toml:6: antispam.spam_domains_file");
    SpamFilesLoad load = load_spam_files(files);
    CHECK(load.problems.empty());
    REQUIRE(load.lists.get() != nullptr);
    CHECK(load.summary == std::vector<std::string>{"antispam.spam_domains_file: " + domains + ": 2 entries (1 hashed)",
                                                   "antispam.spam_jids_file: " + jids + ": 1 entries (0 hashed)",
                                                   "antispam.whitelist_domains_file: " + white + ": 1 entries (0 hashed)"});
    CHECK(load.lists->blocking_domain("muc.spam.test"));
    CHECK_FALSE(load.lists->blocking_domain("ok.spam.test"));
    CHECK(load.lists->blocking_jid("spammer@c.test"));
    CHECK(load.lists->blocking_domain("x.spam.test")->source == domains);

    CHECK(spam_files(config_with({})).empty());
    SpamFilesLoad none = load_spam_files({});
    CHECK(none.lists.get() == nullptr);
    CHECK(none.problems.empty());
}

TEST_CASE("spam_files: a bad line, or a file that cannot be read, is a problem naming config line, key, file and line") {
    test::TempDir dir;
    std::string good = dir.write("jids.txt", "spammer@c.test\n");
    std::string bad = dir.write("domains.txt", "spam.test\n\nnot a domain\n");
    Config c = config_with({key("spam_jids_file", good), key("spam_domains_file", bad)});
    SpamFilesLoad load = load_spam_files(spam_files(c));
    CHECK(load.lists.get() == nullptr);  // all or nothing
    REQUIRE(load.problems.size() == 1);
    CHECK(load.problems[0].rfind("proxy.toml:7: antispam.spam_domains_file: " + bad + ": line 3: 'not a domain' is not a domain (", 0) == 0);

    std::string jid_bad = dir.write("jids2.txt", "c.test\n");
    load = load_spam_files(spam_files(config_with({key("spam_jids_file", jid_bad)})));
    REQUIRE(load.problems.size() == 1);
    CHECK(load.problems[0].find(jid_bad + ": line 1: 'c.test' is not a bare JID") != std::string::npos);

    std::string gone = dir.path() + "/missing.txt";
    load = load_spam_files({{"spam_domains_file", gone, "proxy.toml:9: antispam.spam_domains_file"}});
    REQUIRE(load.problems.size() == 1);
    CHECK(load.problems[0] == "proxy.toml:9: antispam.spam_domains_file: " + gone + ": cannot be read");
}

TEST_CASE("spam_files: a file rewritten in place is read again once quiet; a bad rewrite keeps the lists in force") {
    Watching f("spam_domains_file", "domains.txt", "spam.test\n");
    f.t.run_for(50);  // nothing changed: nothing read
    CHECK(f.sets.empty());

    (void)f.dir.write("domains.txt", "spam.test\nmore.test\n");
    REQUIRE(f.t.run_until([&] { return f.sets.size() == 1; }, kPickedUpMs));
    CHECK(f.sets[0]->blocking_domain("more.test"));

    uint64_t refused = metrics().antispam_reloads.get("refused");
    test::LogCapture log;
    (void)f.dir.write("domains.txt", "spam.test\nbroken line\n");
    REQUIRE(f.t.run_until([&] { return metrics().antispam_reloads.get("refused") == refused + 1; }, kPickedUpMs));
    CHECK(f.sets.size() == 1);  // the lists in force stay
    CHECK(log.has("line 2: 'broken line' is not a domain", "the lists in force stay"));

    (void)f.dir.write("domains.txt", "more.test\n");
    REQUIRE(f.t.run_until([&] { return f.sets.size() == 2; }, kPickedUpMs));
    CHECK_FALSE(f.sets[1]->blocking_domain("spam.test"));
    CHECK(f.sets[1]->blocking_domain("more.test"));

    // another file in the directory is no concern
    (void)f.dir.write("notes.txt", "x\n");
    f.t.run_for(kPickedUpMs);
    CHECK(f.sets.size() == 2);
}

TEST_CASE("spam_files: a file replaced by rename (an editor, a ConfigMap update) is read again; SIGHUP reads at once") {
    Watching f("spam_jids_file", "jids.txt", "spammer@c.test\n");
    std::string next = f.dir.write(".jids.txt.new", "other@c.test\n");
    REQUIRE(std::rename(next.c_str(), f.path.c_str()) == 0);
    REQUIRE(f.t.run_until([&] { return f.sets.size() == 1; }, kPickedUpMs));
    CHECK_FALSE(f.sets[0]->blocking_jid("spammer@c.test"));
    CHECK(f.sets[0]->blocking_jid("other@c.test"));

    (void)f.dir.write("jids.txt", "third@c.test\n");
    CHECK(f.w->read_now());  // at once, not after the settle time
    REQUIRE(f.sets.size() >= 2);
    CHECK(f.sets.back()->blocking_jid("third@c.test"));
    (void)f.dir.write("jids.txt", "bad\n");
    size_t before = f.sets.size();
    CHECK_FALSE(f.w->read_now());
    CHECK(f.sets.size() == before);
    f.t.run_for(kPickedUpMs);  // the events of the writes above: read again, still bad
    CHECK(f.sets.size() == before);
}
