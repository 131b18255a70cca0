// Stream: its deadlines. The one deadline the owner arms (set_deadline(); also the connect
// timeout and the closing flush's limit) and the stanza deadline, which cuts off a stanza not
// finished within StreamOptions::stanza_timeout_ms of its first byte.
#include "proxy/stream/stream.h"

#include <string>

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

}  // namespace s2s
