// The process's libuv loop and the services every connection on it shares.
//
// - One read buffer for all sockets: every read callback consumes its bytes before returning
//   (the TLS engine and the XML parser copy what they keep), so idle links hold no read memory.
// - Batched output: a connection with bytes to send asks for a flush; all flushes run once per
//   loop turn, after the poll phase, so the stanzas produced by one turn's reads leave in one
//   write per socket (one write per stanza was measured 5x slower).
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <vector>

namespace s2s {

// Something with output to flush once per loop turn.
class Flushable {
public:
    virtual void flush() noexcept = 0;

protected:
    ~Flushable() = default;

private:
    friend class EventLoop;
    bool flush_scheduled_ = false;
};

class EventLoop {
public:
    static constexpr std::size_t kReadBufferSize = 64 * 1024;

    explicit EventLoop(uv_loop_t* loop);
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    [[nodiscard]] uv_loop_t* uv() const noexcept { return loop_; }

    // libuv alloc callback handing out the shared read buffer.
    static void alloc_read_buffer(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) noexcept;

    // Asks for f->flush() later in this loop turn (once, however often it is asked).
    void schedule_flush(Flushable* f);
    // Forgets f (it is going away before its flush ran).
    void cancel_flush(Flushable* f) noexcept;

    // Runs fn later in this loop turn (after the current callback chain has returned), so that
    // a caller never sees its callback run inside the call that asked for it.
    void defer(std::function<void()> fn);

    // Closes the loop's own handles; the loop can then end.
    void close() noexcept;

    // Milliseconds of the loop's clock (cached per turn).
    [[nodiscard]] uint64_t now_ms() const noexcept { return uv_now(loop_); }

private:
    static void on_check(uv_check_t* handle) noexcept;
    void run_flushes() noexcept;

    uv_loop_t* loop_;
    uv_check_t check_{};  // runs the flushes after each poll phase
    uv_idle_t idle_{};    // active while flushes are pending, so the poll phase does not block
    bool closed_ = false;
    std::vector<Flushable*> pending_, running_;
    std::vector<std::function<void()>> deferred_;
    static char read_buffer_[kReadBufferSize];
};

}  // namespace s2s
