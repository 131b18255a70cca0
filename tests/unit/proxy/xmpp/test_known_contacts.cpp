// proxy/xmpp/known_contacts: the (local, remote) pairs our users sent subscription presences to,
// bounded by count (least recently seen forgotten first) and by age.
#include <doctest/doctest.h>

#include "proxy/xmpp/known_contacts.h"

using namespace s2s;

TEST_CASE("known_contacts: a remembered pair is known one way only") {
    KnownContacts k;
    k.remember("u@a.test", "x@b.test", 0);
    CHECK(k.knows("u@a.test", "x@b.test", 1));
    CHECK_FALSE(k.knows("x@b.test", "u@a.test", 1));
    CHECK_FALSE(k.knows("v@a.test", "x@b.test", 1));
    CHECK_FALSE(k.knows("u@a.test", "x@b.tes", 1));
    k.remember("u@a.test", "x@b.test", 2);  // again: still one pair
    CHECK(k.size() == 1);
}

TEST_CASE("known_contacts: a pair not seen for the ttl is forgotten; seeing it again renews it") {
    KnownContacts k(10, 1000);
    k.remember("u@a.test", "x@b.test", 0);
    k.remember("u@a.test", "y@b.test", 0);
    k.remember("u@a.test", "x@b.test", 800);
    CHECK(k.knows("u@a.test", "x@b.test", 1500));
    CHECK_FALSE(k.knows("u@a.test", "y@b.test", 1500));
    CHECK(k.size() == 1);  // the old one is gone, not just hidden
    CHECK_FALSE(k.knows("u@a.test", "x@b.test", 1801));
    CHECK(k.size() == 0);
}

TEST_CASE("known_contacts: past max_pairs the least recently seen pair goes") {
    KnownContacts k(3, 1'000'000);
    k.remember("u@a.test", "1@b.test", 0);
    k.remember("u@a.test", "2@b.test", 1);
    k.remember("u@a.test", "3@b.test", 2);
    k.remember("u@a.test", "1@b.test", 3);  // 2 is now the least recently seen
    k.remember("u@a.test", "4@b.test", 4);
    CHECK(k.size() == 3);
    CHECK(k.evicted() == 1);
    CHECK_FALSE(k.knows("u@a.test", "2@b.test", 5));
    CHECK(k.knows("u@a.test", "1@b.test", 5));
    CHECK(k.knows("u@a.test", "3@b.test", 5));
    CHECK(k.knows("u@a.test", "4@b.test", 5));
}
