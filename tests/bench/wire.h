// One TCP connection of the benchmark tools, with TLS when started: reads are decrypted and
// handed to the owner as plaintext; sends are queued (encrypted when TLS is open) and leave in one
// uv_write per flush(). The generator's links and the sink's connections sit on top of it.
//
// One thread per Wire (its loop's); several loops in several threads may each have their own.
// Lifetime: a Wire is a member of its owner. close() starts closing; Owner::on_closed() runs from
// libuv's close callback and is the last call (the owner may delete itself inside it).
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/tls/tls.h"

namespace s2s::bench {

class Wire {
public:
    class Owner {
    public:
        virtual void on_connected(int status) { (void)status; }      // 0 or a libuv error
        virtual void on_plain(const char* data, std::size_t len) = 0;  // decrypted bytes
        virtual void on_tls_ready() {}                                 // handshake finished
        virtual void on_written() {}                                   // a write completed
        virtual void on_closed(const std::string& reason) = 0;         // last call

    protected:
        ~Owner() = default;
    };

    Wire(uv_loop_t* loop, Owner& owner);
    ~Wire() = default;
    Wire(const Wire&) = delete;
    Wire& operator=(const Wire&) = delete;

    // Outbound: from `source` (may be null) to `target`.
    [[nodiscard]] int connect(const sockaddr* target, const sockaddr* source);
    // Inbound: takes the connection waiting on `listener` and starts reading.
    [[nodiscard]] int accept(uv_stream_t* listener);

    // TLS from now on. Queued plaintext leaves first, unencrypted (e.g. <proceed/>); a client
    // sends its ClientHello at once. Sends made during the handshake wait for it.
    void start_tls(std::shared_ptr<const tls::Context> context, const tls::SessionOptions& options = {});
    [[nodiscard]] const tls::Session* tls() const noexcept { return tls_.get(); }

    // Queues plaintext; flush() hands everything queued to libuv in one write.
    void send(std::string_view bytes);
    void flush();
    // Bytes handed to libuv and not yet written (what the kernel would not take at once).
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }

    void close(const std::string& reason);
    [[nodiscard]] bool closing() const noexcept { return closing_; }
    [[nodiscard]] bool is_open() const noexcept { return open_ && !closing_; }

private:
    struct WriteReq;
    static void on_connect(uv_connect_t* req, int status) noexcept;
    static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
    static void on_close(uv_handle_t* h) noexcept;
    void received(const char* data, std::size_t len);
    void write_raw(std::string bytes);

    uv_loop_t* loop_;
    Owner& owner_;
    uv_tcp_t tcp_{};
    uv_connect_t connect_req_{};
    std::unique_ptr<tls::Session> tls_;
    std::string out_;          // plaintext (or, before TLS, raw bytes) waiting for flush()
    std::size_t in_flight_ = 0;
    bool open_ = false;
    bool closing_ = false;
    bool handle_live_ = false;
    std::string close_reason_;
};

}  // namespace s2s::bench
