// The key->line index that config errors use.
#include <doctest/doctest.h>

#include "common/config/config_lines.h"

using namespace s2s::config;

TEST_CASE("config_lines: tables, arrays of tables, dotted and quoted keys, inline tables in arrays") {
    const char* text = R"(# comment
[general]
  hosts = ["a.test",
           "b.test"]   # a multi-line array
[s2s]
  outgoing.tls.mode = "tls"
  "quoted key" = 1
  host_policy = [
    {host = "x.test", policy = "allow"},
    { host = "y.test",
      policy = "deny" }
  ]
  note = "a string with [brackets] and {braces} and # no comment"
  after = 2
[[listen.s2s]]
  port = 1
[[listen.s2s]]
  port = 2
  tls.mode = "starttls"
)";
    LineIndex idx = index_lines(text);
    CHECK(idx.at("general") == 2);
    CHECK(idx.at("general.hosts") == 3);
    CHECK(idx.at("s2s.outgoing.tls.mode") == 6);
    CHECK(idx.at("s2s.quoted key") == 7);
    CHECK(idx.at("s2s.host_policy") == 8);
    CHECK(idx.at("s2s.host_policy.0.policy") == 9);
    CHECK(idx.at("s2s.host_policy.1.host") == 10);
    CHECK(idx.at("s2s.host_policy.1.policy") == 11);
    CHECK(idx.at("s2s.after") == 14);
    CHECK(idx.at("listen.s2s.0") == 15);
    CHECK(idx.at("listen.s2s.0.port") == 16);
    CHECK(idx.at("listen.s2s.1.port") == 18);
    CHECK(idx.at("listen.s2s.1.tls.mode") == 19);
}

TEST_CASE("config_lines: line_of falls back to the enclosing table or entry") {
    LineIndex idx = index_lines("[a]\nx = 1\n[[b]]\ny = 2\n");
    CHECK(line_of(idx, "a.x") == 2);
    CHECK(line_of(idx, "a.missing") == 1);
    CHECK(line_of(idx, "b.0.missing") == 3);
    CHECK(line_of(idx, "nowhere.at.all") == 0);
}

TEST_CASE("config_lines: malformed text never hangs and keeps what it can") {
    for (const char* bad : {"[", "[[", "a = [", "a = {", "a = [}]", "a = \"unterminated\nb = 1", "= 3\n}\n]",
                            "a = '''multi\nline'''\nb = 1", "x = [{y = [1, {z = 2}]}]"}) {
        CAPTURE(bad);
        LineIndex idx = index_lines(bad);
        CHECK(idx.size() < 10);
    }
    LineIndex idx = index_lines("a = '''multi\nline'''\nb = 1");
    CHECK(idx.at("b") == 3);
}

TEST_CASE("config_lines: key_at names the most specific key starting at or before a line") {
    const char* text = "[general]\n  hosts = [\"a.test\"]\n[[listen.s2s]]\n  port = 1\n\n  oops\n";
    LineIndex idx = index_lines(text);
    CHECK(key_at(idx, 2).key == "general.hosts");
    CHECK(key_at(idx, 3).key == "listen.s2s.0");
    KeyAt after = key_at(idx, 6);
    CHECK(after.key == "listen.s2s.0.port");
    CHECK(after.line == 4);
    CHECK(key_at(idx, 0).key.empty());
}
