#include "tests/bench/wire.h"

#include <cstdlib>
#include <utility>

namespace s2s::bench {

struct Wire::WriteReq {
    uv_write_t req{};
    std::string bytes;
    Wire* wire = nullptr;
};

namespace {
// One read buffer for every connection of a thread (each read is consumed before the next).
thread_local char g_read_buffer[64 * 1024];
// Plaintext of the read being processed (reused: no allocation per read).
thread_local std::string g_plain;
}  // namespace

Wire::Wire(uv_loop_t* loop, Owner& owner) : loop_(loop), owner_(owner) {
    uv_tcp_init(loop_, &tcp_);
    tcp_.data = this;
    handle_live_ = true;
}

int Wire::connect(const sockaddr* target, const sockaddr* source) {
    if (source) {
        int rc = uv_tcp_bind(&tcp_, source, 0);
        if (rc != 0) return rc;
    }
    connect_req_.data = this;
    return uv_tcp_connect(&connect_req_, &tcp_, target, on_connect);
}

void Wire::on_connect(uv_connect_t* req, int status) noexcept {
    auto* self = static_cast<Wire*>(req->data);
    if (self->closing_) return;
    if (status == 0) {
        self->open_ = true;
        uv_tcp_nodelay(&self->tcp_, 1);
        uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), on_alloc, on_read);
    }
    self->owner_.on_connected(status);
    if (status != 0) self->close(std::string("connect: ") + uv_strerror(status));
}

int Wire::accept(uv_stream_t* listener) {
    int rc = uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_));
    if (rc != 0) return rc;
    open_ = true;
    uv_tcp_nodelay(&tcp_, 1);
    return uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read);
}

void Wire::start_tls(std::shared_ptr<const tls::Context> context, const tls::SessionOptions& options) {
    flush();  // what was queued before (e.g. <proceed/>) leaves in plaintext
    tls_ = std::make_unique<tls::Session>(std::move(context), options);
    if (tls_->state() == tls::State::Failed) {
        close("TLS setup: " + tls_->failure_reason());
        return;
    }
    if (tls_->role() == tls::Role::Client) {
        (void)tls_->handshake();
        if (tls_->has_output()) write_raw(std::string(tls_->take_ciphertext().view()));
    }
}

void Wire::send(std::string_view bytes) { out_.append(bytes); }

void Wire::flush() {
    if (!is_open() || out_.empty()) return;
    if (!tls_) {
        std::string bytes;
        bytes.swap(out_);
        write_raw(std::move(bytes));
        return;
    }
    if (tls_->state() != tls::State::Open) return;  // sent once the handshake is done
    if (tls_->write_plaintext(out_) != tls::IoResult::Ok) {
        close("TLS write: " + tls_->failure_reason());
        return;
    }
    out_.clear();
    if (tls_->has_output()) write_raw(std::string(tls_->take_ciphertext().view()));
}

void Wire::write_raw(std::string bytes) {
    if (bytes.empty() || !is_open()) return;
    auto* w = new WriteReq;
    w->bytes = std::move(bytes);
    w->wire = this;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    in_flight_ += w->bytes.size();
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, on_write);
    if (rc != 0) {
        in_flight_ -= w->bytes.size();
        delete w;
        close(std::string("write: ") + uv_strerror(rc));
    }
}

void Wire::on_write(uv_write_t* req, int status) noexcept {
    auto* w = static_cast<WriteReq*>(req->data);
    Wire* self = w->wire;
    self->in_flight_ -= w->bytes.size();
    delete w;
    if (status == UV_ECANCELED) return;  // closing: the wire may be gone after its close callback
    if (status != 0) {
        self->close(std::string("write: ") + uv_strerror(status));
        return;
    }
    if (!self->closing_) self->owner_.on_written();
}

void Wire::on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) noexcept {
    *buf = uv_buf_init(g_read_buffer, sizeof g_read_buffer);
}

void Wire::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept {
    auto* self = static_cast<Wire*>(s->data);
    if (nread == 0 || self->closing_) return;
    if (nread < 0) {
        self->close(nread == UV_EOF ? "peer closed the connection" : std::string("read: ") + uv_strerror(static_cast<int>(nread)));
        return;
    }
    self->received(buf->base, static_cast<std::size_t>(nread));
    if (!self->closing_) self->flush();
}

void Wire::received(const char* data, std::size_t len) {
    if (!tls_) {
        owner_.on_plain(data, len);
        return;
    }
    if (!tls_->feed_ciphertext(data, len)) {
        close("TLS input: " + tls_->failure_reason());
        return;
    }
    if (tls_->state() == tls::State::Handshaking) {
        tls::Progress p = tls_->handshake();
        if (tls_->has_output()) write_raw(std::string(tls_->take_ciphertext().view()));
        if (p == tls::Progress::WantMore) return;
        if (p == tls::Progress::Failed) {
            close("TLS handshake: " + tls_->failure_reason());
            return;
        }
        owner_.on_tls_ready();
        if (closing_) return;
    }
    g_plain.clear();
    tls::IoResult r = tls_->read_plaintext(g_plain);
    if (!g_plain.empty()) owner_.on_plain(g_plain.data(), g_plain.size());  // never re-entered
    if (closing_) return;
    if (r == tls::IoResult::Closed) close("peer closed TLS");
    else if (r == tls::IoResult::Failed) close("TLS read: " + tls_->failure_reason());
}

void Wire::close(const std::string& reason) {
    if (closing_) return;
    closing_ = true;
    close_reason_ = reason;
    if (handle_live_) uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

void Wire::on_close(uv_handle_t* h) noexcept {
    auto* self = static_cast<Wire*>(h->data);
    self->handle_live_ = false;
    self->open_ = false;
    std::string reason = std::move(self->close_reason_);
    self->owner_.on_closed(reason);  // may delete the owner, and this wire with it
}

}  // namespace s2s::bench
