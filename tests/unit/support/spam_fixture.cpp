#include "tests/unit/support/spam_fixture.h"

#include <doctest/doctest.h>

#include <utility>
#include <vector>

namespace s2s::test {
namespace {

SpamList list(const std::string& text, SpamListKind kind, const std::string& key) {
    SpamList l;
    l.key = key;
    l.source = key + ".txt";
    std::string error;
    REQUIRE_MESSAGE(parse_spam_list(text, kind, &l, &error), error);
    return l;
}

}  // namespace

std::shared_ptr<const SpamLists> spam_lists(const std::string& domains, const std::string& jids,
                                            const std::string& whitelist) {
    std::vector<SpamList> d;
    d.push_back(list(domains, SpamListKind::Domains, "spam_domains_file"));
    return std::make_shared<const SpamLists>(std::move(d), list(jids, SpamListKind::Jids, "spam_jids_file"),
                                             list(whitelist, SpamListKind::Domains, "whitelist_domains_file"));
}

}  // namespace s2s::test
