// Where each key of a TOML file stands, for error messages only.
//
// cpptoml keeps no source positions for values, so this reads the file's text once more and records
// the line of every table header, array-of-tables entry, key (bare, quoted or dotted) and key inside
// an inline table of an array, under the same dotted path the loader uses ("listen.s2s.0.port",
// "s2s.host_policy.1.host").
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace s2s::config {

using LineIndex = std::map<std::string, int>;

[[nodiscard]] LineIndex index_lines(std::string_view text);

// The line of key, or of its nearest enclosing table or entry; 0 if none is known.
[[nodiscard]] int line_of(const LineIndex& index, const std::string& key);

// The key, table or entry that starts last at or before `line` (the most specific one when several
// start on that line), with its line; {"", 0} when none does. For naming where a syntax error is.
struct KeyAt {
    std::string key;
    int line = 0;
};
[[nodiscard]] KeyAt key_at(const LineIndex& index, int line);

}  // namespace s2s::config
