// Loading a config: TOML text -> flat dotted keys -> validated values -> Config.
//
// 1. cpptoml parses the file; the tree is flattened to dotted keys ("listen.s2s.0.port"), with the
//    6.x keys renamed to the newer layout (config_table's aliases).
// 2. Command-line overrides replace keys (and whole subtrees) through the same path.
// 3. Each key is checked against the option table: unknown keys, types, bounds, choices, files.
// 4. Defaults fill what is absent, required keys are checked, per list entry and named table.
// 5. Cross-key checks: references to shapers, access rules and acls, certificates for TLS.
// 6. Each value is applied to Config through its table entry.
#include "common/config/config_load.h"

#include <arpa/inet.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cpptoml.h>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "common/config/config_lines.h"
#include "common/tls/tls_keyfile.h"
#include "common/config/config_table.h"
#include "common/xmpp/jid.h"
#include "common/net/net_address.h"
#include "common/base/random.h"

namespace s2s::config {

std::string Diagnostic::str() const {
    std::string out = where;
    if (line > 0) out += ":" + std::to_string(line);
    out += ": ";
    if (!key.empty()) out += key + ": ";
    return out + message;
}

namespace {

using Node = std::shared_ptr<cpptoml::base>;

enum class Source { File, Cli, Default };

struct Entry {
    Node node;
    Source source = Source::File;
    std::string written;   // the key as written, when an alias renamed it
};

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string join_quoted(const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
    return out;
}

std::string quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += c;
                }
        }
    }
    return out + "\"";
}

std::string type_name(const Node& n) {
    if (n->is_table()) return "a table";
    if (n->is_table_array()) return "an array of tables";
    if (n->is_array()) return "an array";
    if (n->as<std::string>()) return "a string";
    if (n->as<int64_t>()) return "an integer";
    if (n->as<double>()) return "a float";
    if (n->as<bool>()) return "a boolean";
    return "a date";
}

// TOML text of a value (strings quoted, arrays and inline tables written out).
std::string render(const Node& n) {
    if (auto s = n->as<std::string>()) return quote(s->get());
    if (auto i = n->as<int64_t>()) return std::to_string(i->get());
    if (auto b = n->as<bool>()) return b->get() ? "true" : "false";
    if (auto d = n->as<double>()) {
        std::ostringstream os;
        os << d->get();
        return os.str();
    }
    if (n->is_array()) {
        std::string out = "[";
        auto items = n->as_array()->get();
        for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + render(items[i]);
        return out + "]";
    }
    if (n->is_table()) {
        std::vector<std::string> parts;
        for (auto& kv : *n->as_table()) parts.push_back(kv.first + " = " + render(kv.second));
        std::sort(parts.begin(), parts.end());
        return "{" + join_quoted(parts) + "}";
    }
    if (n->is_table_array()) {
        std::string out = "[";
        auto items = n->as_table_array()->get();
        for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + render(items[i]);
        return out + "]";
    }
    return "\"?\"";
}

// Parses one TOML value (`5270`, `"x"`, `[4, 6]`); nullptr when it is not valid TOML.
Node parse_value(const std::string& text) {
    std::istringstream in("v = " + text + "\n");
    try {
        cpptoml::parser p(in);
        return p.parse()->get("v");
    } catch (const std::exception&) {
        return nullptr;
    }
}

bool is_string_kind(Kind k) {
    switch (k) {
        case Kind::String: case Kind::Secret: case Kind::Enum: case Kind::Path: case Kind::CertFile:
        case Kind::KeyFile: case Kind::Domain: case Kind::IpAddress: case Kind::HostPort: case Kind::ShaperRef:
        case Kind::AccessRef: case Kind::AclRef:
            return true;
        default:
            return false;
    }
}

bool is_list_kind(Kind k) {
    return k == Kind::DomainList || k == Kind::StringList || k == Kind::IntList || k == Kind::Nameservers ||
           k == Kind::Networks;
}

bool parse_port(std::string_view s, int* port) {
    if (s.empty() || s.size() > 5) return false;
    int p = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) return false;
    *port = p;
    return true;
}

bool is_ip(const std::string& s) {
    unsigned char buf[16];
    return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// "host:port", "[v6]:port"; host_ok decides what the host part may be.
bool split_host_port(const std::string& s, std::string* host, int* port, bool port_optional) {
    std::string h, p;
    if (!s.empty() && s[0] == '[') {
        size_t close = s.find(']');
        if (close == std::string::npos) return false;
        h = s.substr(1, close - 1);
        if (close + 1 < s.size()) {
            if (s[close + 1] != ':') return false;
            p = s.substr(close + 2);
        } else if (!port_optional) {
            return false;
        }
    } else if (std::count(s.begin(), s.end(), ':') > 1) {  // a bare IPv6 address
        if (!port_optional) return false;
        h = s;
    } else {
        size_t colon = s.find(':');
        h = s.substr(0, colon);
        if (colon != std::string::npos)
            p = s.substr(colon + 1);
        else if (!port_optional)
            return false;
    }
    if (h.empty()) return false;
    *host = h;
    if (p.empty()) return port_optional && s.back() != ':';
    return parse_port(p, port);
}

std::string mbedtls_reason(int rc) {
    char buf[160];
    mbedtls_strerror(rc, buf, sizeof buf);
    return buf;
}

class Loader {
public:
    Loader(std::string name, const std::string& text, const std::vector<Override>& cli)
        : name_(std::move(name)), text_(text), cli_(cli) {}

    LoadResult run() {
        try {
            if (!parse_file()) return std::move(r_);
            apply_overrides();
            check_aliases();
            validate_all();
            fill_defaults();
            cross_checks();
            if (r_.errors.empty()) build();
        } catch (const std::exception& e) {
            error("", 0, "", std::string("internal error while loading: ") + e.what());
        }
        std::stable_sort(r_.errors.begin(), r_.errors.end(),
                         [](const Diagnostic& a, const Diagnostic& b) { return a.line < b.line; });
        return std::move(r_);
    }

private:
    struct Checked {
        const OptionSpec* spec;
        Wild wild;
        Value value;
    };

    // ---- diagnostics -------------------------------------------------------------------------
    void error(const std::string& where, int line, const std::string& key, const std::string& msg) {
        r_.errors.push_back({where.empty() ? name_ : where, line, key, msg});
    }
    void error_at(const std::string& key, const std::string& msg) {
        auto it = entries_.find(key);
        if (it != entries_.end() && it->second.source == Source::Cli) {
            error("command line", 0, "--" + key, msg);
            return;
        }
        std::string shown = key;
        if (it != entries_.end() && !it->second.written.empty()) shown = it->second.written;
        error(name_, line_of(lines_, shown), shown, msg);
    }
    void warn_at(const std::string& key, const std::string& msg) {
        auto it = entries_.find(key);
        bool cli = it != entries_.end() && it->second.source == Source::Cli;
        r_.warnings.push_back({cli ? "command line" : name_, cli ? 0 : line_of(lines_, key), key, msg});
    }

    // ---- 1. the file ---------------------------------------------------------------------------
    bool parse_file() {
        lines_ = index_lines(text_);
        std::istringstream in(text_);
        std::shared_ptr<cpptoml::table> root;
        try {
            cpptoml::parser p(in);
            root = p.parse();
        } catch (const cpptoml::parse_exception& e) {
            std::string msg = e.what();
            int line = 0;
            size_t at = msg.rfind(" at line ");
            if (at != std::string::npos) {
                line = std::atoi(msg.c_str() + at + 9);
                msg.resize(at);
            }
            // Name the key or table the error is in: cpptoml gives only the line.
            KeyAt near = line > 0 ? key_at(lines_, line) : KeyAt{};
            std::string where;
            if (!near.key.empty() && near.line < line) {
                if (is_table_header(near.line)) {
                    where = " (in " + near.key + ", opened on line " + std::to_string(near.line) + ")";
                } else {
                    size_t dot = near.key.rfind('.');
                    where = " (after " + near.key + " on line " + std::to_string(near.line) +
                            (dot == std::string::npos ? "" : ", in " + near.key.substr(0, dot)) + ")";
                }
            }
            error(name_, line, near.line == line ? near.key : "", "TOML syntax error" + where + ": " + msg);
            return false;
        }
        flatten(root, "", Source::File);
        return true;
    }

    // Whether line `n` (from 1) of the file opens a table: "[s2s.outgoing]", "[[listen.s2s]]".
    bool is_table_header(int n) const {
        std::istringstream in(text_);
        std::string l;
        for (int i = 0; i < n && std::getline(in, l); ++i) {
        }
        size_t first = l.find_first_not_of(" \t");
        return first != std::string::npos && l[first] == '[';
    }

    std::string canonical(const std::string& key) const {
        for (auto& a : aliases()) {
            std::string legacy = a.legacy;
            if (key == legacy || key.compare(0, legacy.size() + 1, legacy + ".") == 0)
                return a.canonical + key.substr(legacy.size());
        }
        return key;
    }

    void flatten(const Node& node, const std::string& key, Source source) {
        if (node->is_table()) {
            for (auto& kv : *node->as_table()) flatten(kv.second, key.empty() ? kv.first : key + "." + kv.first, source);
            return;
        }
        if (node->is_table_array()) {
            size_t i = 0;
            for (auto& t : node->as_table_array()->get()) flatten(t, key + "." + std::to_string(i++), source);
            return;
        }
        std::string canon = canonical(key);
        if (canon != key) legacy_seen_.insert(key);
        else canonical_seen_.insert(key);
        entries_[canon] = Entry{node, source, canon != key ? key : std::string()};
    }

    // ---- 2. the command line ---------------------------------------------------------------------
    void apply_overrides() {
        for (auto& o : cli_) {
            std::string key = canonical(o.key);
            Node value = parse_value(o.value);
            // A string option takes the text as it is when it does not read as a TOML string
            // (a secret like 12345 or 1e5 from an environment variable is still that text).
            if (const OptionSpec* str = find_option(key); str && is_string_kind(str->kind) && value &&
                                                          !value->as<std::string>())
                value = cpptoml::make_value<std::string>(std::string(o.value));
            const OptionSpec* spec = find_option(key);
            // A list key takes one bare value as a list of one (--s2s.outgoing.ip_versions=6).
            if (spec && is_list_kind(spec->kind) && value && !value->is_array()) {
                auto arr = cpptoml::make_array();
                if (auto i = value->as<int64_t>(); i && spec->kind == Kind::IntList) arr->push_back(i->get());
                else if (auto str = value->as<std::string>()) arr->push_back(str->get());
                else arr->push_back(std::string(o.value));
                value = arr;
            }
            if (!value) {
                if (spec && is_list_kind(spec->kind)) {
                    // Comma-separated: integers for an integer list (--s2s.outgoing.ip_versions=6,4),
                    // strings otherwise.
                    std::vector<std::string> items;
                    std::stringstream ss(o.value);
                    std::string item;
                    while (std::getline(ss, item, ','))
                        if (!item.empty()) items.push_back(item);
                    std::vector<int64_t> ints;
                    for (auto& i : items)
                        if (Node n = spec->kind == Kind::IntList ? parse_value(i) : nullptr; n && n->as<int64_t>())
                            ints.push_back(n->as<int64_t>()->get());
                    auto arr = cpptoml::make_array();  // one type throughout: integers only when all are
                    if (!items.empty() && ints.size() == items.size())
                        for (int64_t i : ints) arr->push_back(i);
                    else
                        for (auto& i : items) arr->push_back(i);
                    value = arr;
                } else {
                    value = cpptoml::make_value<std::string>(std::string(o.value));
                }
            }
            for (auto it = entries_.lower_bound(key); it != entries_.end() && (it->first == key || it->first.compare(0, key.size() + 1, key + ".") == 0);)
                it = entries_.erase(it);
            flatten(value, key, Source::Cli);
        }
    }

    void check_aliases() {
        for (auto& a : aliases()) {
            auto under = [&](const std::set<std::string>& seen, const std::string& root) -> std::string {
                for (auto& k : seen)
                    if (k == root || k.compare(0, root.size() + 1, root + ".") == 0) return k;
                return "";
            };
            std::string legacy = under(legacy_seen_, a.legacy), canon = under(canonical_seen_, a.canonical);
            if (legacy.empty() || canon.empty()) continue;
            error(name_, line_of(lines_, legacy), a.legacy,
                  std::string("set twice: ") + a.legacy + " (6.x layout) and " + a.canonical + " (line " +
                      std::to_string(line_of(lines_, canon)) + ") are the same option; keep only " + a.canonical);
        }
    }

    // ---- 3. each key -----------------------------------------------------------------------------
    void validate_all() {
        for (auto& [key, entry] : entries_) {
            Wild wild;
            const OptionSpec* spec = find_option(key, &wild);
            if (!spec) {
                unknown_key(key);
                continue;
            }
            if (!wild_ok(key, *spec, wild)) continue;
            Value v;
            if (convert(key, *spec, entry.node, &v)) checked_[key] = Checked{spec, wild, std::move(v)};
        }
    }

    void unknown_key(const std::string& key) {
        auto ks = key_segments(key);
        // An option of the public listeners written under a local one.
        if (ks.size() == 4 && ks[0] == "listen" && ks[1] == "local" &&
            find_option("listen.s2s." + std::string(ks[2]) + "." + std::string(ks[3]))) {
            error_at(key, std::string(ks[3]) + " applies to [[listen.s2s]] only: the local server connects to "
                                               "[[listen.local]] directly on loopback; remove it here");
            return;
        }
        for (auto& o : options()) {
            auto ps = key_segments(o.key);
            if (ps.size() <= ks.size()) continue;
            std::string prefix;
            for (size_t i = 0; i < ks.size(); ++i) prefix += (i ? "." : "") + std::string(ps[i]);
            if (key_matches(prefix, key)) {
                error_at(key, "expected a table (with keys such as " + std::string(ps[ks.size()]) + "), got " +
                                  type_name(entries_[key].node));
                return;
            }
        }
        std::string hint = suggest_key(key);
        error_at(key, "unknown key" + (hint.empty() ? std::string() : " (did you mean " + hint + "?)"));
    }

    // The closest known key, written with the same list indices and table names as the unknown one.
    static std::string suggest_key(const std::string& key) {
        auto ks = key_segments(key);
        std::string best;
        size_t best_d = std::string::npos;
        auto consider = [&](const std::string& cand, size_t d) {
            if (d < best_d) best_d = d, best = cand;
        };
        for (auto& o : options()) {
            auto ps = key_segments(o.key);
            std::string cand;
            if (ps.size() == ks.size()) {
                for (size_t i = 0; i < ps.size(); ++i)
                    cand += (i ? "." : "") + std::string(ps[i] == "*" ? ks[i] : ps[i]);
                consider(cand, edit_distance(key, cand));
            } else if (ps.back() == ks.back() && ps.front() == ks.front()) {
                for (size_t i = 0; i < ps.size(); ++i)
                    cand += (i ? "." : "") + std::string(ps[i] == "*" ? (i < ks.size() ? ks[i] : "0") : ps[i]);
                // the same key in another table: as close as one typo per table level moved
                consider(cand, 1 + (ps.size() > ks.size() ? ps.size() - ks.size() : ks.size() - ps.size()));
            }
        }
        for (auto& a : aliases()) consider(a.legacy, edit_distance(key, a.legacy));
        if (best_d == std::string::npos || best_d > std::max<size_t>(2, ks.back().size() / 3)) return "";
        return best;
    }

    bool wild_ok(const std::string& key, const OptionSpec& spec, const Wild& wild) {
        // Keys under a list must name entries by number: listen.s2s.0.port.
        auto ps = key_segments(spec.key);
        size_t w = 0;
        for (size_t i = 0; i < ps.size(); ++i) {
            if (ps[i] != "*") continue;
            bool numbered = !(spec.key.rfind("shaper.", 0) == 0 || spec.key.rfind("access.", 0) == 0 ||
                              spec.key.rfind("acl.", 0) == 0) ||
                            w == 1;
            if (numbered && wild[w].find_first_not_of("0123456789") != std::string::npos) {
                error_at(key, "\"" + wild[w] + "\" is not an entry number (write e.g. " +
                                  spec.key.substr(0, spec.key.find('*')) + "0" + spec.key.substr(spec.key.find('*') + 1) +
                                  ")");
                return false;
            }
            ++w;
        }
        return true;
    }

    bool expect_string(const std::string& key, const Node& n, std::string* out, const char* what = "a string") {
        auto s = n->as<std::string>();
        if (!s) {
            error_at(key, std::string("expected ") + what + ", got " + type_name(n));
            return false;
        }
        *out = s->get();
        if (out->empty()) {
            error_at(key, "must not be empty");
            return false;
        }
        return true;
    }

    bool expect_strings(const std::string& key, const Node& n, std::vector<std::string>* out) {
        if (!n->is_array()) {
            error_at(key, "expected an array of strings, got " + type_name(n));
            return false;
        }
        for (auto& item : n->as_array()->get()) {
            auto s = item->as<std::string>();
            if (!s) {
                error_at(key, "expected an array of strings, found " + type_name(item) + " " + render(item));
                return false;
            }
            out->push_back(s->get());
        }
        return true;
    }

    bool check_int(const std::string& key, const OptionSpec& spec, int64_t i) {
        if (i < spec.min || (spec.max > 0 && i > spec.max)) {
            error_at(key, std::to_string(i) + " is out of range " + std::to_string(spec.min) + ".." +
                              std::to_string(spec.max));
            return false;
        }
        return true;
    }

    bool check_choice(const std::string& key, const OptionSpec& spec, const std::string& s, size_t* index) {
        auto it = std::find(spec.choices.begin(), spec.choices.end(), s);
        if (it != spec.choices.end()) {
            *index = static_cast<size_t>(it - spec.choices.begin());
            return true;
        }
        std::string hint;
        size_t best = 3;
        for (auto& c : spec.choices) {
            size_t d = edit_distance(s, c);
            if (d < best) best = d, hint = c;
        }
        error_at(key, quote(s) + " is not one of " + join_quoted(spec.choices) +
                          (hint.empty() ? "" : " (did you mean " + quote(hint) + "?)"));
        return false;
    }

    bool check_readable(const std::string& key, const std::string& path) {
        if (access(path.c_str(), R_OK) != 0) {
            error_at(key, "cannot read " + quote(path) + ": " + std::strerror(errno));
            return false;
        }
        return true;
    }

    bool check_domain(const std::string& key, const std::string& s, std::string* out) {
        JidError why = JidError::ok;
        if (!is_valid_domain(s, &why)) {
            error_at(key, quote(s) + " is not a valid domain name (" + jid_error_name(why) + ")");
            return false;
        }
        *out = *normalize_domain(s);
        return true;
    }

    bool convert(const std::string& key, const OptionSpec& spec, const Node& n, Value* v) {
        switch (spec.kind) {
            case Kind::Bool: {
                auto b = n->as<bool>();
                if (!b) {
                    error_at(key, "expected true or false, got " + type_name(n));
                    return false;
                }
                v->b = b->get();
                return true;
            }
            case Kind::Int: {
                auto i = n->as<int64_t>();
                if (!i) {
                    error_at(key, "expected an integer, got " + type_name(n));
                    return false;
                }
                v->i = i->get();
                return check_int(key, spec, v->i);
            }
            case Kind::Limit: {
                if (auto s = n->as<std::string>(); s && s->get() == "infinity") {
                    v->infinite = true;
                    return true;
                }
                auto i = n->as<int64_t>();
                if (!i) {
                    error_at(key, "expected an integer or \"infinity\", got " + type_name(n) + " " + render(n));
                    return false;
                }
                v->i = i->get();
                return check_int(key, spec, v->i);
            }
            case Kind::String:
            case Kind::Secret:
            case Kind::ShaperRef:
            case Kind::AccessRef:
            case Kind::AclRef:
                return expect_string(key, n, &v->s);
            case Kind::Enum: {
                std::string s;
                if (!n->as<std::string>()) {
                    error_at(key, "expected a string, one of " + join_quoted(spec.choices) + ", got " + type_name(n) +
                                      " (write it in quotes)");
                    return false;
                }
                return expect_string(key, n, &s) && check_choice(key, spec, s, &v->choice);
            }
            case Kind::Path:
            case Kind::KeyFile:
                return expect_string(key, n, &v->s, "a file path") && check_readable(key, v->s);
            case Kind::CertFile: {
                if (!expect_string(key, n, &v->s, "a file path") || !check_readable(key, v->s)) return false;
                mbedtls_x509_crt crt;
                mbedtls_x509_crt_init(&crt);
                int rc = mbedtls_x509_crt_parse_file(&crt, v->s.c_str());
                mbedtls_x509_crt_free(&crt);
                if (rc != 0) {
                    error_at(key, quote(v->s) + " holds no certificate that parses (" +
                                      (rc > 0 ? std::to_string(rc) + " certificates failed" : mbedtls_reason(rc)) +
                                      "); it must be PEM with -----BEGIN CERTIFICATE-----");
                    return false;
                }
                return true;
            }
            case Kind::Domain: {
                std::string s;
                return expect_string(key, n, &s) && check_domain(key, s, &v->s);
            }
            case Kind::DomainList: {
                std::vector<std::string> raw;
                if (!expect_strings(key, n, &raw)) return false;
                std::set<std::string> seen;
                for (auto& s : raw) {
                    std::string d;
                    if (!check_domain(key, s, &d)) return false;
                    if (!seen.insert(d).second) {
                        error_at(key, quote(d) + " is listed twice");
                        return false;
                    }
                    v->list.push_back(d);
                }
                if (spec.min > 0 && v->list.empty()) {
                    error_at(key, "must list at least one domain");
                    return false;
                }
                return true;
            }
            case Kind::StringList: {
                if (!expect_strings(key, n, &v->list)) return false;
                size_t ignored = 0;
                if (!spec.choices.empty())
                    for (auto& s : v->list)
                        if (!check_choice(key, spec, s, &ignored)) return false;
                return true;
            }
            case Kind::IntList: {
                if (!n->is_array()) {
                    error_at(key, "expected an array of integers, got " + type_name(n));
                    return false;
                }
                for (auto& item : n->as_array()->get()) {
                    auto i = item->as<int64_t>();
                    if (!i) {
                        error_at(key, "expected an array of integers, found " + type_name(item));
                        return false;
                    }
                    std::string text = std::to_string(i->get());
                    size_t ignored = 0;
                    if (!check_choice(key, spec, text, &ignored)) return false;
                    if (std::find(v->ints.begin(), v->ints.end(), i->get()) != v->ints.end()) {
                        error_at(key, text + " is listed twice");
                        return false;
                    }
                    v->ints.push_back(i->get());
                }
                if (spec.min > 0 && v->ints.empty()) {
                    error_at(key, "must list at least one value");
                    return false;
                }
                return true;
            }
            case Kind::IpAddress:
                if (!expect_string(key, n, &v->s)) return false;
                if (!is_ip(v->s)) {
                    error_at(key, quote(v->s) + " is not an IPv4 or IPv6 address");
                    return false;
                }
                return true;
            case Kind::HostPort: {
                std::string host;
                int port = 0;
                if (!expect_string(key, n, &v->s)) return false;
                if (!split_host_port(v->s, &host, &port, false) || (!is_ip(host) && !is_valid_domain(host))) {
                    error_at(key, quote(v->s) + " is not \"host:port\" (e.g. \"127.0.0.1:5269\" or \"[::1]:5269\")");
                    return false;
                }
                return true;
            }
            case Kind::Nameservers: {
                if (!expect_strings(key, n, &v->list)) return false;
                if (spec.max > 0 && static_cast<int64_t>(v->list.size()) > spec.max) {
                    error_at(key, "lists " + std::to_string(v->list.size()) + " servers; at most " +
                                      std::to_string(spec.max) + " are used, list fewer");
                    return false;
                }
                for (auto& s : v->list) {
                    std::string host;
                    int port = 0;
                    if (!split_host_port(s, &host, &port, true) || !is_ip(host)) {
                        error_at(key, quote(s) + " is not \"ip\" or \"ip:port\" (e.g. \"127.0.0.53:5353\")");
                        return false;
                    }
                }
                return true;
            }
            case Kind::Networks: {
                if (!expect_strings(key, n, &v->list)) return false;
                std::set<std::string> seen;
                for (auto& s : v->list) {
                    std::string why;
                    auto net = IpNetwork::parse(s, &why);
                    if (!net) {
                        error_at(key, why + "; write a network as \"10.0.0.0/8\" or \"fd00::/8\", or one host as "
                                            "\"192.0.2.10\"");
                        return false;
                    }
                    if (!seen.insert(net->to_string()).second) {
                        error_at(key, quote(s) + " is listed twice (as " + net->to_string() + ")");
                        return false;
                    }
                }
                return true;
            }
            case Kind::Ignored:
                warn_at(key, std::string("ignored: ") + spec.help);
                return true;
        }
        return false;
    }

    // ---- 4. defaults and required keys -----------------------------------------------------------
    // Concrete prefixes ("listen.s2s.0", "shaper.fast") of the entries of one list or named table.
    std::vector<std::string> instances(const std::string& pattern) const {
        auto ps = key_segments(pattern);
        std::set<std::string> out;
        for (auto& [key, e] : entries_) {
            auto ks = key_segments(key);
            if (ks.size() <= ps.size()) continue;
            std::string prefix;
            for (size_t i = 0; i < ps.size(); ++i) prefix += (i ? "." : "") + std::string(ks[i]);
            if (key_matches(pattern, prefix)) out.insert(prefix);
        }
        return {out.begin(), out.end()};
    }

    void check_numbering(const EntrySpec& es, const std::vector<std::string>& found) {
        // Entries of a list are numbered 0..n-1 (a command line may add entry n, not leave a gap).
        std::string pattern = es.prefix;
        if (es.style == EntryStyle::NamedTable) return;
        std::map<std::string, std::set<size_t>> by_parent;
        for (auto& inst : found) {
            size_t dot = inst.rfind('.');
            std::string idx = inst.substr(dot + 1);
            if (idx.find_first_not_of("0123456789") != std::string::npos || idx.size() > 6) continue;
            by_parent[inst.substr(0, dot)].insert(std::stoul(idx));
        }
        for (auto& [parent, idx] : by_parent)
            if (*idx.rbegin() + 1 != idx.size())
                error("command line", 0, parent,
                      "entries must be numbered 0.." + std::to_string(idx.size() - 1) + " without gaps; found " +
                          std::to_string(*idx.rbegin()));
    }

    void fill(const OptionSpec& o, const std::string& key, int line_hint) {
        if (entries_.count(key)) return;
        if (o.flags & Generated) {
            std::string secret = random_hex(10);
            if (secret.empty()) {
                error(name_, 0, key, "cannot generate a random secret: the system entropy source failed; set it");
                return;
            }
            Value v;
            v.s = secret;
            Wild w;
            (void)key_matches(o.key, key, &w);
            checked_[key] = Checked{&o, w, v};
            defaults_.insert(key);
            return;
        }
        if (o.flags & Required) {
            std::string table = key.substr(0, key.rfind('.'));
            std::string last = key.substr(key.rfind('.') + 1);
            error(name_, line_hint, key, "required key is missing (add " + last + " = ... under [" + table + "])");
            return;
        }
        if (!o.def) {
            unset_.insert(key);
            return;
        }
        Node n = parse_value(o.def);
        entries_[key] = Entry{n, Source::Default, ""};
        Wild w;
        (void)key_matches(o.key, key, &w);
        Value v;
        if (convert(key, o, n, &v)) checked_[key] = Checked{&o, w, std::move(v)};
        defaults_.insert(key);
    }

    void fill_defaults() {
        std::map<std::string, std::vector<std::string>> inst;
        for (auto& es : entries()) {
            inst[es.prefix] = instances(es.prefix);
            check_numbering(es, inst[es.prefix]);
        }
        for (auto& o : options()) {
            if (o.key.find('*') == std::string::npos) {
                fill(o, o.key, line_of(lines_, o.key));
                continue;
            }
            for (auto& es : entries()) {
                std::string prefix = std::string(es.prefix) + ".";
                if (o.key.compare(0, prefix.size(), prefix) != 0) continue;
                std::string rest = o.key.substr(prefix.size());
                if (rest.find('*') != std::string::npos) continue;
                for (auto& i : inst[es.prefix]) fill(o, i + "." + rest, line_of(lines_, i));
            }
        }
    }

    // ---- 5. cross-key checks ---------------------------------------------------------------------
    const Value* get(const std::string& key) const {
        auto it = checked_.find(key);
        return it == checked_.end() ? nullptr : &it->second.value;
    }

    void cross_checks() {
        std::set<std::string> shapers, rules, acls;
        for (auto& i : instances("shaper.*")) shapers.insert(i.substr(7));
        for (auto& i : instances("access.*")) rules.insert(i.substr(7));
        for (auto& i : instances("acl.*")) acls.insert(i.substr(4));
        auto names = [](const std::set<std::string>& s, const char* builtin) {
            std::vector<std::string> v{builtin};
            v.insert(v.end(), s.begin(), s.end());
            return join_quoted(v);
        };
        for (auto& [key, c] : checked_) {
            const std::string& s = c.value.s;
            bool listener = key.compare(0, 7, "listen.") == 0;
            if (c.spec->kind == Kind::ShaperRef && s != "none" && !shapers.count(s)) {
                if (listener && rules.count(s))
                    check_shaper_rule(s, shapers, names(shapers, "none"));
                else if (listener)
                    error_at(key, "no shaper or access rule " + quote(s) + " is defined (shapers: " +
                                      names(shapers, "none") + "; access rules: " + join_quoted({rules.begin(), rules.end()}) +
                                      "); define it as [shaper." + s + "] max_rate = ..., or as an [access] rule whose "
                                      "values name shapers (" + s + " = [{acl = \"all\", value = \"fast\"}])");
                else
                    error_at(key, "no shaper " + quote(s) + " is defined (known: " + names(shapers, "none") +
                                      "; define it as [shaper." + s + "] max_rate = ...)");
            }
            if (c.spec->kind == Kind::AccessRef && s != "all" && !rules.count(s))
                error_at(key, "no access rule " + quote(s) + " is defined (known: " + names(rules, "all") +
                                  "; define it under [access])");
            else if (c.spec->kind == Kind::AccessRef && s != "all")
                check_admission_rule(s, key);
            if (c.spec->kind == Kind::AclRef && s != "all" && s != "none" && !acls.count(s))
                error_at(key, "no acl " + quote(s) + " is defined (known: " + names(acls, "all\", \"none") +
                                  "; define it under [acl])");
            if (c.spec->kind == Kind::KeyFile) check_key(key, s, key.substr(0, key.rfind('.')) + ".password");
        }
        for (auto& i : instances("acl.*.*")) {
            bool m = get(i + ".match") != nullptr, sv = get(i + ".server") != nullptr;
            if (m == sv) error_at(i, "an acl pattern needs exactly one of match or server");
        }
        check_component_mode();
        if (auto cert = get("s2s.certfile")) check_key("s2s.certfile", cert->s, "");
        const std::vector<std::string> hosts = config_hosts();
        for (auto& i : instances("s2s.domain_certfile.*")) {
            if (auto cert = get(i + ".certfile")) check_key(i + ".certfile", cert->s, "");
            if (auto d = get(i + ".domain"); d && !std::count(hosts.begin(), hosts.end(), d->s))
                error_at(i + ".domain", "\"" + d->s + "\" is not one of general.hosts");
        }
        check_duplicates("s2s.domain_certfile.*", "domain");
        check_tls_certificates();
        check_local_tls();
        check_duplicates("s2s.host_policy.*", "host");
        check_duplicates("s2s.outgoing.address.*", "host");
        check_overrides_not_local(hosts);
        check_listener_ports();
        check_overrides_not_ours();
        check_dns_not_ours();
        check_proxy_protocol();
        check_dane_resolver();
        check_rate_limits();
    }

    // DANE trusts the AD bit of the nameservers' answers: say so when they may not deserve it.
    void check_dane_resolver() {
        const Value* dane = get("s2s.outgoing.dane");
        if (!dane || !dane->b) return;
        const Value* servers = get("s2s.outgoing.dns.nameservers");
        if (!servers || servers->list.empty()) {
            warn_at("s2s.outgoing.dane", "DANE trusts the AD bit of the system's nameservers (/etc/resolv.conf): "
                                         "they must be a validating resolver on this host; set "
                                         "s2s.outgoing.dns.nameservers to one on loopback (unbound, say) to be sure");
            return;
        }
        for (const std::string& ns : servers->list)
            if (ns.rfind("127.", 0) != 0 && ns.rfind("[::1]", 0) != 0 && ns != "::1")
                warn_at("s2s.outgoing.dns.nameservers",
                        "DANE (s2s.outgoing.dane) trusts the AD bit of " + quote(ns) + ", which is not on loopback: "
                        "anyone on the path can set it; run a validating resolver on this host and name it here");
    }

    // An [antispam] rate limit is its rate: a burst alone would limit nothing.
    void check_rate_limits() {
        for (const char* limit : {"antispam.domain_rate", "antispam.subscription_rate"}) {
            std::string l(limit);
            if (get(l + ".burst") && !get(l + ".rate") && !entries_.count(l + ".rate"))
                error_at(l + ".burst", "has no effect without " + l + ".rate: write " + l.substr(9) +
                                           " = {rate = N, burst = " + std::to_string(get(l + ".burst")->i) +
                                           "} (stanzas per second)");
        }
    }

    // A listener shaper may name an access rule (MongooseIM's c2s listeners): each value of that
    // rule must then name a shaper, or be "none".
    void check_shaper_rule(const std::string& rule, const std::set<std::string>& shapers, const std::string& known) {
        for (auto& clause : instances("access." + rule + ".*")) {
            const Value* v = get(clause + ".value");
            if (v && v->s != "none" && !shapers.count(v->s))
                error_at(clause + ".value", quote(v->s) + " is not a shaper, and access rule " + quote(rule) +
                                                " is a listener's shaper (known shapers: " + known +
                                                "; define [shaper." + v->s + "] max_rate = ...)");
        }
    }

    // A rule a listener's `access` names admits or refuses: its values must be allow or deny (any
    // other value would refuse every domain it matches, without a word).
    void check_admission_rule(const std::string& rule, const std::string& user) {
        for (auto& clause : instances("access." + rule + ".*")) {
            const Value* v = get(clause + ".value");
            if (v && v->s != "allow" && v->s != "deny")
                error_at(clause + ".value", quote(v->s) + " is neither \"allow\" nor \"deny\", and access rule " +
                                                quote(rule) + " is " + user + " (which admits or refuses domains)");
        }
    }

    // MongooseIM's s2s.outgoing.address gives addresses of non-local domains; our own domains are
    // served by the local server behind local.server, and a link to one would never be opened.
    void check_overrides_not_local(const std::vector<std::string>& hosts) {
        for (auto& o : instances("s2s.outgoing.address.*")) {
            const Value* h = get(o + ".host");
            if (h && std::count(hosts.begin(), hosts.end(), h->s))
                error_at(o + ".host", quote(h->s) + " is one of general.hosts: an address override is for a remote "
                                      "domain (the local server, at local.server, serves " + h->s +
                                      "); remove this entry");
        }
    }

    // An address override that leads to one of our own listeners would loop: a link there comes
    // back into s2s-proxy. (Addresses of the host's interfaces behind a wildcard listener are known
    // only when running: S2SOut refuses those when it connects.)
    void check_overrides_not_ours() {
        std::vector<std::pair<std::string, sockaddr_storage>> ours;
        auto add = [&ours](const std::string& name, const std::string& ip, int port) {
            sockaddr_storage a{};
            if (ip_port(ip, port, &a)) ours.emplace_back(name, a);
        };
        for (const char* type : {"listen.s2s.*", "listen.local.*"})
            for (auto& l : instances(type)) {
                const Value* port = get(l + ".port");
                const Value* ip = get(l + ".ip_address");
                if (port && ip) add(l, ip->s, static_cast<int>(port->i));
            }
        const Value* admin_on = get("admin.enabled");
        for (const char* key : {"admin.listen", "local.dns_responder"}) {
            const Value* v = get(key);
            if (!v || (std::string(key) == "admin.listen" && admin_on && !admin_on->b)) continue;
            sockaddr_storage a{};
            if (parse_socket_address(v->s, &a)) ours.emplace_back(key, a);
        }
        const Value* default_port = get("s2s.outgoing.port");
        for (auto& o : instances("s2s.outgoing.address.*")) {
            const Value* ip = get(o + ".ip_address");
            const Value* port = get(o + ".port");
            if (!ip) continue;
            int p = port ? static_cast<int>(port->i) : default_port ? static_cast<int>(default_port->i) : 5269;
            sockaddr_storage dest{};
            if (!ip_port(ip->s, p, &dest)) continue;
            for (auto& [name, bound] : ours) {
                ListenerSet one;
                one.add(reinterpret_cast<const sockaddr*>(&bound));
                if (!one.reaches(reinterpret_cast<const sockaddr*>(&dest))) continue;
                error_at(o + ".ip_address", quote(ip->s) + " port " + std::to_string(p) + " is where s2s-proxy itself "
                                            "listens (" + name + "): a link there would come back into s2s-proxy");
                break;
            }
        }
    }

    // local.dns_upstream is where local.dns_responder forwards: nothing without it. No resolver that
    // s2s-proxy or its responder asks may be that responder: s2s-proxy's own lookups would get its
    // own listener back for every remote domain, and forwards would come round again.
    void check_dns_not_ours() {
        const Value* responder = get("local.dns_responder");
        const Value* upstream = get("local.dns_upstream");
        if (upstream && !upstream->list.empty() && !responder)
            error_at("local.dns_upstream", "is where local.dns_responder forwards the queries it does not answer, "
                                           "and local.dns_responder is not set: set it (e.g. \"127.0.0.1:53\"), or "
                                           "give s2s-proxy's own resolvers as s2s.outgoing.dns.nameservers");
        sockaddr_storage bound{};
        if (!responder || !parse_socket_address(responder->s, &bound)) return;
        ListenerSet at;
        at.add(reinterpret_cast<const sockaddr*>(&bound));
        const int bound_port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in&>(bound).sin_port
                                                                : reinterpret_cast<sockaddr_in6&>(bound).sin6_port);
        for (const char* key : {"local.dns_upstream", "s2s.outgoing.dns.nameservers"}) {
            const Value* v = get(key);
            for (size_t i = 0; v && i < v->list.size(); ++i) {
                std::string host;
                int port = 53;
                sockaddr_storage dest{};
                if (!split_host_port(v->list[i], &host, &port, true) || !ip_port(host, port, &dest)) continue;
                const bool unspecified = host == "0.0.0.0" || host == "::";  // this host, whatever its addresses
                if (!at.reaches(reinterpret_cast<const sockaddr*>(&dest)) && !(unspecified && port == bound_port))
                    continue;
                error_at(key, quote(v->list[i]) + " is local.dns_responder itself (" + responder->s + "): " +
                                  (std::string(key) == "local.dns_upstream"
                                       ? "every forwarded query would come back to it; list the resolvers it stands "
                                         "in for (e.g. the cluster DNS service, 10.96.0.10)"
                                       : "s2s-proxy would get its own listener back for every remote domain; list "
                                         "real resolvers (or leave it empty to use local.dns_upstream)"));
                break;
            }
        }
    }

    static bool ip_port(const std::string& ip, int port, sockaddr_storage* out) {
        *out = sockaddr_storage{};
        auto* v4 = reinterpret_cast<sockaddr_in*>(out);
        auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
        if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(static_cast<uint16_t>(port));
            return true;
        }
        if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(static_cast<uint16_t>(port));
            return true;
        }
        return false;
    }

    // A PROXY header is believed only from listed senders: with none listed, every connection
    // would be refused or served as direct, which is never what was meant.
    void check_proxy_protocol() {
        for (auto& l : instances("listen.s2s.*")) {
            const Value* on = get(l + ".proxy_protocol");
            const Value* trusted = get(l + ".proxy_trusted");
            if (on && on->b && (!trusted || trusted->list.empty()))
                error_at(l + ".proxy_protocol", "true needs " + l + ".proxy_trusted: list the networks of the load "
                                                "balancers that send the PROXY header (e.g. proxy_trusted = "
                                                "[\"10.0.0.0/8\"])");
        }
    }

    // Component mode (XEP-0114) connects as local.component_name with local.password: both are
    // needed, and the name is a domain of its own, not one the server hosts. A component port
    // cannot answer db:verify, so checking the local server's keys needs its s2s port too.
    void check_component_mode() {
        const Value* mode = get("local.mode");
        if (!mode || mode->choice != 1) return;
        const Value* name = get("local.component_name");
        if (!name && !entries_.count("local.component_name"))  // (a bad value has its own error)
            error_at("local.mode", "\"component\" needs local.component_name: the domain s2s-proxy connects as, as "
                                   "named in the local server's component listener (e.g. \"s2s-proxy.example.com\")");
        if (!get("local.password") && !entries_.count("local.password"))
            error_at("local.mode", "\"component\" needs local.password: the secret the local server has for "
                                   "local.component_name");
        const Value* verify = get("local.verify_dialback");
        if ((!verify || verify->b) && !get("local.verify_server") && !entries_.count("local.verify_server"))
            error_at("local.mode", "\"component\" needs local.verify_server: the local server's loopback s2s "
                                   "listener (e.g. \"127.0.0.1:5269\"), where s2s-proxy checks the dialback keys it "
                                   "presents on [[listen.local]] (a component port cannot answer them); or set "
                                   "local.verify_dialback = false to trust any process that can connect there");
        const std::vector<std::string> hosts = config_hosts();
        if (name && std::count(hosts.begin(), hosts.end(), name->s))
            error_at("local.component_name", quote(name->s) + " is one of general.hosts; the component needs a "
                                             "domain of its own (e.g. \"s2s-proxy." + name->s + "\")");
    }

    std::vector<std::string> config_hosts() const {
        const Value* h = get("general.hosts");
        return h ? h->list : std::vector<std::string>{};
    }

    void check_key(const std::string& key, const std::string& path, const std::string& password_key) {
        const Value* pw = password_key.empty() ? nullptr : get(password_key);
        mbedtls_pk_context pk;
        mbedtls_pk_init(&pk);
#if MBEDTLS_VERSION_MAJOR >= 3
        int rc = mbedtls_pk_parse_keyfile(&pk, path.c_str(), pw ? pw->s.c_str() : nullptr, nullptr, nullptr);
#else
        int rc = mbedtls_pk_parse_keyfile(&pk, path.c_str(), pw ? pw->s.c_str() : nullptr);
#endif
        mbedtls_pk_free(&pk);
        if (rc == 0) return;
        if (std::string why = s2s::tls::explain_undecryptable_key(path, rc); !why.empty()) {
            error_at(key, quote(path) + ": " + why);
            return;
        }
        std::string why = mbedtls_reason(rc);
        if (password_key.empty())
            error_at(key, quote(path) + " holds no private key that parses (" + why +
                              "); s2s.certfile must hold the certificate and its unencrypted key");
        else
            error_at(key, quote(path) + " holds no private key that parses (" + why + ")" +
                              (pw ? "; check " + password_key : "; if it is encrypted, set " + password_key));
    }

    // Whether some key under `prefix` (e.g. "listen.s2s.0.tls") came from the file or the command
    // line rather than from a default, whatever its value (an ignored key does not count); the
    // first such key, or "".
    std::string given_under(const std::string& prefix) const {
        for (auto it = entries_.lower_bound(prefix + "."); it != entries_.end(); ++it) {
            if (it->first.compare(0, prefix.size() + 1, prefix + ".") != 0) break;
            if (it->second.source == Source::Default) continue;
            const OptionSpec* o = find_option(it->first);
            if (o && o->kind != Kind::Ignored) return it->first;
        }
        return "";
    }

    void check_tls_certificates() {
        const Value* use = get("s2s.use_starttls");
        bool global_cert = get("s2s.certfile") != nullptr || !instances("s2s.domain_certfile.*").empty();
        auto listeners = instances("listen.s2s.*");
        bool any_cert = global_cert;
        for (auto& l : listeners) {
            const Value* mode = get(l + ".tls.mode");
            std::string given = given_under(l + ".tls");
            // A tls subsection without a mode means STARTTLS, whatever s2s.use_starttls says.
            bool tls = mode || !given.empty() || (use && use->choice != 0);
            if (get(l + ".tls.certfile")) any_cert = true;
            if (tls && !global_cert && !get(l + ".tls.certfile"))
                error_at(mode ? l + ".tls.mode" : !given.empty() ? given : "s2s.use_starttls",
                         "TLS on " + l + " needs a certificate: set " + l + ".tls.certfile or s2s.certfile" +
                             (mode || given.empty() ? "" : " (a tls subsection without tls.mode means \"starttls\")"));
            check_strict_listener(l, !given.empty());
        }
        if (!listeners.empty() && !any_cert)
            warn_at(listeners.front(), "no [[listen.s2s]] can offer TLS: there is no certificate (set s2s.certfile, or "
                                  "tls.certfile on a listener); remote servers that require encryption cannot connect "
                                  "to us, and only outgoing links are encrypted (where the remote offers STARTTLS)");
        for (auto& l : instances("listen.local.*")) {
            std::string given = given_under(l + ".tls");
            if (get(l + ".tls.mode") && !get(l + ".tls.certfile") && !global_cert)
                error_at(l + ".tls.mode", "TLS on " + l + " needs a certificate: set " + l + ".tls.certfile");
            else if (!get(l + ".tls.mode") && !given.empty() && !get(l + ".tls.certfile") && !global_cert)
                error_at(given, "a tls subsection without mode means STARTTLS on " + l + ", which needs a "
                                "certificate: set " + l + ".tls.certfile (or remove the tls subsection for a plain "
                                "listener)");
            check_strict_listener(l, !given.empty());
        }
        if (use && use->choice != 0 && !global_cert && listeners.empty() && !get("s2s.outgoing.tls.certfile"))
            error_at("s2s.use_starttls", "use_starttls = \"" + std::string(options_choice("s2s.use_starttls", use->choice)) +
                                             "\" needs s2s.certfile (a PEM file with the certificate and its key)");
    }

    // verify_mode = "peer" with disconnect_on_failure = true in a listener's own tls subsection
    // refuses every TLS handshake without a valid client certificate: say what that costs.
    void check_strict_listener(const std::string& l, bool subsection) {
        if (!subsection) return;
        const Value* verify = get(l + ".tls.verify_mode");
        const Value* disconnect = get(l + ".tls.disconnect_on_failure");
        if (verify && verify->choice == 0 && disconnect && disconnect->b)
            warn_at(l + ".tls.verify_mode",
                    "with disconnect_on_failure = true (the default), " + l + " refuses every TLS handshake whose client "
                    "certificate is missing or does not chain to tls.cacertfile (the system store when unset): peers "
                    "that authenticate with dialback only cannot connect; set disconnect_on_failure = false (or "
                    "verify_mode = \"none\") to let them in and judge certificates per domain");
    }

    // local.tls: its keys act only with a mode, and a component stream (XEP-0114) has no STARTTLS.
    void check_local_tls() {
        const Value* mode = get("local.tls.mode");
        if (!mode) {
            if (entries_.count("local.tls.mode")) return;  // (a bad value has its own error)
            std::string given = given_under("local.tls");
            if (!given.empty())
                error_at(given, "has no effect without local.tls.mode: set local.tls.mode = \"starttls\" (or "
                                  "\"tls\", \"starttls_required\") to encrypt the streams to the local server, or "
                                  "remove it");
            return;
        }
        const Value* local_mode = get("local.mode");
        if (local_mode && local_mode->choice == 1 && mode->choice != 0)
            error_at("local.tls.mode", quote(options_choice("local.tls.mode", mode->choice)) +
                                           " cannot be used in component mode: XEP-0114 has no STARTTLS; write "
                                           "\"tls\" (direct TLS) and give the local server's component listener TLS");
    }

    static const std::string& options_choice(const std::string& key, size_t i) {
        return find_option(key)->choices[i];
    }

    void check_duplicates(const std::string& list, const std::string& field) {
        std::map<std::string, std::string> seen;
        for (auto& i : instances(list)) {
            const Value* v = get(i + "." + field);
            if (!v) continue;
            auto [it, fresh] = seen.emplace(v->s, i);
            if (!fresh) error_at(i + "." + field, quote(v->s) + " is already listed at " + it->second);
        }
    }

    void check_listener_ports() {
        std::map<std::string, std::string> seen;
        for (const char* type : {"listen.s2s.*", "listen.local.*"})
            for (auto& l : instances(type)) {
                const Value* port = get(l + ".port");
                const Value* ip = get(l + ".ip_address");
                if (!port || !ip) continue;
                std::string addr = ip->s + " port " + std::to_string(port->i);
                auto [it, fresh] = seen.emplace(addr, l);
                if (!fresh) error_at(l + ".port", addr + " is already used by " + it->second);
            }
    }

    // ---- 6. the Config -------------------------------------------------------------------------
    void build() {
        for (auto& [key, c] : checked_)
            if (c.spec->apply) c.spec->apply(r_.config, c.wild, c.value);
        r_.config.use_starttls_set = entries_.count("s2s.use_starttls") &&
                                     entries_.at("s2s.use_starttls").source != Source::Default;
        r_.config.outgoing.tls.present = !given_under("s2s.outgoing.tls").empty();
        for (size_t i = 0; i < r_.config.listen_s2s.size(); ++i)
            r_.config.listen_s2s[i].tls.present = !given_under("listen.s2s." + std::to_string(i) + ".tls").empty();
        // A [[listen.local]] tls subsection without mode means STARTTLS too (local_tls.h).
        for (size_t i = 0; i < r_.config.listen_local.size(); ++i)
            r_.config.listen_local[i].tls.present = !given_under("listen.local." + std::to_string(i) + ".tls").empty();
        for (auto& [key, c] : checked_) {
            bool secret = c.spec->kind == Kind::Secret;
            auto it = entries_.find(key);
            std::string text = it != entries_.end() ? render(it->second.node) : quote(c.value.s);
            bool generated = (c.spec->flags & Generated) && defaults_.count(key);
            std::string note;
            if (c.value.infinite && key.size() >= 15 && key.compare(key.size() - 15, 15, "max_stanza_size") == 0)
                note = "means " + std::to_string(kMaxStanzaSizeCap) + " bytes (16 MiB), the hard limit";
            r_.settings.push_back({key, text, secret, generated, defaults_.count(key) > 0, note, c.value});
        }
        for (auto& key : unset_) r_.settings.push_back({key, "", false, false, false, "", Value{}});
        r_.config.source_name = name_;
        for (auto& [key, e] : entries_) {
            if (e.source == Source::Cli) {
                r_.config.key_origins[key] = "command line: --" + key;
                continue;
            }
            const std::string& shown = e.written.empty() ? key : e.written;
            int line = line_of(lines_, shown);
            r_.config.key_origins[key] = name_ + (line > 0 ? ":" + std::to_string(line) : "") + ": " + shown;
        }
        std::sort(r_.settings.begin(), r_.settings.end(), [](const Setting& a, const Setting& b) { return a.key < b.key; });
    }

    std::string name_;
    const std::string& text_;
    const std::vector<Override>& cli_;
    LineIndex lines_;
    std::map<std::string, Entry> entries_;
    std::set<std::string> legacy_seen_, canonical_seen_;
    std::map<std::string, Checked> checked_;
    std::set<std::string> defaults_, unset_;
    LoadResult r_;
};

}  // namespace

LoadResult load(const std::string& name, const std::string& text, const std::vector<Override>& cli) {
    return Loader(name, text, cli).run();
}

std::string locate(const Config& config, const std::string& key) {
    auto it = config.key_origins.find(key);
    if (it != config.key_origins.end()) return it->second;
    return (config.source_name.empty() ? std::string("config") : config.source_name) + ": " + key;
}

LoadResult load_file(const std::string& path, const std::vector<Override>& cli) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        LoadResult r;
        r.errors.push_back({path, 0, "", std::string("cannot read the config file: ") + std::strerror(errno)});
        return r;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return load(path, ss.str(), cli);
}

}  // namespace s2s::config
