// Stream: its deadlines. The one deadline the owner arms (set_deadline(); also the connect
// timeout and the closing flush's limit), the stanza deadline, which cuts off a stanza not
// finished within StreamOptions::stanza_timeout_ms of its first byte, and the send deadline, which
// ends a stream whose peer stops taking our output for StreamOptions::send_timeout_ms.
#include "proxy/stream/stream.h"

#include <string>

#include "common/base/log.h"

namespace s2s {

// ---- deadline ----------------------------------------------------------------------------------

void Stream::set_deadline(uint64_t ms) {
    if (state_ == State::Closing || state_ == State::Closed) return;
    timer_is_connect_ = false;
    if (ms == 0) uv_timer_stop(&timer_);
    else uv_timer_start(&timer_, on_timer, ms, 0);
}

void Stream::on_timer(uv_timer_t* t) noexcept {
    auto* self = static_cast<Stream*>(t->data);
    switch (self->state_) {
        case State::Connecting:
            self->owner_.on_connected(UV_ETIMEDOUT);
            self->abort("connect timed out");
            return;
        case State::Closing:
            self->close_reason_ += " (and the peer did not take the rest of the output)";
            self->abort(self->close_reason_);
            return;
        case State::Open:
            if (self->tls_ && self->tls_->state() == tls::State::Handshaking) metrics().tls_failures.add("timeout");
            self->owner_.on_timeout();
            return;
        default: return;
    }
}

// ---- the stanza deadline ------------------------------------------------------------------------

// After every read: a stanza left unfinished starts its clock (unless it is the one already
// timed). The timer is armed once and left running: when it fires it looks at the stanza then
// pending, so a busy stream costs no timer update per read.
void Stream::watch_stanza() {
    const uint64_t timeout = parser_.options().stanza_timeout_ms;
    if (timeout == 0 || state_ != State::Open) return;
    if (parser_.unfinished_bytes() == 0) {
        stanza_pending_ = false;
        return;
    }
    if (stanza_pending_ && parser_.items_done() == stanza_item_) return;
    stanza_pending_ = true;
    stanza_since_ = loop_.now_ms();
    stanza_item_ = parser_.items_done();
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&stanza_timer_)))
        uv_timer_start(&stanza_timer_, on_stanza_timer, timeout, 0);
}

void Stream::on_stanza_timer(uv_timer_t* t) noexcept {
    auto* self = static_cast<Stream*>(t->data);
    if (self->state_ != State::Open || !self->stanza_pending_) return;
    const uint64_t timeout = self->parser_.options().stanza_timeout_ms;
    const uint64_t now = self->loop_.now_ms();
    // While we hold reading back (backpressure, shaper), the rest of the stanza waits on our
    // side: its clock starts again.
    if (self->reading_stopped()) self->stanza_since_ = now;
    const uint64_t age = now - self->stanza_since_;
    if (age < timeout) {
        uv_timer_start(t, on_stanza_timer, timeout - age, 0);
        return;
    }
    self->stanza_pending_ = false;
    self->parser_.cut_off(StreamError::PolicyViolation,
                          "stanza not complete within " + std::to_string(timeout) + " ms of its first byte",
                          xml::LimitHit::Timeout);
}

// ---- the send deadline --------------------------------------------------------------------------

// Bytes now wait for the kernel (a uv_write is under way): the clock starts, unless it runs
// already. As with the stanza deadline, the timer is armed once and left running: progress only
// moves send_since_, and the timer looks at the output when it fires.
void Stream::watch_send() {
    const uint64_t timeout = parser_.options().send_timeout_ms;
    if (timeout == 0 || state_ != State::Open) return;
    if (!send_timer_) send_timer_ = new_timer();
    if (uv_is_active(reinterpret_cast<uv_handle_t*>(send_timer_))) return;
    send_since_ = loop_.now_ms();
    send_left_ = uv_stream_get_write_queue_size(handle());
    uv_timer_start(send_timer_, on_send_timer, timeout, 0);
}

// The kernel took bytes: progress, unless more than kHighWater still waits (a peer that reads a
// little now and then must not hold a congested stream, and the streams it holds back, forever).
void Stream::send_progress() {
    if (send_timer_ && waiting_output() <= kHighWater) send_since_ = loop_.now_ms();
}

// What the peer has yet to take: the part of the write under way the kernel has not taken, and
// what is queued behind it.
size_t Stream::waiting_output() const {
    return uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_)) + out_.size() +
           plain_out_.size();
}

void Stream::on_send_timer(uv_timer_t* t) noexcept {
    auto* self = static_cast<Stream*>(t->data);
    // Closing: the closing flush has its own limit (kCloseFlushMs). Nothing under way: the clock
    // stops, and the next write starts it again.
    if (self->state_ != State::Open || self->inflight_.empty()) return;
    const uint64_t now = self->loop_.now_ms();
    // Part of a write taken since the last look is progress too (a write's callback comes only
    // once all of it is taken).
    size_t left = uv_stream_get_write_queue_size(self->handle());
    if (left < self->send_left_) self->send_progress();
    self->send_left_ = left;
    const uint64_t timeout = self->parser_.options().send_timeout_ms;
    const uint64_t waited = now - self->send_since_;
    if (waited < timeout) {
        uv_timer_start(t, on_send_timer, timeout - waited, 0);
        return;
    }
    self->send_timed_out();
}

void Stream::send_timed_out() {
    const std::string waited = std::to_string(parser_.options().send_timeout_ms) + " ms";
    const size_t waiting = waiting_output();
    std::string why = waiting > kHighWater ? "the peer left more than " + std::to_string(kHighWater) +
                                                 " bytes of our output waiting for " + waited
                                           : "the peer took none of our output for " + waited;
    why += " (" + std::to_string(waiting) + " bytes waiting)";
    ++metrics().send_timeouts[static_cast<int>(side_)];
    S2S_LOG_INFO(LogContext{id_, {}, {}}, "send-timeout", "%s: %s", peer_address().c_str(), why.c_str());
    owner_.on_send_timeout(why);
    if (state_ != State::Open) return;  // the owner ended the stream its own way
    if (tls_ && tls_->state() == tls::State::Handshaking) end_unsent(StreamError::ConnectionTimeout, why);
    else end_with(StreamError::ConnectionTimeout, "the peer stopped reading", why);
}

}  // namespace s2s
