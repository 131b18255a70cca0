// Turns a TOML file plus command-line overrides into a validated Config.
//
// Every problem in the file is reported, each naming where it stands (file and line, or the command
// line), the full key and what to change. Nothing here throws: cpptoml's exceptions stop at this
// boundary.
#pragma once

#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/config/config_table.h"

namespace s2s::config {

// One problem found in a config. `line` is 0 when no line applies (a missing key, the command line).
struct Diagnostic {
    std::string where;    // file name, or "command line"
    int line = 0;
    std::string key;      // full dotted key, e.g. "listen.s2s.0.tls.mode"
    std::string message;
    [[nodiscard]] std::string str() const;  // "file:12: key: message"
};

// `--KEY=VALUE` from the command line. VALUE is TOML value syntax (`5270`, `"x"`, `[4, 6]`); a VALUE
// that is not valid TOML is taken as a string, and for list keys as a comma-separated list.
struct Override {
    std::string key;
    std::string value;
};

// One effective option after defaults: its canonical key, its TOML text and the value its table
// entry applied to the Config (applying it again to another Config sets the same field: reload).
struct Setting {
    std::string key;
    std::string toml;     // "" for an option left unset
    bool secret = false;
    bool generated = false;  // a Generated key the file left unset: a fresh value each load
    bool defaulted = false;  // the table's default, not given in the file or on the command line
    std::string note;     // what the value means when the text alone does not say ("infinity" capped)
    Value value;          // as checked; empty for an option left unset
};

struct LoadResult {
    Config config;
    std::vector<Diagnostic> errors;
    std::vector<Diagnostic> warnings;
    std::vector<Setting> settings;   // sorted by key; what --print-config shows
    [[nodiscard]] bool ok() const { return errors.empty(); }
};

// Loads TOML text (name is used in messages) with overrides applied on top.
[[nodiscard]] LoadResult load(const std::string& name, const std::string& text, const std::vector<Override>& cli);

// Where `key` of a loaded config stands, for a message about its value: "proxy.toml:14: KEY" (the key
// as written), "command line: --KEY", or "proxy.toml: KEY" for a key the file left unset.
[[nodiscard]] std::string locate(const Config& config, const std::string& key);

// Reads the file, then as load(); a file that cannot be read is an error naming it.
[[nodiscard]] LoadResult load_file(const std::string& path, const std::vector<Override>& cli);

}  // namespace s2s::config
