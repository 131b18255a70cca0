// The declarative option table: every configuration key s2s-proxy knows, with its type, default,
// bounds, help and where its value goes in Config. Parsing, validation, defaults, --help and
// --print-config are all driven from this one table.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config/config.h"

namespace s2s::config {

// What kind of value a key takes; each kind has one parser and one validator in config_load.cpp.
enum class Kind {
    Bool,
    Int,         // integer within [min, max]
    Limit,       // integer within [min, max], or "infinity"
    String,      // any non-empty string
    Secret,      // a string that is never printed or logged
    Enum,        // one of `choices`
    Path,        // a file that must exist and be readable
    CertFile,    // a PEM file that must hold at least one X.509 certificate
    KeyFile,     // a PEM file that must hold a private key (decrypted with the sibling `password`)
    Domain,      // a DNS domain name
    DomainList,  // array of domain names
    StringList,  // array of strings (each one of `choices` when choices are given)
    IntList,     // array of integers (each one of `choices` when choices are given), no duplicates
    IpAddress,   // an IPv4 or IPv6 literal
    HostPort,    // "host:port" or "[v6]:port"
    Nameservers, // array of "ip" or "ip:port"
    Networks,    // array of IP networks, "10.0.0.0/8" or "fd00::/8", or single addresses
    ShaperRef,   // "none" or the name of a [shaper.NAME] table
    AccessRef,   // "all" or the name of an [access] rule
    AclRef,      // "all", "none" or the name of an [acl] entry
    Ignored,     // accepted for compatibility, reported as ignored
};

enum Flag : unsigned {
    Required = 1u << 0,    // must be present (in its entry, for keys under a list or named table)
    Reloadable = 1u << 1,  // takes effect on SIGHUP without restarting links
    Generated = 1u << 2,   // no default text: a value is generated at start (the dialback secret)
};

// A value after validation: the field a kind uses is filled, the others stay empty.
struct Value {
    bool b = false;
    int64_t i = 0;
    bool infinite = false;
    size_t choice = 0;                 // Enum: index into choices
    std::string s;
    std::vector<std::string> list;
    std::vector<int64_t> ints;
};

// What `*` in a key pattern stood for, left to right (a list index or a table name).
using Wild = std::vector<std::string>;
using Apply = std::function<void(Config&, const Wild&, const Value&)>;

struct OptionSpec {
    std::string key;                   // canonical key, `*` for a list index or a table name
    Kind kind;
    const char* def;                   // default as TOML value text; nullptr: none
    int64_t min, max;
    std::vector<std::string> choices;
    unsigned flags;
    const char* help;
    Apply apply;
};

// A key of the 6.x layout and the newer key it stands for (whole subtrees are renamed).
struct Alias {
    const char* legacy;
    const char* canonical;
};

// How entries of a list or a named table are written by --print-config.
enum class EntryStyle { TableArray, InlineArray, NamedTable, NamedInlineArray };
struct EntrySpec {
    const char* prefix;                // pattern up to its last `*`, e.g. "listen.s2s.*"
    EntryStyle style;
};

[[nodiscard]] const std::vector<OptionSpec>& options();
[[nodiscard]] const std::vector<Alias>& aliases();
[[nodiscard]] const std::vector<EntrySpec>& entries();

// "a.b.c" -> {"a", "b", "c"}.
[[nodiscard]] std::vector<std::string_view> key_segments(std::string_view key);
// Whether a concrete key matches a pattern whose `*` segments match any one segment.
[[nodiscard]] bool key_matches(const std::string& pattern, const std::string& key, Wild* wild = nullptr);

// The spec whose pattern matches the concrete key, with what its `*`s stood for; nullptr if none.
[[nodiscard]] const OptionSpec* find_option(const std::string& key, Wild* wild = nullptr);

}  // namespace s2s::config
