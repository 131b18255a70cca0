// Log formatting (text and JSON), level filtering, sink, redaction (common/base/log).
#include "common/base/log.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using s2s::LogContext;
using s2s::LogFormat;
using s2s::LogLevel;

namespace {

constexpr std::int64_t kT = 1795341600123;  // 2026-11-22T10:00:00.123Z

std::int64_t fixed_clock() noexcept { return kT; }

// Captures lines through the sink and restores every global setting afterwards.
struct Capture {
    std::vector<std::string> lines;
    std::vector<LogLevel> levels;
    LogLevel saved_level = s2s::log_level();
    LogFormat saved_format = s2s::log_format();
    Capture() {
        s2s::set_log_sink([this](LogLevel l, std::string_view line) {
            levels.push_back(l);
            lines.emplace_back(line);
        });
        s2s::set_log_clock(&fixed_clock);
        s2s::set_log_format(LogFormat::text);
    }
    ~Capture() {
        s2s::set_log_sink(nullptr);
        s2s::set_log_clock(nullptr);
        s2s::set_log_level(saved_level);
        s2s::set_log_format(saved_format);
    }
};

std::string fmt(LogFormat f, const LogContext& ctx, std::string_view event, std::string_view msg,
                LogLevel level = LogLevel::info, std::int64_t t = kT) {
    std::string out;
    s2s::format_log_line(out, f, t, level, ctx, event, msg);
    return out;
}

int g_evaluations = 0;
int counted(int v) {
    ++g_evaluations;
    return v;
}

}  // namespace

TEST_CASE("log: text format") {
    const LogContext full{42, "a.test", "b.test"};
    CHECK(fmt(LogFormat::text, full, "event", "message") ==
          "2026-11-22T10:00:00.123Z info [c42 a.test->b.test] event: message");
    CHECK(fmt(LogFormat::text, LogContext{}, "start", "listening", LogLevel::notice) ==
          "2026-11-22T10:00:00.123Z notice start: listening");
    CHECK(fmt(LogFormat::text, LogContext{7, {}, {}}, "e", "m") == "2026-11-22T10:00:00.123Z info [c7] e: m");
    CHECK(fmt(LogFormat::text, LogContext{{}, {}, "b.test"}, "e", "m", LogLevel::warning) ==
          "2026-11-22T10:00:00.123Z warning [?->b.test] e: m");
    CHECK(fmt(LogFormat::text, LogContext{{}, "a.test", {}}, "e", "m", LogLevel::error) ==
          "2026-11-22T10:00:00.123Z error [a.test->?] e: m");
    // Time edge cases: epoch, millisecond padding.
    CHECK(fmt(LogFormat::text, {}, "e", "m", LogLevel::debug, 5) == "1970-01-01T00:00:00.005Z debug e: m");
}

TEST_CASE("log: text escapes controls so a peer cannot forge lines") {
    CHECK(fmt(LogFormat::text, {}, "e", "a\nb\r\tc\x01\x7f") == "2026-11-22T10:00:00.123Z info e: a\\nb\\r\\tc\\x01\\x7f");
    CHECK(fmt(LogFormat::text, {}, "e", "bad \xff utf8 \xc3") == "2026-11-22T10:00:00.123Z info e: bad \\xff utf8 \\xc3");
    CHECK(fmt(LogFormat::text, {}, "e", "caf\xc3\xa9 \xc2\x9b") == "2026-11-22T10:00:00.123Z info e: caf\xc3\xa9 \\u009b");
    CHECK(fmt(LogFormat::text, {1, "a\nb", {}}, "ev\n", "\"q\"") ==
          "2026-11-22T10:00:00.123Z info [c1 a\\nb->?] ev\\n: \"q\"");
}

TEST_CASE("log: JSON format") {
    const LogContext full{42, "a.test", "b.test"};
    CHECK(fmt(LogFormat::json, full, "event", "message") ==
          R"({"time":"2026-11-22T10:00:00.123Z","level":"info","connection":42,"local":"a.test",)"
          R"("remote":"b.test","event":"event","reason":"message"})");
    // Unknown context parts are left out.
    CHECK(fmt(LogFormat::json, LogContext{}, "start", "up", LogLevel::error) ==
          R"({"time":"2026-11-22T10:00:00.123Z","level":"error","event":"start","reason":"up"})");
    CHECK(fmt(LogFormat::json, LogContext{{}, {}, "b.test"}, "e", "m") ==
          R"({"time":"2026-11-22T10:00:00.123Z","level":"info","remote":"b.test","event":"e","reason":"m"})");
    CHECK(fmt(LogFormat::json, LogContext{18446744073709551615ull, {}, {}}, "e", "m") ==
          R"({"time":"2026-11-22T10:00:00.123Z","level":"info","connection":18446744073709551615,"event":"e","reason":"m"})");
}

TEST_CASE("log: JSON escapes quotes, backslashes, controls and bad UTF-8") {
    const std::string line = fmt(LogFormat::json, LogContext{1, "q\"l", "b\\r"}, "e\"v",
                                 std::string("\"x\" \\ \n\r\t\b\f \x01\x1f\x7f \xc2\x85 \xff caf\xc3\xa9 \0.", 29));
    CHECK(line ==
          R"({"time":"2026-11-22T10:00:00.123Z","level":"info","connection":1,"local":"q\"l","remote":"b\\r",)"
          R"("event":"e\"v","reason":"\"x\" \\ \n\r\t\b\f \u0001\u001f\u007f \u0085 \ufffd caf)"
          "\xc3\xa9"
          R"( \u0000."})");
    // Every byte of the line is printable ASCII or part of valid UTF-8: no raw controls remain.
    for (unsigned char c : line) CHECK((c >= 0x20 && c != 0x7f));
}

namespace {

// The UTF-8 encoding of one code point (test input).
std::string utf8(char32_t cp) {
    std::string s;
    if (cp < 0x80) {
        s += static_cast<char>(cp);
    } else if (cp < 0x800) {
        s += static_cast<char>(0xC0 | (cp >> 6));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        s += static_cast<char>(0xE0 | (cp >> 12));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | (cp >> 18));
        s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return s;
}

// The message part of a formatted line (after "event: " or in "reason").
std::string text_msg(const std::string& m) {
    const std::string line = fmt(LogFormat::text, {}, "e", m);
    return line.substr(line.find("e: ") + 3);
}
std::string json_msg(const std::string& m) {
    const std::string line = fmt(LogFormat::json, {}, "e", m);
    const std::size_t at = line.find("\"reason\":\"") + 10;
    return line.substr(at, line.size() - at - 2);
}

char hexdigit(unsigned v) { return "0123456789abcdef"[v & 0xF]; }
std::string u4(char32_t cp) {
    std::string s = "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) s += hexdigit(static_cast<unsigned>(cp >> shift));
    return s;
}

}  // namespace

TEST_CASE("log: line and paragraph separators and format characters are escaped in both formats") {
    // The ones a peer could use to break a line or reorder what a viewer shows, and the rest of
    // the format characters (zero-width, BOM, Arabic/Syriac marks, soft hyphen).
    std::vector<char32_t> escaped = {0x2028, 0x2029, 0x00AD, 0x0600, 0x0605, 0x061C, 0x06DD, 0x070F,
                                     0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0x2064,
                                     0x206A, 0x206F, 0xFEFF, 0xFFF9, 0xFFFB};
    for (char32_t cp = 0x202A; cp <= 0x202E; ++cp) escaped.push_back(cp);  // embeddings, overrides
    for (char32_t cp = 0x2066; cp <= 0x2069; ++cp) escaped.push_back(cp);  // isolates
    for (char32_t cp : escaped) {
        CAPTURE(static_cast<unsigned>(cp));
        const std::string raw = "a" + utf8(cp) + "b";
        CHECK(text_msg(raw) == "a" + u4(cp) + "b");
        CHECK(json_msg(raw) == "a" + u4(cp) + "b");
    }
    // Past the BMP: tags and musical format controls; JSON spells them as a surrogate pair.
    CHECK(text_msg(utf8(0xE0001)) == "\\U000e0001");
    CHECK(json_msg(utf8(0xE0001)) == "\\udb40\\udc01");
    CHECK(text_msg(utf8(0x1D173)) == "\\U0001d173");
    CHECK(json_msg(utf8(0x1D173)) == "\\ud834\\udd73");
    // A whole forged line: nothing of it is left raw.
    const std::string forged = "x" + utf8(0x2028) + "2026-11-22T10:00:00.000Z notice fake: " + utf8(0x202E) + "gnp.exe";
    for (const std::string& line : {fmt(LogFormat::text, {1, utf8(0x2029), utf8(0x2066)}, "e", forged),
                                    fmt(LogFormat::json, {1, utf8(0x2029), utf8(0x2066)}, "e", forged)}) {
        CHECK(line.find(utf8(0x2028)) == std::string::npos);
        CHECK(line.find(utf8(0x2029)) == std::string::npos);
        CHECK(line.find(utf8(0x202E)) == std::string::npos);
        CHECK(line.find(utf8(0x2066)) == std::string::npos);
    }
}

TEST_CASE("log: ordinary non-ASCII text is kept as it is") {
    // Letters, CJK, emoji, spaces and punctuation next to the escaped ranges are not format
    // characters: a log line shows them as they are.
    for (char32_t cp : {0xE9u, 0x4E2Du, 0x6587u, 0x1F600u, 0x00ACu, 0x00AEu, 0x2027u, 0x202Fu, 0x2065u,
                        0x2070u, 0x3000u, 0xFEFEu, 0xFF41u, 0x0606u}) {
        CAPTURE(cp);
        const std::string raw = "a" + utf8(cp) + "b";
        CHECK(text_msg(raw) == raw);
        CHECK(json_msg(raw) == raw);
    }
}

TEST_CASE("log: level filtering does not evaluate arguments of an off level") {
    Capture cap;
    s2s::set_log_level(LogLevel::warning);
    g_evaluations = 0;
    int ctx_built = 0;
    auto make_ctx = [&ctx_built] {
        ++ctx_built;
        return LogContext{3, "a.test", "b.test"};
    };
    S2S_LOG_DEBUG(make_ctx(), "e", "%d", counted(1));
    S2S_LOG_INFO(make_ctx(), "e", "%d", counted(2));
    S2S_LOG_NOTICE(make_ctx(), "e", "%d", counted(3));
    CHECK(g_evaluations == 0);
    CHECK(ctx_built == 0);
    CHECK(cap.lines.empty());

    S2S_LOG_WARNING(make_ctx(), "w", "%d", counted(4));
    S2S_LOG_ERROR(make_ctx(), "x", "%d", counted(5));
    CHECK(g_evaluations == 2);
    CHECK(ctx_built == 2);
    REQUIRE(cap.lines.size() == 2);
    CHECK(cap.lines[0] == "2026-11-22T10:00:00.123Z warning [c3 a.test->b.test] w: 4");
    CHECK(cap.lines[1] == "2026-11-22T10:00:00.123Z error [c3 a.test->b.test] x: 5");
    CHECK(cap.levels[0] == LogLevel::warning);
    CHECK(cap.levels[1] == LogLevel::error);

    s2s::set_log_level(LogLevel::debug);
    CHECK(s2s::log_enabled(LogLevel::debug));
    S2S_LOG_DEBUG({}, "d", "%s=%d", "n", counted(6));
    CHECK(g_evaluations == 3);
    REQUIRE(cap.lines.size() == 3);
    CHECK(cap.lines[2] == "2026-11-22T10:00:00.123Z debug d: n=6");
}

// The compile-time floor is read where a macro expands, so raising it here drops the calls below
// even though the runtime level lets everything through.
#undef S2S_LOG_FLOOR
#define S2S_LOG_FLOOR 3
TEST_CASE("log: compile-time floor removes calls below it") {
    Capture cap;
    s2s::set_log_level(LogLevel::debug);
    g_evaluations = 0;
    S2S_LOG_DEBUG({}, "e", "%d", counted(1));
    S2S_LOG_INFO({}, "e", "%d", counted(2));
    S2S_LOG_NOTICE({}, "e", "%d", counted(3));
    S2S_LOG_WARNING({}, "e", "%d", counted(4));
    CHECK(g_evaluations == 1);
    CHECK(cap.lines.size() == 1);
}
#undef S2S_LOG_FLOOR
#define S2S_LOG_FLOOR 0

TEST_CASE("log: JSON through the sink, long and plain messages") {
    Capture cap;
    s2s::set_log_level(LogLevel::info);
    s2s::set_log_format(LogFormat::json);
    const LogContext ctx{9, "a.test", {}};
    S2S_LOG_INFO(ctx, "closed", "reason: %s (%d)", "stream_timeout", 300);
    REQUIRE(cap.lines.size() == 1);
    CHECK(cap.lines[0] == R"({"time":"2026-11-22T10:00:00.123Z","level":"info","connection":9,"local":"a.test",)"
                          R"j("event":"closed","reason":"reason: stream_timeout (300)"})j");

    s2s::set_log_format(LogFormat::text);
    const std::string big(10000, 'x');
    S2S_LOG_INFO({}, "big", "%s", big.c_str());
    REQUIRE(cap.lines.size() == 2);
    const std::string prefix = "2026-11-22T10:00:00.123Z info big: ";
    CHECK(cap.lines[1].size() == prefix.size() + s2s::kLogMaxMessage);
    CHECK(cap.lines[1].compare(0, prefix.size(), prefix) == 0);
    CHECK(cap.lines[1].substr(cap.lines[1].size() - 14) == "...[truncated]");

    const std::string medium(2000, 'y');  // over the stack buffer, under the cap: kept whole
    S2S_LOG_INFO({}, "mid", "%s", medium.c_str());
    REQUIRE(cap.lines.size() == 3);
    CHECK(cap.lines[2] == "2026-11-22T10:00:00.123Z info mid: " + medium);

    s2s::log_line(LogLevel::notice, {}, "raw", "no format");
    REQUIRE(cap.lines.size() == 4);
    CHECK(cap.lines[3] == "2026-11-22T10:00:00.123Z notice raw: no format");
}

TEST_CASE("log: level and format names") {
    CHECK(s2s::parse_log_level("debug") == LogLevel::debug);
    CHECK(s2s::parse_log_level("INFO") == LogLevel::info);
    CHECK(s2s::parse_log_level("notice") == LogLevel::notice);
    CHECK(s2s::parse_log_level("warning") == LogLevel::warning);
    CHECK(s2s::parse_log_level("warn") == LogLevel::warning);
    CHECK(s2s::parse_log_level("error") == LogLevel::error);
    CHECK_FALSE(s2s::parse_log_level("verbose").has_value());
    CHECK_FALSE(s2s::parse_log_level("").has_value());
    CHECK(std::string(s2s::log_level_name(LogLevel::warning)) == "warning");
    CHECK(s2s::parse_log_format("json") == LogFormat::json);
    CHECK(s2s::parse_log_format("Text") == LogFormat::text);
    CHECK_FALSE(s2s::parse_log_format("xml").has_value());
}

TEST_CASE("log: redact masks secrets") {
    CHECK(s2s::redact("hunter2") == "***");
    CHECK(s2s::redact("a much longer secret value") == "***");  // length does not leak
    CHECK(s2s::redact("") == "");                                // unset stays visibly unset
    static_assert(s2s::redact("x") == "***", "usable at compile time");
}
