// A budget of log lines for events a peer can cause at will (a refusal per stanza it sends), so
// that a flood of them cannot flood the log: at most `lines` lines in each window of `window_ms`
// (loop time). Past the budget a line is held back (the caller writes it at debug level or not
// at all) and counted; the next line let through says how many were held back before it.
//
//     if (auto held = budget.take(loop.now_ms())) S2S_LOG_NOTICE(ctx, "refused", "%s%s", why, held_note(*held).c_str());
//     else S2S_LOG_DEBUG(ctx, "refused", "%s", why);
//
// One thread; O(1) and no allocation per call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace s2s {

class LogBudget {
public:
    constexpr LogBudget(uint32_t lines, uint64_t window_ms) noexcept : lines_(lines), window_ms_(window_ms) {}

    // nullopt: over the budget now (the line is counted as held back). Otherwise the line may be
    // written, and the value is how many lines were held back since the last one let through.
    [[nodiscard]] std::optional<uint64_t> take(uint64_t now_ms) noexcept;

    // Lines held back in all.
    [[nodiscard]] uint64_t held_back_total() const noexcept { return held_total_; }

private:
    uint32_t lines_;
    uint64_t window_ms_;
    uint64_t window_start_ = 0;
    uint32_t used_ = 0;        // lines let through in the current window
    bool started_ = false;
    uint64_t held_ = 0;        // held back since the last line let through
    uint64_t held_total_ = 0;
};

// " (N more held back)" for a line let through after N were held back; "" for 0.
[[nodiscard]] std::string held_note(uint64_t held);

}  // namespace s2s
