#include "common/base/log_budget.h"

namespace s2s {

std::optional<uint64_t> LogBudget::take(uint64_t now_ms) noexcept {
    if (!started_ || now_ms - window_start_ >= window_ms_) {
        started_ = true;
        window_start_ = now_ms;
        used_ = 0;
    }
    if (used_ >= lines_) {
        ++held_;
        ++held_total_;
        return std::nullopt;
    }
    ++used_;
    uint64_t held = held_;
    held_ = 0;
    return held;
}

std::string held_note(uint64_t held) {
    if (held == 0) return {};
    return " (" + std::to_string(held) + " more held back)";
}

}  // namespace s2s
