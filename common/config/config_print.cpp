#include "common/config/config_print.h"

#include <algorithm>
#include <map>

#include "common/config/config_table.h"

namespace s2s::config {
namespace {

const char* const kMask = "\"********\"";

// Sort key that orders "listen.s2s.10" after "listen.s2s.2".
std::string natural(const std::string& s) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
        if (isdigit(static_cast<unsigned char>(s[i]))) {
            size_t j = i;
            while (j < s.size() && isdigit(static_cast<unsigned char>(s[j]))) ++j;
            out += std::string(12 - std::min<size_t>(12, j - i), '0') + s.substr(i, j - i);
            i = j;
        } else {
            out += s[i++];
        }
    }
    return out;
}

// Keys whose mere presence changes what the config means: a tls subsection (listen.*.N.tls.*,
// s2s.outgoing.tls.*) turns TLS on, a local.tls.* key needs local.tls.mode, and s2s.use_starttls
// replaces the outgoing STARTTLS default.
// Their defaults are printed commented out, so that the printed config means the same when loaded.
bool presence_matters(const std::string& key) {
    return key == "s2s.use_starttls" || key.compare(0, 17, "s2s.outgoing.tls.") == 0 ||
           key.compare(0, 10, "local.tls.") == 0 || key_matches("listen.s2s.*.tls.*", key) ||
           key_matches("listen.local.*.tls.*", key);
}

std::string line_for(const std::string& rel, const Setting& s) {
    if (s.toml.empty()) return "# " + rel + " = (not set)\n";
    if (s.defaulted && presence_matters(s.key)) return "# " + rel + " = " + s.toml + "  (default; unset)\n";
    return rel + " = " + (s.secret ? kMask : s.toml) + (s.note.empty() ? "" : "  # " + s.note) + "\n";
}

struct Printer {
    // section header -> body lines, in print order
    std::map<std::string, std::string> sections;            // "general", "s2s", "local", "access", "acl"
    std::map<std::string, std::string> blocks;              // natural("[[listen.s2s]]#0") -> body
    std::map<std::string, std::string> block_headers;
    // list key ("s2s.host_policy", "access.c2s") -> entry number -> inline fields
    std::map<std::string, std::map<std::string, std::vector<std::string>>> inline_lists;

    void add(const Setting& s) {
        for (auto& es : entries()) {
            auto ps = key_segments(es.prefix);
            auto ks = key_segments(s.key);
            if (ks.size() <= ps.size()) continue;
            std::string inst;
            for (size_t i = 0; i < ps.size(); ++i) inst += (i ? "." : "") + std::string(ks[i]);
            if (!key_matches(es.prefix, inst)) continue;
            std::string rel = s.key.substr(inst.size() + 1);
            std::string parent = inst.substr(0, inst.rfind('.'));
            std::string last = inst.substr(inst.rfind('.') + 1);
            switch (es.style) {
                case EntryStyle::TableArray:
                case EntryStyle::NamedTable: {
                    std::string id = natural(inst);
                    block_headers[id] = es.style == EntryStyle::TableArray ? "[[" + parent + "]]" : "[" + inst + "]";
                    blocks[id] += line_for(rel, s);
                    return;
                }
                case EntryStyle::InlineArray:
                case EntryStyle::NamedInlineArray:
                    if (!s.toml.empty())
                        inline_lists[parent][natural(last)].push_back(rel + " = " + (s.secret ? kMask : s.toml));
                    return;
            }
        }
        size_t dot = s.key.find('.');
        sections[s.key.substr(0, dot)] += line_for(s.key.substr(dot + 1), s);
    }

    std::string str() {
        for (auto& [list, items] : inline_lists) {
            size_t dot = list.find('.');
            std::string body = list.substr(dot + 1) + " = [\n";
            for (auto& [n, fields] : items) {
                body += "  {";
                for (size_t i = 0; i < fields.size(); ++i) body += (i ? ", " : "") + fields[i];
                body += "},\n";
            }
            sections[list.substr(0, dot)] += body + "]\n";
        }
        std::string out =
            "# s2s-proxy effective configuration: canonical layout, defaults filled in, secrets masked.\n";
        for (const char* name : {"general", "s2s", "local", "antispam", "admin", "access", "acl"}) {
            auto it = sections.find(name);
            if (it == sections.end()) continue;
            out += "\n[" + it->first + "]\n" + it->second;
        }
        for (auto& [id, body] : blocks) out += "\n" + block_headers[id] + "\n" + body;
        return out;
    }
};

}  // namespace

std::string print_config(const std::vector<Setting>& settings) {
    Printer p;
    for (auto& s : settings) p.add(s);
    return p.str();
}

std::string options_help() {
    std::string out;
    for (auto& o : options()) {
        std::string line = "  " + o.key;
        if (o.def) line += " = " + std::string(o.def);
        if (line.size() < 48) line.resize(48, ' ');
        else line += "\n" + std::string(48, ' ');
        std::string flags;
        if (o.flags & Required) flags += "required; ";
        if (!(o.flags & Reloadable)) flags += "restart to change; ";
        out += line + (flags.empty() ? "" : "(" + flags.substr(0, flags.size() - 2) + ") ") + o.help + "\n";
    }
    return out;
}

}  // namespace s2s::config
