// Spam lists: the remote domains and JIDs that may not federate with us, and the domains exempt
// from them ([antispam] spam_domains_file, spam_jids_file, whitelist_domains_file: the names and
// the file format of ejabberd's mod_antispam). PolicyRules consults them wherever a domain's
// policy is checked (authentication both ways, every stanza, every outgoing stanza); admission
// consults the JID list for every stanza from a remote server.
//
// A list file has one entry per line; '#' starts a comment, blank lines are skipped. An entry of
// 64 hex digits is the SHA-256 of a domain or a bare JID in canonical form (the form some public
// lists publish and real-time block lists use as item ids); anything else is a domain (or, in the
// JID list, a bare JID), put in canonical form like every domain (IDNA, case, trailing dot).
//
// A listed domain blocks itself and every subdomain; a domain under a whitelisted one is never
// blocked by a domain entry. A lookup costs one hash lookup per label of the domain (plus one
// SHA-256 per label when the lists hold hashed entries); the verdicts of recent domains are
// remembered (at most kVerdictCache, forgotten all at once when full), so a stanza costs O(1).
// One thread (the loop's): the verdict cache is mutable state behind const lookups.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace s2s {

enum class SpamListKind { Domains, Jids };

// One list: the entries of one file (or, later, one block list service).
struct SpamList {
    std::string source;                      // where it came from (a path), for refusal texts and logs
    std::string key;                         // the list's kind by its config key: "spam_domains_file"...
    std::unordered_set<std::string> plain;   // canonical domains, or bare JIDs
    std::unordered_set<std::string> hashed;  // SHA-256 digests, 32 raw bytes each

    [[nodiscard]] std::size_t size() const noexcept { return plain.size() + hashed.size(); }
};

// Parses the text of a list file into *out (whose source is left as it is). False and *error
// ("line N: ...: why") on the first bad entry; *out is then incomplete and must not be used.
[[nodiscard]] bool parse_spam_list(std::string_view text, SpamListKind kind, SpamList* out, std::string* error);

class SpamLists {
public:
    static constexpr std::size_t kVerdictCache = 4096;

    SpamLists() = default;
    SpamLists(std::vector<SpamList> domains, SpamList jids, SpamList whitelist);

    // The list that blocks `domain` (any spelling: it is put in canonical form), or nullptr when
    // none does (or the domain is whitelisted, or not a valid domain).
    [[nodiscard]] const SpamList* blocking_domain(std::string_view domain) const;
    // The same for a domain already in canonical form (the policy has it so): no second IDNA pass
    // on the per-stanza path.
    [[nodiscard]] const SpamList* blocking_canonical(const std::string& canonical) const;
    // The list that names the bare JID `bare` ("local@domain", canonical as the admission code
    // has it), or nullptr.
    [[nodiscard]] const SpamList* blocking_jid(std::string_view bare) const;

    [[nodiscard]] bool empty() const noexcept;
    [[nodiscard]] const std::vector<SpamList>& domain_lists() const noexcept { return domains_; }
    [[nodiscard]] const SpamList& jid_list() const noexcept { return jids_; }
    [[nodiscard]] const SpamList& whitelist() const noexcept { return whitelist_; }

private:
    [[nodiscard]] const SpamList* lookup_domain(const std::string& canonical) const;

    std::vector<SpamList> domains_;
    SpamList jids_, whitelist_;
    mutable std::unordered_map<std::string, const SpamList*> verdicts_;
};

}  // namespace s2s
