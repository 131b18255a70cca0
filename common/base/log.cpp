// Log line formatting and the writer; see log.h.
#include "common/base/log.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <ctime>

#include "common/base/utf8.h"

namespace s2s {
namespace {

std::atomic<int> g_format{static_cast<int>(LogFormat::text)};
LogSink g_sink;  // empty: stderr
std::atomic<LogClock> g_clock{nullptr};

constexpr std::string_view kTruncated = "...[truncated]";
constexpr char kHex[] = "0123456789abcdef";

std::int64_t real_clock() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void append_u00(std::string& out, unsigned v) {
    out += "\\u00";
    out += kHex[(v >> 4) & 0xF];
    out += kHex[v & 0xF];
}

void append_hex4(std::string& out, char32_t v) {
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(v >> shift) & 0xF];
}

// Code points that change how a line is laid out or read without being controls: the line and
// paragraph separators (Zl, Zp: a viewer breaks the line there) and the format characters (Cf:
// bidirectional overrides, embeddings and isolates that reorder what follows, zero-width and
// invisible characters, the byte order mark, tags). Ranges from Unicode 15.0, sorted.
struct CpRange {
    char32_t first, last;
};
constexpr CpRange kFormatRanges[] = {
    {0x00AD, 0x00AD},   {0x0600, 0x0605},   {0x061C, 0x061C},   {0x06DD, 0x06DD},   {0x070F, 0x070F},
    {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x180E, 0x180E},   {0x200B, 0x200F},   {0x2028, 0x202E},
    {0x2060, 0x2064},   {0x2066, 0x206F},   {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD},
    {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
    {0xE0020, 0xE007F},
};

bool is_format_char(char32_t cp) noexcept {
    if (cp < 0xAD) return false;
    for (const CpRange& r : kFormatRanges) {
        if (cp < r.first) return false;
        if (cp <= r.last) return true;
    }
    return false;
}

// JSON string body: quotes, backslashes, controls and format characters escaped; invalid UTF-8
// -> \ufffd.
void escape_json(std::string& out, std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        // Copy the longest run that needs no escaping in one go.
        std::size_t run = i;
        while (run < s.size()) {
            const auto c = static_cast<unsigned char>(s[run]);
            if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7F) break;
            ++run;
        }
        out.append(s.data() + i, run - i);
        i = run;
        if (i == s.size()) break;
        const char c = s[i];
        char32_t cp = 0;
        const std::size_t len = decode_utf8(s, i, cp);
        if (len == 0) {
            out += "\\ufffd";
            ++i;
            continue;
        }
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
                    append_u00(out, static_cast<unsigned>(cp));
                } else if (is_format_char(cp)) {
                    if (cp < 0x10000) {
                        out += "\\u";
                        append_hex4(out, cp);
                    } else {  // a surrogate pair, as JSON spells code points past the BMP
                        out += "\\u";
                        append_hex4(out, 0xD800 + ((cp - 0x10000) >> 10));
                        out += "\\u";
                        append_hex4(out, 0xDC00 + ((cp - 0x10000) & 0x3FF));
                    }
                } else {
                    out.append(s.data() + i, len);
                }
        }
        i += len;
    }
}

// Text: controls escaped (\n \r \t, \xNN, C1 as \u00NN), format characters and the line and
// paragraph separators as \uNNNN (\UNNNNNNNN past the BMP), invalid UTF-8 bytes as \xNN.
void escape_text(std::string& out, std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t run = i;
        while (run < s.size()) {
            const auto c = static_cast<unsigned char>(s[run]);
            if (c < 0x20 || c >= 0x7F) break;
            ++run;
        }
        out.append(s.data() + i, run - i);
        i = run;
        if (i == s.size()) break;
        const auto c = static_cast<unsigned char>(s[i]);
        char32_t cp = 0;
        const std::size_t len = decode_utf8(s, i, cp);
        if (len == 0 || cp < 0x20 || cp == 0x7F) {
            if (c == '\n') {
                out += "\\n";
            } else if (c == '\r') {
                out += "\\r";
            } else if (c == '\t') {
                out += "\\t";
            } else {
                out += "\\x";
                out += kHex[c >> 4];
                out += kHex[c & 0xF];
            }
            ++i;
            continue;
        }
        if (cp >= 0x80 && cp <= 0x9F) {
            append_u00(out, static_cast<unsigned>(cp));
        } else if (is_format_char(cp)) {
            if (cp < 0x10000) {
                out += "\\u";
                append_hex4(out, cp);
            } else {
                out += "\\U";
                for (int shift = 28; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 0xF];
            }
        } else {
            out.append(s.data() + i, len);
        }
        i += len;
    }
}

// "2026-11-22T10:00:00.123Z". The seconds part is cached per thread (one gmtime per second).
void append_time(std::string& out, std::int64_t unix_ms) {
    thread_local std::int64_t cached_sec = INT64_MIN;
    thread_local char cached[24];
    std::int64_t sec = unix_ms / 1000;
    std::int64_t ms = unix_ms % 1000;
    if (ms < 0) ms += 1000, sec -= 1;
    if (sec != cached_sec) {
        const std::time_t t = static_cast<std::time_t>(sec);
        std::tm tm{};
        gmtime_r(&t, &tm);
        // Fixed-width digits written by hand: "YYYY-MM-DDTHH:MM:SS".
        auto put = [](char* p, int v, int width) {
            for (int k = width - 1; k >= 0; --k, v /= 10) p[k] = static_cast<char>('0' + v % 10);
        };
        const int year = std::min(std::max(tm.tm_year + 1900, 0), 9999);
        std::memcpy(cached, "0000-00-00T00:00:00", 20);
        put(cached, year, 4);
        put(cached + 5, tm.tm_mon + 1, 2);
        put(cached + 8, tm.tm_mday, 2);
        put(cached + 11, tm.tm_hour, 2);
        put(cached + 14, tm.tm_min, 2);
        put(cached + 17, tm.tm_sec, 2);
        cached_sec = sec;
    }
    out += cached;
    out += '.';
    out += static_cast<char>('0' + ms / 100);
    out += static_cast<char>('0' + ms / 10 % 10);
    out += static_cast<char>('0' + ms % 10);
    out += 'Z';
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
        if (x != b[i]) return false;
    }
    return true;
}

}  // namespace

void set_log_level(LogLevel level) noexcept {
    detail::g_log_level.store(static_cast<int>(level), std::memory_order_relaxed);
}
LogLevel log_level() noexcept {
    return static_cast<LogLevel>(detail::g_log_level.load(std::memory_order_relaxed));
}
void set_log_format(LogFormat format) noexcept { g_format.store(static_cast<int>(format)); }
LogFormat log_format() noexcept { return static_cast<LogFormat>(g_format.load()); }
void set_log_sink(LogSink sink) { g_sink = std::move(sink); }
void set_log_clock(LogClock clock) noexcept { g_clock.store(clock); }

const char* log_level_name(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::notice: return "notice";
        case LogLevel::warning: return "warning";
        case LogLevel::error: return "error";
        case LogLevel::off: return "off";
    }
    return "unknown";
}

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept {
    for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::notice, LogLevel::warning, LogLevel::error}) {
        if (iequals(name, log_level_name(l))) return l;
    }
    if (iequals(name, "warn")) return LogLevel::warning;
    return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view name) noexcept {
    if (iequals(name, "text")) return LogFormat::text;
    if (iequals(name, "json")) return LogFormat::json;
    return std::nullopt;
}

void format_log_line(std::string& out, LogFormat format, std::int64_t unix_ms, LogLevel level,
                     const LogContext& ctx, std::string_view event, std::string_view msg) {
    if (format == LogFormat::json) {
        out += "{\"time\":\"";
        append_time(out, unix_ms);
        out += "\",\"level\":\"";
        out += log_level_name(level);
        out += '"';
        if (ctx.conn) {
            out += ",\"connection\":";
            out += std::to_string(*ctx.conn);
        }
        if (!ctx.local.empty()) {
            out += ",\"local\":\"";
            escape_json(out, ctx.local);
            out += '"';
        }
        if (!ctx.remote.empty()) {
            out += ",\"remote\":\"";
            escape_json(out, ctx.remote);
            out += '"';
        }
        out += ",\"event\":\"";
        escape_json(out, event);
        out += "\",\"reason\":\"";
        escape_json(out, msg);
        out += "\"}";
        return;
    }
    append_time(out, unix_ms);
    out += ' ';
    out += log_level_name(level);
    const bool pair = !ctx.local.empty() || !ctx.remote.empty();
    if (ctx.conn || pair) {
        out += " [";
        if (ctx.conn) {
            out += 'c';
            out += std::to_string(*ctx.conn);
            if (pair) out += ' ';
        }
        if (pair) {
            escape_text(out, ctx.local.empty() ? std::string_view("?") : ctx.local);
            out += "->";
            escape_text(out, ctx.remote.empty() ? std::string_view("?") : ctx.remote);
        }
        out += ']';
    }
    out += ' ';
    escape_text(out, event);
    out += ": ";
    escape_text(out, msg);
}

void log_line(LogLevel level, const LogContext& ctx, std::string_view event, std::string_view msg) noexcept {
    try {
        thread_local std::string line;
        line.clear();
        const LogClock clock = g_clock.load();
        const std::int64_t now = clock != nullptr ? clock() : real_clock();
        format_log_line(line, log_format(), now, level, ctx, event, msg);
        if (g_sink) {
            g_sink(level, line);
        } else {
            line += '\n';
            std::fwrite(line.data(), 1, line.size(), stderr);
        }
    } catch (...) {
        std::fputs("s2s-proxy: a log line was lost (out of memory or sink failure)\n", stderr);
    }
}

void log_write(LogLevel level, const LogContext& ctx, const char* event, const char* fmt, ...) noexcept {
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    va_list again;
    va_copy(again, ap);
    const int n = std::vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(again);
        log_line(level, ctx, event, "(message format error)");
        return;
    }
    if (static_cast<std::size_t>(n) < sizeof small) {
        va_end(again);
        log_line(level, ctx, event, std::string_view(small, static_cast<std::size_t>(n)));
        return;
    }
    // Long message: format again into a per-thread buffer, keeping at most kLogMaxMessage bytes.
    const std::size_t keep = std::min(static_cast<std::size_t>(n), kLogMaxMessage);
    std::string* big = nullptr;
    try {
        thread_local std::string buf;
        buf.resize(keep + 1);
        big = &buf;
    } catch (...) {
    }
    if (big != nullptr) std::vsnprintf(big->data(), keep + 1, fmt, again);
    va_end(again);
    if (big == nullptr) {
        std::fputs("s2s-proxy: a log line was lost (out of memory)\n", stderr);
        return;
    }
    big->resize(keep);  // shrinking: no allocation
    if (keep < static_cast<std::size_t>(n)) {
        big->replace(keep - kTruncated.size(), kTruncated.size(), kTruncated.data(), kTruncated.size());
    }
    log_line(level, ctx, event, *big);
}

}  // namespace s2s
