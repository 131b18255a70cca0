// Byte buffer; see buffer.h.
#include "common/base/buffer.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

namespace s2s {

Buffer::Buffer(std::size_t limit, std::size_t high_water) noexcept
    : limit_(limit), high_water_(std::min(high_water, limit)) {}

Buffer::Buffer(Buffer&& other) noexcept
    : mem_(std::move(other.mem_)),
      cap_(std::exchange(other.cap_, 0)),
      rd_(std::exchange(other.rd_, 0)),
      wr_(std::exchange(other.wr_, 0)),
      limit_(other.limit_),
      high_water_(other.high_water_) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
    if (this != &other) {
        mem_ = std::move(other.mem_);
        cap_ = std::exchange(other.cap_, 0);
        rd_ = std::exchange(other.rd_, 0);
        wr_ = std::exchange(other.wr_, 0);
        limit_ = other.limit_;
        high_water_ = other.high_water_;
    }
    return *this;
}

void Buffer::set_limits(std::size_t limit, std::size_t high_water) noexcept {
    limit_ = limit;
    high_water_ = std::min(high_water, limit);
}

bool Buffer::append(std::string_view bytes) noexcept {
    if (bytes.empty()) return true;
    if (would_exceed_limit(bytes.size()) || !ensure_tail(bytes.size())) return false;
    std::memcpy(mem_.get() + wr_, bytes.data(), bytes.size());
    wr_ += bytes.size();
    return true;
}

void Buffer::consume(std::size_t n) noexcept {
    rd_ += std::min(n, size());
    if (rd_ == wr_) {
        rd_ = wr_ = 0;  // empty: restart at the front for free
    } else if (rd_ > cap_ / 2) {
        compact();  // moves fewer than cap_/2 bytes, paid for by the > cap_/2 consumed
    }
}

WritableSpan Buffer::reserve_tail(std::size_t n) noexcept {
    if (size() >= limit_) return {};
    n = std::min(n, limit_ - size());
    if (n == 0 || !ensure_tail(n)) return {};
    return {mem_.get() + wr_, n};
}

void Buffer::commit(std::size_t n) noexcept {
    // Clamped so a caller's mistake can neither run past the memory nor past the limit.
    const std::size_t room = size() >= limit_ ? 0 : std::min(cap_ - wr_, limit_ - size());
    wr_ += std::min(n, room);
}

void Buffer::shrink() noexcept {
    if (empty()) {
        mem_.reset();
        cap_ = rd_ = wr_ = 0;
        return;
    }
    const std::size_t want = std::max(size(), kMinCapacity);
    if (want < cap_) (void)reallocate(want);  // on failure keep the bigger block: still correct
}

bool Buffer::ensure_tail(std::size_t n) noexcept {
    if (cap_ - wr_ >= n) return true;
    if (cap_ - size() >= n) {
        compact();
        return true;
    }
    // Grow by doubling; never beyond what the limit can use (or what is already held).
    const std::size_t need = size() + n;
    std::size_t new_cap = std::max({need, cap_ * 2, kMinCapacity});
    new_cap = std::min(new_cap, std::max(limit_, need));
    return reallocate(new_cap);
}

bool Buffer::reallocate(std::size_t new_cap) noexcept {
    std::unique_ptr<char[]> mem(new (std::nothrow) char[new_cap]);
    if (!mem) return false;
    const std::size_t n = size();
    if (n != 0) std::memcpy(mem.get(), mem_.get() + rd_, n);
    mem_ = std::move(mem);
    cap_ = new_cap;
    rd_ = 0;
    wr_ = n;
    return true;
}

void Buffer::compact() noexcept {
    if (rd_ == 0) return;
    const std::size_t n = size();
    if (n != 0) std::memmove(mem_.get(), mem_.get() + rd_, n);
    rd_ = 0;
    wr_ = n;
}

}  // namespace s2s
