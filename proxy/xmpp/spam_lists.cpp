#include "proxy/xmpp/spam_lists.h"

#include <utility>

#include "common/tls/digest.h"
#include "common/xmpp/jid.h"

namespace s2s {
namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The 32 digest bytes of a 64-hex-digit entry, or "" when it is not one.
std::string digest_of(std::string_view entry) {
    if (entry.size() != 64) return {};
    std::string out(32, '\0');
    for (std::size_t i = 0; i < 32; ++i) {
        int hi = hex_value(entry[2 * i]), lo = hex_value(entry[2 * i + 1]);
        if (hi < 0 || lo < 0) return {};
        out[i] = static_cast<char>(hi << 4 | lo);
    }
    return out;
}

std::string_view trim(std::string_view s) {
    std::size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
    return b == std::string_view::npos ? std::string_view() : s.substr(b, e - b + 1);
}

bool hashed_in(const SpamList& list, std::string_view text) {
    if (list.hashed.empty()) return false;
    Sha256 d = sha256(text);
    return list.hashed.count(std::string(reinterpret_cast<const char*>(d.data()), d.size())) != 0;
}

bool listed(const SpamList& list, const std::string& text) { return list.plain.count(text) || hashed_in(list, text); }

// Whether `domain` or a domain above it (a suffix starting after a dot) is in `list`.
bool covers(const SpamList& list, const std::string& domain) {
    if (list.size() == 0) return false;
    for (std::size_t at = 0;;) {
        std::string suffix = domain.substr(at);
        if (listed(list, suffix)) return true;
        at = domain.find('.', at);
        if (at == std::string::npos) return false;
        ++at;
    }
}

}  // namespace

bool parse_spam_list(std::string_view text, SpamListKind kind, SpamList* out, std::string* error) {
    std::size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        std::size_t hash = line.find('#');
        std::string_view entry = trim(line.substr(0, hash));
        if (entry.empty()) continue;
        std::string digest = digest_of(entry);
        if (!digest.empty()) {
            out->hashed.insert(std::move(digest));
            continue;
        }
        JidError why = JidError::ok;
        if (kind == SpamListKind::Domains) {
            auto d = normalize_domain(entry);
            if (!d) {
                (void)is_valid_domain(entry, &why);
                *error = "line " + std::to_string(line_no) + ": '" + std::string(entry) + "' is not a domain (" +
                         jid_error_name(why) + ")";
                return false;
            }
            out->plain.insert(std::move(*d));
            continue;
        }
        auto j = Jid::parse(entry, &why);
        if (!j || j->has_resource() || !j->has_local()) {
            *error = "line " + std::to_string(line_no) + ": '" + std::string(entry) + "' is not a bare JID (" +
                     (j ? "local@domain, no resource" : jid_error_name(why)) + ")";
            return false;
        }
        out->plain.insert(std::string(j->bare_string()));
    }
    return true;
}

SpamLists::SpamLists(std::vector<SpamList> domains, SpamList jids, SpamList whitelist)
    : domains_(std::move(domains)), jids_(std::move(jids)), whitelist_(std::move(whitelist)) {}

bool SpamLists::empty() const noexcept {
    for (const SpamList& l : domains_)
        if (l.size()) return false;
    return jids_.size() == 0;
}

const SpamList* SpamLists::blocking_domain(std::string_view domain) const {
    if (empty()) return nullptr;
    auto canonical = normalize_domain(domain);
    return canonical ? blocking_canonical(*canonical) : nullptr;
}

const SpamList* SpamLists::blocking_canonical(const std::string& canonical) const {
    if (empty()) return nullptr;
    auto it = verdicts_.find(canonical);
    if (it != verdicts_.end()) return it->second;
    const SpamList* verdict = lookup_domain(canonical);
    if (verdicts_.size() >= kVerdictCache) verdicts_.clear();
    verdicts_.emplace(canonical, verdict);
    return verdict;
}

const SpamList* SpamLists::lookup_domain(const std::string& canonical) const {
    if (covers(whitelist_, canonical)) return nullptr;
    for (const SpamList& l : domains_)
        if (covers(l, canonical)) return &l;
    return nullptr;
}

const SpamList* SpamLists::blocking_jid(std::string_view bare) const {
    if (jids_.size() == 0) return nullptr;
    return listed(jids_, std::string(bare)) ? &jids_ : nullptr;
}

}  // namespace s2s
