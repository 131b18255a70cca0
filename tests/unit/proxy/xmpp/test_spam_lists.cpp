// Spam lists: the file format, hashed entries, subdomains, the whitelist, the verdict cache.
#include <doctest/doctest.h>

#include <string>

#include "common/tls/digest.h"
#include "proxy/xmpp/spam_lists.h"

using namespace s2s;

namespace {

SpamList parsed(const std::string& text, SpamListKind kind, const std::string& source) {
    SpamList l;
    l.source = source;
    std::string error;
    REQUIRE_MESSAGE(parse_spam_list(text, kind, &l, &error), error);
    return l;
}

std::string sha_hex(const std::string& s) {
    Sha256 d = sha256(s);
    return hex_lower(d.data(), d.size());
}

}  // namespace

TEST_CASE("spam lists: a file holds domains, comments, blank lines and SHA-256 digests") {
    SpamList l = parsed("# the list\n\nspam.test\n  Other.TEST.  # trailing comment\r\n" + sha_hex("hashed.test") +
                            "\n" + std::string(64, 'A') + "\n",
                        SpamListKind::Domains, "domains.txt");
    CHECK(l.plain.size() == 2);
    CHECK(l.plain.count("spam.test"));
    CHECK(l.plain.count("other.test"));  // canonical form: case and trailing dot
    CHECK(l.hashed.size() == 2);         // upper-case hex digits are a digest too
    CHECK(l.size() == 4);
}

TEST_CASE("spam lists: a bad entry is refused with its line") {
    SpamList l;
    std::string error;
    CHECK_FALSE(parse_spam_list("ok.test\nnot a domain\n", SpamListKind::Domains, &l, &error));
    CHECK(error == "line 2: 'not a domain' is not a domain (domain_bad_char)");
    CHECK_FALSE(parse_spam_list("spammer@ok.test\nok.test\n", SpamListKind::Jids, &l, &error));
    CHECK(error == "line 2: 'ok.test' is not a bare JID (local@domain, no resource)");
    CHECK_FALSE(parse_spam_list("a@b.test/res\n", SpamListKind::Jids, &l, &error));
    CHECK(error == "line 1: 'a@b.test/res' is not a bare JID (local@domain, no resource)");
    // 65 hex digits are not a digest, nor a domain (a label of at most 63)
    CHECK_FALSE(parse_spam_list(std::string(65, 'a') + "\n", SpamListKind::Domains, &l, &error));
    CHECK(error.rfind("line 1: ", 0) == 0);
}

TEST_CASE("spam lists: a listed domain blocks itself and its subdomains, not its parent or lookalikes") {
    std::vector<SpamList> domains;
    domains.push_back(parsed("spam.test\n", SpamListKind::Domains, "/etc/s2s-proxy/spam.txt"));
    SpamLists lists(std::move(domains), {}, {});
    REQUIRE(lists.blocking_domain("spam.test"));
    CHECK(lists.blocking_domain("spam.test")->source == "/etc/s2s-proxy/spam.txt");
    CHECK(lists.blocking_domain("SPAM.test."));
    CHECK(lists.blocking_domain("chat.spam.test"));
    CHECK(lists.blocking_domain("a.b.spam.test"));
    CHECK_FALSE(lists.blocking_domain("test"));
    CHECK_FALSE(lists.blocking_domain("notspam.test"));
    CHECK_FALSE(lists.blocking_domain("spam.test.example"));
    CHECK_FALSE(lists.blocking_domain("not a domain"));
}

TEST_CASE("spam lists: hashed entries match the domain and its subdomains by their SHA-256") {
    std::vector<SpamList> domains;
    domains.push_back(parsed(sha_hex("hidden.test") + "\n", SpamListKind::Domains, "rtbl"));
    SpamLists lists(std::move(domains), {}, {});
    CHECK(lists.blocking_domain("hidden.test"));
    CHECK(lists.blocking_domain("Muc.Hidden.Test"));
    CHECK_FALSE(lists.blocking_domain("visible.test"));
}

TEST_CASE("spam lists: the whitelist wins over every domain list, for its subdomains too") {
    std::vector<SpamList> domains;
    domains.push_back(parsed("big.test\n", SpamListKind::Domains, "a"));
    domains.push_back(parsed(sha_hex("ok.big.test") + "\n", SpamListKind::Domains, "b"));
    SpamLists lists(std::move(domains), {}, parsed("ok.big.test\n", SpamListKind::Domains, "white"));
    CHECK(lists.blocking_domain("big.test"));
    CHECK(lists.blocking_domain("other.big.test"));
    CHECK_FALSE(lists.blocking_domain("ok.big.test"));
    CHECK_FALSE(lists.blocking_domain("muc.ok.big.test"));
}

TEST_CASE("spam lists: JIDs are matched bare, plain or hashed, and case-folded in the localpart") {
    SpamList jids = parsed("Spammer@Spam.Test\n" + sha_hex("bot@host.test") + "\n", SpamListKind::Jids, "jids.txt");
    CHECK(jids.plain.count("spammer@spam.test"));
    SpamLists lists({}, std::move(jids), {});
    REQUIRE(lists.blocking_jid("spammer@spam.test"));
    CHECK(lists.blocking_jid("spammer@spam.test")->source == "jids.txt");
    CHECK(lists.blocking_jid("bot@host.test"));
    CHECK_FALSE(lists.blocking_jid("someone@spam.test"));
    CHECK_FALSE(lists.blocking_domain("spam.test"));  // a JID entry does not block its domain
}

TEST_CASE("spam lists: empty lists block nothing; the verdict cache is bounded") {
    SpamLists none;
    CHECK(none.empty());
    CHECK_FALSE(none.blocking_domain("any.test"));
    CHECK_FALSE(none.blocking_jid("a@any.test"));
    std::vector<SpamList> domains;
    domains.push_back(parsed("spam.test\n", SpamListKind::Domains, "x"));
    SpamLists lists(std::move(domains), {}, {});
    for (std::size_t i = 0; i < SpamLists::kVerdictCache * 2 + 10; ++i)
        CHECK_FALSE(lists.blocking_domain("d" + std::to_string(i) + ".test"));
    CHECK(lists.blocking_domain("x.spam.test"));  // still right after the cache was emptied
}
