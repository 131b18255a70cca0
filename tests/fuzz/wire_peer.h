// Shared by the stream fuzz targets (fuzz_s2s_in, fuzz_s2s_out, fuzz_admin): one libuv loop for
// the whole process and a remote peer that is a plain blocking socket on loopback, written and
// drained from the fuzzer's thread between turns of the loop. Loopback TCP hands written bytes to
// the other end before send() returns, so one turn of the loop (UV_RUN_NOWAIT) reads them: a run
// is the same for the same input. Every wait has a deadline; a broken one aborts.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "common/base/event_loop.h"
#include "common/base/log.h"

namespace fuzzwire {

[[noreturn]] inline void die(const char* why) {
    std::fprintf(stderr, "fuzz: %s\n", why);
    std::abort();
}

// The process's loop; logs go nowhere (their formatting still runs).
struct Loop {
    uv_loop_t uv{};
    s2s::EventLoop* loop = nullptr;
    Loop() {
        if (uv_loop_init(&uv) != 0) die("uv_loop_init");
        loop = new s2s::EventLoop(&uv);
        s2s::set_log_sink([](s2s::LogLevel, std::string_view) {});
    }
    static Loop& get() {
        static Loop* l = new Loop();  // never destroyed: libFuzzer exits without tearing down
        return *l;
    }
    void turn(int n = 2) {
        for (int i = 0; i < n; ++i) uv_run(&uv, UV_RUN_NOWAIT);
    }
    // Turns the loop (waiting for events up to the deadline) until pred() holds.
    bool run_until(const std::function<bool()>& pred, int max_ms = 5000) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
        while (!pred()) {
            if (std::chrono::steady_clock::now() > until) return false;
            uv_run(&uv, UV_RUN_ONCE);
        }
        return true;
    }
};

// A loopback listener on the loop (127.0.0.1, ephemeral port) calling on_accept per connection.
struct Listener {
    uv_tcp_t tcp{};
    sockaddr_in addr{};
    std::function<void(uv_stream_t*)> on_accept;
    explicit Listener(std::function<void(uv_stream_t*)> accept) : on_accept(std::move(accept)) {
        Loop& l = Loop::get();
        uv_tcp_init(&l.uv, &tcp);
        tcp.data = this;
        uv_ip4_addr("127.0.0.1", 0, &addr);
        if (uv_tcp_bind(&tcp, reinterpret_cast<const sockaddr*>(&addr), 0) != 0) die("bind");
        if (uv_listen(reinterpret_cast<uv_stream_t*>(&tcp), 128, [](uv_stream_t* s, int status) {
                if (status == 0) static_cast<Listener*>(s->data)->on_accept(s);
            }) != 0)
            die("listen");
        int len = sizeof addr;
        uv_tcp_getsockname(&tcp, reinterpret_cast<sockaddr*>(&addr), &len);
    }
    uint16_t port() const { return ntohs(addr.sin_port); }
};

// The remote end: a blocking socket. What the proxy sends is read and counted (kept up to a cap
// for checks), so its output never backs up.
struct Peer {
    int fd = -1;
    std::string got;
    size_t got_bytes = 0;
    bool eof = false;
    static constexpr size_t kKeep = 64 * 1024;

    void adopt(int f) {
        fd = f;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // An abortive close (RST) at the end: no TIME_WAIT pile-up over millions of runs.
        linger lg{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    // Connects to 127.0.0.1:port (the listen backlog completes it at once).
    void connect_to(uint16_t port) {
        got.clear();
        got_bytes = 0;
        eof = false;
        int f = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (f < 0) die("socket");
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(f, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
        adopt(f);
    }
    // Writes what fits without blocking; false once the other end is gone.
    bool write(const char* p, size_t n) {
        while (n > 0) {
            const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) return false;  // reset, or its buffer full: the proxy stopped reading
            p += w;
            n -= static_cast<size_t>(w);
        }
        return true;
    }
    // Reads whatever is there now.
    void drain() {
        char buf[16384];
        while (!eof) {
            const ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                eof = true;
                break;
            }
            if (r < 0) break;
            got_bytes += static_cast<size_t>(r);
            if (got.size() < kKeep) got.append(buf, std::min<size_t>(static_cast<size_t>(r), kKeep - got.size()));
        }
    }
    void half_close() { ::shutdown(fd, SHUT_WR); }
    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

// Splits `n` bytes into chunks of 1..97 bytes from a seed, the way a network would.
struct Chunker {
    uint32_t rng;
    explicit Chunker(uint8_t seed) : rng(0x9e3779b9u ^ seed) {}
    size_t next() {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        return 1 + rng % 97;
    }
};

}  // namespace fuzzwire
