// doctest's runner for every unit test file under tests/unit/. The proxy's log lines are
// silenced unless S2S_TEST_LOG is set (e.g. S2S_TEST_LOG=debug build/unit-tests -tc='s2s_in*').
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

#include "common/base/log.h"

int main(int argc, char** argv) {
    const char* level = std::getenv("S2S_TEST_LOG");
    s2s::set_log_level(level ? s2s::parse_log_level(level).value_or(s2s::LogLevel::debug) : s2s::LogLevel::off);
    doctest::Context context(argc, argv);
    return context.run();
}
