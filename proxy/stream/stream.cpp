#include "proxy/stream/stream.h"

#include <algorithm>

#include "common/base/log.h"
#include "common/net/net_address.h"

namespace s2s {

const char* Stream::state_name(State s) noexcept {
    switch (s) {
        case State::Idle: return "idle";
        case State::Connecting: return "connecting";
        case State::Open: return "open";
        case State::Closing: return "closing";
        case State::Closed: return "closed";
    }
    return "?";
}

Stream* Stream::create(EventLoop& loop, Owner& owner, xml::StreamOptions options, uint64_t id, Side side) {
    return new Stream(loop, owner, std::move(options), id, side);
}

Stream::Stream(EventLoop& loop, Owner& owner, xml::StreamOptions options, uint64_t id, Side side)
    : loop_(loop),
      owner_(owner),
      id_(id),
      side_(side),
      parser_(*this, std::move(options)),
      scope_(xml::NamespaceScope::server_stream()),
      out_(kHardLimit, kHighWater),
      inflight_(kHardLimit, kHighWater) {
    uv_tcp_init(loop_.uv(), &tcp_);
    uv_timer_init(loop_.uv(), &timer_);
    uv_timer_init(loop_.uv(), &stanza_timer_);
    tcp_.data = timer_.data = stanza_timer_.data = this;
    open_handles_ = 3;
}

Stream::~Stream() {
    loop_.cancel_flush(this);
    release_blocked();
    if (blocked_on_) blocked_on_->leave(this);
}

void Stream::update_reading() {
    if (!reading_ || state_ != State::Open) return;
    if (reading_stopped()) uv_read_stop(handle());
    else uv_read_start(handle(), shaped_reads() ? alloc_shaped : EventLoop::alloc_read_buffer, on_read);
}

// A shaped stream reads no more than its bucket holds, so what the kernel keeps back (and the
// TCP window) holds the sender to the rate, not just the pauses between reads.
void Stream::alloc_shaped(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept {
    EventLoop::alloc_read_buffer(h, suggested, buf);
    auto* self = static_cast<Stream*>(h->data);
    if (self->read_cap_ && self->read_cap_ < buf->len) buf->len = self->read_cap_;
    if (!self->bucket_) return;
    int64_t allowed = std::max<int64_t>(self->bucket_->available(self->loop_.now_ms()), kMinShapedRead);
    if (static_cast<uint64_t>(allowed) < buf->len) buf->len = static_cast<size_t>(allowed);
}

bool Stream::start() {
    uv_tcp_nodelay(&tcp_, 1);
    ++metrics().streams_opened[static_cast<int>(side_)];
    last_read_ = loop_.now_ms();
    state_ = State::Open;
    int rc = uv_read_start(handle(), shaped_reads() ? alloc_shaped : EventLoop::alloc_read_buffer, on_read);
    if (rc != 0) {
        abort(std::string("cannot read from the socket: ") + uv_strerror(rc));
        return false;
    }
    reading_ = true;
    return true;
}

bool Stream::connect(const sockaddr* addr, uint64_t timeout_ms) {
    state_ = State::Connecting;
    connect_req_.data = this;
    int rc = uv_tcp_connect(&connect_req_, &tcp_, addr, on_connect);
    if (rc != 0) {
        abort(std::string("connect failed: ") + uv_strerror(rc));
        return false;
    }
    if (timeout_ms > 0) {
        timer_is_connect_ = true;
        uv_timer_start(&timer_, on_timer, timeout_ms, 0);
    }
    return true;
}

void Stream::on_connect(uv_connect_t* req, int status) noexcept {
    auto* self = static_cast<Stream*>(req->data);
    if (self->state_ != State::Connecting) return;  // aborted meanwhile (timeout, shutdown)
    if (self->timer_is_connect_) {
        uv_timer_stop(&self->timer_);
        self->timer_is_connect_ = false;
    }
    if (status == 0) {
        if (!self->start()) return;
        if (!self->out_.empty()) self->loop_.schedule_flush(self);
    }
    self->owner_.on_connected(status);
    if (status != 0) self->abort(std::string("connect failed: ") + uv_strerror(status));
}

void Stream::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<Stream*>(s->data);
    if (nread == 0) return;
    if (nread < 0) {
        self->abort(nread == UV_EOF ? "the peer closed the connection" : std::string("read failed: ") + uv_strerror(static_cast<int>(nread)));
        return;
    }
    self->last_read_ = self->loop_.now_ms();
    self->trimmed_ = false;
    metrics().bytes_in[static_cast<int>(self->side_)] += static_cast<uint64_t>(nread);
    if (self->proxy_) self->feed_proxy(buf->base, static_cast<size_t>(nread));
    else self->feed_stream(buf->base, static_cast<size_t>(nread));
    self->watch_stanza();
    if (self->bucket_) self->shape(static_cast<size_t>(nread));
}

// ---- shaper -------------------------------------------------------------------------------------

void Stream::set_rate_limit(uint64_t bytes_per_second) {
    if (bytes_per_second == 0) {
        bucket_.reset();
        if (shaper_timer_) uv_timer_stop(shaper_timer_);
        shaped_ = false;
        update_reading();
        return;
    }
    if (bucket_) {
        bucket_->set_rate(bytes_per_second);
        return;
    }
    bucket_ = std::make_unique<TokenBucket>(bytes_per_second, loop_.now_ms());
    update_reading();  // reads are sized by the bucket from now on
}

void Stream::cap_reads(size_t bytes) {
    read_cap_ = bytes;
    if (reading_ && state_ == State::Open && !reading_stopped()) uv_read_stop(handle());  // (to change the alloc)
    update_reading();
}

void Stream::shape(size_t bytes_read) {
    uint64_t wait = bucket_->take(bytes_read, loop_.now_ms());
    if (wait == 0 || state_ != State::Open) return;
    if (!shaper_timer_) shaper_timer_ = new_timer();
    shaped_ = true;
    update_reading();
    uv_timer_start(shaper_timer_, on_shaper_timer, wait, 0);
}

void Stream::on_shaper_timer(uv_timer_t* t) noexcept {
    auto* self = static_cast<Stream*>(t->data);
    self->shaped_ = false;
    self->update_reading();
}

// ---- the PROXY header stage -----------------------------------------------------------------------

bool Stream::expect_proxy_header(const NetworkList& trusted) {
    sockaddr_storage ss{};
    int len = sizeof ss;
    bool ok = uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) == 0;
    proxy_ = std::make_unique<ProxyStage>(ok && trusted.contains(reinterpret_cast<const sockaddr*>(&ss)));
    return proxy_->trusted();
}

// The first bytes, until the stage decides; then what follows goes on as stream bytes (TLS or
// XML, whichever the owner set up when it heard the outcome).
void Stream::feed_proxy(const char* data, size_t len) {
    ProxyStageFeed r = proxy_->feed(data, len);
    if (r.outcome == ProxyOutcome::pending) return;
    std::unique_ptr<ProxyStage> stage = std::move(proxy_);
    if (r.outcome == ProxyOutcome::proxied) client_ = stage->parser().source();
    owner_.on_proxy_header(*stage);
    if (is_refusal(r.outcome)) {
        abort("PROXY protocol: " + stage->describe());
        return;
    }
    std::string_view held = stage->held();
    if (!held.empty()) feed_stream(held.data(), held.size());
    feed_stream(data + r.consumed, len - r.consumed);
}

void Stream::feed_stream(const char* data, size_t len) {
    if (state_ != State::Open || len == 0) return;
    if (tls_) feed_tls(data, len);
    else feed(data, len);
}

void Stream::feed(const char* data, size_t len) {
    const bool had_tls = tls_ != nullptr;  // then `data` is plaintext TLS already gave us
    while (len > 0 && state_ == State::Open) {
        xml::FeedResult r = parser_.feed(data, len);
        if (r.status != xml::FeedStatus::Stopped) return;
        data += r.consumed;
        len -= r.consumed;
        // The owner started TLS inside a callback (after <proceed/>): the rest is TLS.
        if (tls_ && !had_tls) {
            feed_tls(data, len);
            return;
        }
        // The owner started a new stream inside a callback: the rest belongs to it.
        if (parser_.state() != xml::XmlStream::State::AwaitingHeader) return;
    }
}

// ---- parser events, passed on while the stream is open ------------------------------------------

void Stream::on_stream_open(const xml::StreamHeader& header) {
    if (state_ == State::Open) owner_.on_stream_open(header);
}

void Stream::on_stanza(xml::Document& stanza) {
    if (state_ == State::Open) owner_.on_stanza(stanza);
}

void Stream::on_stream_close() {
    if (state_ == State::Open) owner_.on_stream_close();
}

void Stream::on_stream_error(StreamError error, std::string_view text) {
    if (xml::LimitHit hit = parser_.limit_hit(); hit != xml::LimitHit::None && state_ == State::Open) {
        metrics().stanza_limits.add(xml::limit_name(hit));
        if (hit == xml::LimitHit::Budget) {
            S2S_LOG_WARNING(LogContext{id_, {}, {}}, "stanza-limit",
                            "unfinished stanzas hold more than general.stanza_memory_budget (%zu bytes): the "
                            "largest, from %s, is cut off with resource-constraint",
                            xml::XmlStream::memory_budget(), peer_address().c_str());
        } else {
            S2S_LOG_NOTICE(LogContext{id_, {}, {}}, "stanza-limit", "%s from %s: %.*s", xml::limit_name(hit),
                           peer_address().c_str(), static_cast<int>(text.size()), text.data());
        }
    }
    if (state_ == State::Open) owner_.on_stream_error(error, text);
}

// ---- output --------------------------------------------------------------------------------------

void Stream::send(std::string_view bytes, Stream* source) {
    if (state_ != State::Open && state_ != State::Connecting) return;
    last_sent_ = loop_.now_ms();
    if (tls_) {
        if (plain_out_.size() + bytes.size() > kHardLimit) {
            abort("the peer is not reading: more than " + std::to_string(kHardLimit) + " bytes queued");
            return;
        }
        plain_out_.append(bytes);
        if (congested()) was_congested_ = true;
        loop_.schedule_flush(this);
        push_back_on_source(source);
        return;
    }
    if (!out_.append(bytes)) {
        abort("the peer is not reading: more than " + std::to_string(kHardLimit) + " bytes queued");
        return;
    }
    if (congested()) was_congested_ = true;
    loop_.schedule_flush(this);
    push_back_on_source(source);
}

// The source is feeding this stream faster than its peer takes it: stop reading the source until
// this stream drains (libuv's read stop is cheap; the TCP window then slows the sender).
void Stream::push_back_on_source(Stream* source) {
    if (congested()) output_gate_.hold(source, this);
}

void Stream::send(const xml::Element& element) {
    std::string bytes;
    xml::serialize(element, scope_, bytes);
    send(bytes);
}

void Stream::flush() noexcept {
    if (state_ != State::Open && state_ != State::Closing) return;
    if (tls_ && !plain_out_.empty() && tls_->state() == tls::State::Open) {
        if (tls_->write_plaintext(plain_out_) == tls::IoResult::Failed) {
            abort("TLS: " + tls_->failure_reason());
            return;
        }
        plain_out_.clear();
        if (plain_out_.capacity() > 64 * 1024) plain_out_.shrink_to_fit();
        if (!take_tls_output()) return;
    }
    if (!inflight_.empty()) return;
    if (out_.empty()) {
        if (state_ == State::Closing) finish_close();
        else drained();
        return;
    }
    uv_buf_t b = uv_buf_init(const_cast<char*>(out_.data()), static_cast<unsigned>(out_.size()));
    int n = uv_try_write(handle(), &b, 1);
    if (n > 0) {
        out_.consume(static_cast<size_t>(n));
        metrics().bytes_out[static_cast<int>(side_)] += static_cast<uint64_t>(n);
        send_progress();
    }
    else if (n < 0 && n != UV_EAGAIN) {
        abort(std::string("write failed: ") + uv_strerror(n));
        return;
    }
    if (!out_.empty()) {
        std::swap(out_, inflight_);  // out_ takes new bytes while inflight_ is written
        b = uv_buf_init(const_cast<char*>(inflight_.data()), static_cast<unsigned>(inflight_.size()));
        write_req_.data = this;
        int rc = uv_write(&write_req_, handle(), &b, 1, on_write);
        if (rc != 0) {
            abort(std::string("write failed: ") + uv_strerror(rc));
            return;
        }
        metrics().bytes_out[static_cast<int>(side_)] += inflight_.size();
        watch_send();
        return;
    }
    out_.shrink();
    if (state_ == State::Closing) {
        finish_close();
        return;
    }
    drained();
}

// Everything queued is written: sources that waited for us read again, and the owner is told.
void Stream::drained() {
    if (!was_congested_) return;
    was_congested_ = false;
    release_blocked();
    owner_.on_drained();
}

void Stream::on_write(uv_write_t* req, int status) noexcept {
    auto* self = static_cast<Stream*>(req->data);
    self->inflight_.clear();
    self->inflight_.shrink();
    if (self->state_ == State::Closed) return;
    if (status != 0) {
        self->abort(std::string("write failed: ") + uv_strerror(status));
        return;
    }
    self->send_progress();
    self->flush();
}

// ---- reading control and closing --------------------------------------------------------------------

void Stream::reset_parser() { parser_.reset(); }

bool Stream::trim_if_idle(uint64_t now_ms, uint64_t idle_ms) {
    if (trimmed_ || state_ != State::Open || now_ms - last_read_ < idle_ms) return false;
    if (!out_.empty() || !inflight_.empty() || !plain_out_.empty()) return false;
    if (parser_.state() == xml::XmlStream::State::Open && !parser_.release_parser()) return false;
    if (tls_) tls_->release_idle_memory();
    out_.shrink();
    inflight_.shrink();
    plain_out_.shrink_to_fit();
    trimmed_ = true;
    return true;
}

void Stream::pause_reading() {
    paused_ = true;
    update_reading();
}

void Stream::resume_reading() {
    if (!paused_) return;
    paused_ = false;
    update_reading();
}

void Stream::close(const std::string& reason) {
    if (state_ == State::Closing || state_ == State::Closed) return;
    if (state_ != State::Open) {
        abort(reason);
        return;
    }
    state_ = State::Closing;
    close_reason_ = reason;
    release_blocked();  // a closing stream takes nothing more: the sources it held read again
    parser_.stop();
    if (tls_ && tls_->state() == tls::State::Open) {
        if (!plain_out_.empty()) (void)tls_->write_plaintext(plain_out_);  // what was queued goes first
        plain_out_.clear();
        tls_->close_notify();
        take_tls_output();
    }
    if (reading_) uv_read_stop(handle());
    uv_timer_start(&timer_, on_timer, kCloseFlushMs, 0);
    loop_.schedule_flush(this);
}

void Stream::end(const std::string& why, std::string_view last) {
    std::string bytes(last);
    bytes += "</stream:stream>";
    send(bytes);
    close(why);
}

void Stream::end_with(StreamError error, std::string_view text, const std::string& why, std::string_view header) {
    if (state_ == State::Closing || state_ == State::Closed) return;  // already ending: nothing is sent
    metrics().stream_errors.add(name(error));
    std::string before(header);
    append_stream_error(before, error, text);
    end(why, before);
}

void Stream::end_unsent(StreamError error, const std::string& why) {
    if (state_ == State::Closing || state_ == State::Closed) return;
    metrics().stream_errors.add(name(error));
    close(why);
}

void Stream::abort(const std::string& reason) {
    if (state_ == State::Closed) return;
    if (state_ != State::Closing) close_reason_ = reason;  // a graceful close keeps its first reason
    out_.clear();
    finish_close();
}

void Stream::finish_close() {
    if (state_ == State::Closed) return;
    state_ = State::Closed;
    release_blocked();  // sources waiting for a stream that is gone read again
    parser_.stop();
    loop_.cancel_flush(this);
    free_timer(shaper_timer_);
    free_timer(send_timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&stanza_timer_), on_handle_closed);
}

uv_timer_t* Stream::new_timer() {
    auto* t = new uv_timer_t;
    uv_timer_init(loop_.uv(), t);
    t->data = this;
    return t;
}

void Stream::free_timer(uv_timer_t*& t) {
    if (!t) return;
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    t = nullptr;
}

void Stream::on_handle_closed(uv_handle_t* h) noexcept {
    auto* self = static_cast<Stream*>(h->data);
    if (--self->open_handles_ > 0) return;
    self->owner_.on_closed(self->close_reason_);
    delete self;
}

bool Stream::peer_sockaddr(sockaddr_storage* out) const {
    if (client_.ss_family != AF_UNSPEC) {
        *out = client_;
        return true;
    }
    int len = sizeof *out;
    return uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(out), &len) == 0;
}

std::string Stream::peer_address() const {
    sockaddr_storage ss{};
    if (!peer_sockaddr(&ss)) return "?";
    return format_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
}

std::string Stream::socket_peer_address() const {
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    return format_sockaddr(reinterpret_cast<const sockaddr*>(&ss));
}

}  // namespace s2s
