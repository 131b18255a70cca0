// The budget of log lines a peer can cause (common/base/log_budget): so many per window, the
// rest held back and reported by the next line let through.
#include "common/base/log_budget.h"

#include <doctest/doctest.h>

using s2s::LogBudget;

TEST_CASE("log_budget: so many lines per window; the next window lets lines through again and says how many were held") {
    LogBudget b(3, 1000);
    for (int i = 0; i < 3; ++i) {
        auto ok = b.take(5000 + static_cast<uint64_t>(i));
        REQUIRE(ok);
        CHECK(*ok == 0);
    }
    CHECK_FALSE(b.take(5100));
    CHECK_FALSE(b.take(5999));
    CHECK(b.held_back_total() == 2);
    auto next = b.take(6000);
    REQUIRE(next);
    CHECK(*next == 2);
    auto after = b.take(6001);
    REQUIRE(after);
    CHECK(*after == 0);  // reported once
    CHECK(s2s::held_note(2) == " (2 more held back)");
    CHECK(s2s::held_note(0).empty());
}

TEST_CASE("log_budget: a budget of none holds every line back") {
    LogBudget b(0, 1000);
    CHECK_FALSE(b.take(0));
    CHECK_FALSE(b.take(2000));
    CHECK(b.held_back_total() == 2);
}
