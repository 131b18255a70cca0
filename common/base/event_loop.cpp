#include "common/base/event_loop.h"

#include <algorithm>
#include <exception>

#include "common/base/log.h"

namespace s2s {

char EventLoop::read_buffer_[EventLoop::kReadBufferSize];

EventLoop::EventLoop(uv_loop_t* loop) : loop_(loop) {
    uv_check_init(loop_, &check_);
    check_.data = this;
    uv_check_start(&check_, on_check);
    uv_unref(reinterpret_cast<uv_handle_t*>(&check_));  // the check alone does not keep the loop alive
    uv_idle_init(loop_, &idle_);
    idle_.data = this;
}

EventLoop::~EventLoop() { close(); }

void EventLoop::alloc_read_buffer(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
    buf->base = read_buffer_;
    buf->len = kReadBufferSize;
}

void EventLoop::schedule_flush(Flushable* f) {
    if (f->flush_scheduled_) return;
    f->flush_scheduled_ = true;
    if (pending_.empty() && deferred_.empty() && !closed_) uv_idle_start(&idle_, [](uv_idle_t*) {});
    pending_.push_back(f);
}

void EventLoop::defer(std::function<void()> fn) {
    if (pending_.empty() && deferred_.empty() && !closed_) uv_idle_start(&idle_, [](uv_idle_t*) {});
    deferred_.push_back(std::move(fn));
}

void EventLoop::cancel_flush(Flushable* f) noexcept {
    if (!f->flush_scheduled_) return;
    f->flush_scheduled_ = false;
    for (auto* list : {&pending_, &running_}) std::replace(list->begin(), list->end(), f, static_cast<Flushable*>(nullptr));
}

void EventLoop::on_check(uv_check_t* handle) noexcept { static_cast<EventLoop*>(handle->data)->run_flushes(); }

void EventLoop::run_flushes() noexcept {
    // Deferred calls first (they may queue output), then flushes; either may add more: loop until quiet.
    while (!pending_.empty() || !deferred_.empty()) {
        while (!deferred_.empty()) {
            std::vector<std::function<void()>> calls;
            calls.swap(deferred_);
            for (auto& fn : calls) {
                try {
                    fn();
                } catch (const std::exception& e) {  // nothing may cross the C callback
                    S2S_LOG_ERROR(LogContext{}, "internal-error", "deferred call threw: %s", e.what());
                }
            }
        }
        running_.swap(pending_);
        for (size_t i = 0; i < running_.size(); ++i) {
            Flushable* f = running_[i];
            if (!f) continue;
            f->flush_scheduled_ = false;
            f->flush();
        }
        running_.clear();
    }
    if (!closed_) uv_idle_stop(&idle_);
}

void EventLoop::close() noexcept {
    if (closed_) return;
    closed_ = true;
    run_flushes();
    uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
}

}  // namespace s2s
