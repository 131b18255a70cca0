// The byte buffer for all I/O: contiguous, with a hard size limit and a high-water mark.
//
//   append()            queue bytes (all or nothing; refused past the limit)
//   data()/size()       the unconsumed bytes, contiguous; consume(n) drops n from the front
//   reserve_tail(n)     writable space at the end (libuv alloc_cb), then commit(nread)
//   above_high_water()  backpressure signal: stop reading the source until it drains
//   shrink()            give memory back when a link goes idle (an empty buffer holds none)
//
// consume() is amortised O(1): it only moves a read offset, and the live bytes are moved to
// the front when the offset passes half the capacity (or for free when the buffer empties).
// Memory grows by doubling up to the limit. Nothing throws: allocation failure makes append()
// return false and reserve_tail() return an empty span, the same as hitting the limit.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

namespace s2s {

/// Writable space at the end of a Buffer, from reserve_tail(); valid until the next call
/// that changes the buffer.
struct WritableSpan {
    char* data = nullptr;
    std::size_t size = 0;
    [[nodiscard]] bool empty() const noexcept { return size == 0; }
};

/// Contiguous byte queue with a size limit (never exceeded) and a high-water mark.
class Buffer {
public:
    static constexpr std::size_t kDefaultLimit = 1024 * 1024;
    static constexpr std::size_t kDefaultHighWater = 256 * 1024;
    static constexpr std::size_t kMinCapacity = 256;  ///< smallest allocation made

    Buffer() noexcept : Buffer(kDefaultLimit, kDefaultHighWater) {}
    /// `high_water` is clamped to `limit`. No memory is allocated until bytes arrive.
    Buffer(std::size_t limit, std::size_t high_water) noexcept;
    Buffer(Buffer&& other) noexcept;
    Buffer& operator=(Buffer&& other) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() = default;

    [[nodiscard]] const char* data() const noexcept { return mem_.get() + rd_; }
    [[nodiscard]] std::size_t size() const noexcept { return wr_ - rd_; }
    [[nodiscard]] bool empty() const noexcept { return wr_ == rd_; }
    [[nodiscard]] std::string_view view() const noexcept { return {data(), size()}; }
    [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }  ///< bytes allocated
    [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
    [[nodiscard]] std::size_t high_water() const noexcept { return high_water_; }

    /// Changes both limits (config reload). Bytes already held are kept even if over the limit;
    /// appends fail until enough is consumed.
    void set_limits(std::size_t limit, std::size_t high_water) noexcept;

    /// True if size() + n would pass the limit.
    [[nodiscard]] bool would_exceed_limit(std::size_t n) const noexcept {
        return size() > limit_ || n > limit_ - size();
    }
    /// True while more than high_water() bytes are held.
    [[nodiscard]] bool above_high_water() const noexcept { return size() > high_water_; }

    /// Appends all of `bytes`, or nothing and returns false (limit, or out of memory).
    [[nodiscard]] bool append(std::string_view bytes) noexcept;
    [[nodiscard]] bool append(const void* bytes, std::size_t n) noexcept {
        return append(std::string_view(static_cast<const char*>(bytes), n));
    }

    /// Drops the first min(n, size()) bytes.
    void consume(std::size_t n) noexcept;
    /// Drops everything, keeping the memory (use shrink() to release it).
    void clear() noexcept { rd_ = wr_ = 0; }

    /// Writable space for up to `n` more bytes at the end: fewer if the limit is closer, empty if
    /// the buffer is full (or memory ran out). Write into it, then commit() what was written.
    [[nodiscard]] WritableSpan reserve_tail(std::size_t n) noexcept;
    /// Makes `n` bytes written into the last reserve_tail() span part of the content
    /// (n must not exceed that span; clamped to the allocation and the limit regardless).
    void commit(std::size_t n) noexcept;

    /// Releases memory: all of it when empty, otherwise reallocates to fit the held bytes.
    void shrink() noexcept;

private:
    // Makes room for n more bytes after wr_ (compacting or growing); false if memory ran out.
    [[nodiscard]] bool ensure_tail(std::size_t n) noexcept;
    // Moves the held bytes into a new allocation of `new_cap` bytes; false if it failed.
    [[nodiscard]] bool reallocate(std::size_t new_cap) noexcept;
    void compact() noexcept;

    std::unique_ptr<char[]> mem_;
    std::size_t cap_ = 0;   // bytes allocated
    std::size_t rd_ = 0;    // start of unconsumed bytes
    std::size_t wr_ = 0;    // end of unconsumed bytes
    std::size_t limit_;
    std::size_t high_water_;
};

}  // namespace s2s
