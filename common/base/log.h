// Logging: levels, a per-connection context prefix, text or JSON lines, a settable sink.
//
// Use the macros; they check the level before evaluating any argument:
//
//     s2s::LogContext ctx{conn_id, local_domain, remote_domain};   // or a connection's log_ctx()
//     S2S_LOG_INFO(ctx, "tls_done", "cipher %s in %d ms", name, ms);
//     S2S_LOG_WARNING(s2s::LogContext{}, "config", "unknown key %s", key.c_str());
//
// The format string is printf-style and checked by the compiler. A context argument must not
// contain a top-level comma (write `LogContext{}` or a variable, not `LogContext{1, a, b}`).
//
// Text line:  2026-11-22T10:00:00.123Z info [c42 a.test->b.test] event: message
// JSON line:  {"time":"...","level":"info","connection":42,"local":"a.test","remote":"b.test",
//              "event":"event","reason":"message"}   (connection/local/remote omitted when unknown)
// Control characters, the Unicode line and paragraph separators (U+2028, U+2029) and format
// characters (bidirectional overrides U+202A-202E and isolates U+2066-2069, zero-width marks, the
// byte order mark...) are escaped in both formats as \uNNNN, so a peer can neither break a line
// nor make a viewer show its text reordered; other non-ASCII text ("é", CJK) is kept as it is.
// Invalid UTF-8 becomes \xNN (text) or \ufffd (JSON) so every JSON line is valid JSON.
//
// Secrets never go to the log. Code that prints configuration (--print-config, a startup dump)
// prints `redact(value)` for every secret-bearing option (dialback secret, component secret,
// key passwords); log messages never include them at all, at any level.
//
// Threads: configure (level, format, sink, clock) at start-up; writing is safe from any thread
// with the default stderr sink (one fwrite per line; formatting uses per-thread buffers).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

/// Compile-time floor: calls below this level (0 debug, 1 info, 2 notice, 3 warning, 4 error)
/// compile to nothing. Build with e.g. -DS2S_LOG_FLOOR=1 to drop debug logging entirely.
#ifndef S2S_LOG_FLOOR
#define S2S_LOG_FLOOR 0
#endif

namespace s2s {

/// Severity, lowest first. The numeric values match S2S_LOG_FLOOR.
/// `off` is only a threshold (general.loglevel = "none"): nothing is written at it.
enum class LogLevel : std::uint8_t { debug = 0, info = 1, notice = 2, warning = 3, error = 4, off = 5 };

/// Output line format.
enum class LogFormat : std::uint8_t { text, json };

/// Who a line is about; every part optional. Non-owning: build it when logging (cheap), e.g.
/// from a connection's id and domain strings, which must outlive the call only.
struct LogContext {
    std::optional<std::uint64_t> conn;  ///< connection id, printed as c42 / "connection":42
    std::string_view local;             ///< our domain of the pair ("" = unknown)
    std::string_view remote;            ///< the peer's domain ("" = unknown)
};

/// Receives each formatted line (without the trailing newline).
using LogSink = std::function<void(LogLevel level, std::string_view line)>;

/// Clock for timestamps: milliseconds since the Unix epoch.
using LogClock = std::int64_t (*)() noexcept;

namespace detail {
inline std::atomic<int> g_log_level{static_cast<int>(LogLevel::info)};
}  // namespace detail

/// The runtime check the macros use: one relaxed atomic load.
[[nodiscard]] inline bool log_enabled(LogLevel level) noexcept {
    return static_cast<int>(level) >= detail::g_log_level.load(std::memory_order_relaxed);
}

void set_log_level(LogLevel level) noexcept;
[[nodiscard]] LogLevel log_level() noexcept;
void set_log_format(LogFormat format) noexcept;
[[nodiscard]] LogFormat log_format() noexcept;
/// Replaces the sink; an empty function restores the default (stderr).
void set_log_sink(LogSink sink);
/// Replaces the clock (tests); nullptr restores the real one.
void set_log_clock(LogClock clock) noexcept;

/// "debug", "info", "notice", "warning", "error".
[[nodiscard]] const char* log_level_name(LogLevel level) noexcept;
/// Parses a level name (case-insensitive; "warn" accepted for "warning").
[[nodiscard]] std::optional<LogLevel> parse_log_level(std::string_view name) noexcept;
/// Parses "text" or "json".
[[nodiscard]] std::optional<LogFormat> parse_log_format(std::string_view name) noexcept;

/// What to print instead of a secret: "***", or "" when the secret is empty (so an operator can
/// tell "unset" from "set"). Nothing about the value's length or content leaks.
[[nodiscard]] constexpr std::string_view redact(std::string_view secret) noexcept {
    return secret.empty() ? std::string_view() : std::string_view("***");
}

/// Longest message kept per line (bytes, before escaping); longer ones end in "...[truncated]".
inline constexpr std::size_t kLogMaxMessage = 4096;

/// Appends one formatted line (no newline) to `out`. Pure: used by the writer and by tests.
void format_log_line(std::string& out, LogFormat format, std::int64_t unix_ms, LogLevel level,
                     const LogContext& ctx, std::string_view event, std::string_view msg);

/// Writes one line with an already-built message (no level check: use log_enabled or a macro).
void log_line(LogLevel level, const LogContext& ctx, std::string_view event, std::string_view msg) noexcept;

/// printf-style writer behind the macros (no level check).
__attribute__((format(printf, 4, 5))) void log_write(LogLevel level, const LogContext& ctx, const char* event,
                                                     const char* fmt, ...) noexcept;

}  // namespace s2s

// The macros: compile-time floor first (if constexpr drops the call), then the runtime level;
// the context and the message arguments are evaluated only when the line is written.
#define S2S_LOG_AT_(num, lvl, ctx, event, ...)                                   \
    do {                                                                         \
        if constexpr ((num) >= S2S_LOG_FLOOR) {                                  \
            if (::s2s::log_enabled(lvl)) ::s2s::log_write(lvl, ctx, event, __VA_ARGS__); \
        }                                                                        \
    } while (0)

#define S2S_LOG_DEBUG(ctx, event, ...) S2S_LOG_AT_(0, ::s2s::LogLevel::debug, ctx, event, __VA_ARGS__)
#define S2S_LOG_INFO(ctx, event, ...) S2S_LOG_AT_(1, ::s2s::LogLevel::info, ctx, event, __VA_ARGS__)
#define S2S_LOG_NOTICE(ctx, event, ...) S2S_LOG_AT_(2, ::s2s::LogLevel::notice, ctx, event, __VA_ARGS__)
#define S2S_LOG_WARNING(ctx, event, ...) S2S_LOG_AT_(3, ::s2s::LogLevel::warning, ctx, event, __VA_ARGS__)
#define S2S_LOG_ERROR(ctx, event, ...) S2S_LOG_AT_(4, ::s2s::LogLevel::error, ctx, event, __VA_ARGS__)
