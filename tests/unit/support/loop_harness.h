// One libuv loop for a test, with a listener on 127.0.0.1 and scripted peers built on Stream:
// the libuv way of testing (fake peers in the same loop, counters checked after running it, and
// a final check that the loop closes clean).
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/base/event_loop.h"
#include "proxy/stream/stream.h"

namespace s2s::test {

// A scripted peer: records what its Stream reports and runs hooks on events.
struct Peer : Stream::Owner {
    Stream* stream = nullptr;
    std::vector<std::string> events;     // "open from=X", "stanza NAME", "close", "error COND", ...
    std::vector<std::string> stanzas;    // each stanza received, serialized
    std::string closed_reason;
    std::string send_timeout_why;         // what on_send_timeout() was told
    bool closed = false;
    int connect_status = 1;              // 1: not yet
    std::function<void(Peer&)> on_connect_hook, on_open_hook, on_stanza_hook, on_tls_hook;
    std::function<void(Peer&)> on_send_timeout_hook;  // may end the stream; if not, it ends itself

    void on_connected(int status) override;
    void on_stream_open(const xml::StreamHeader& h) override;
    void on_stanza(xml::Document& d) override;
    void on_stream_close() override;
    void on_stream_error(StreamError e, std::string_view text) override;
    void on_tls_established() override;
    void on_timeout() override;
    void on_send_timeout(const std::string& why) override;
    void on_closed(const std::string& reason) override;

    // The last stanza received, serialized ("" if none).
    [[nodiscard]] std::string last() const { return stanzas.empty() ? "" : stanzas.back(); }
    // Whether any received stanza contains `text`.
    [[nodiscard]] bool saw(const std::string& text) const;
};

class TestLoop {
public:
    TestLoop();
    ~TestLoop();
    TestLoop(const TestLoop&) = delete;
    TestLoop& operator=(const TestLoop&) = delete;

    uv_loop_t* uv() { return &uv_; }
    EventLoop& loop() { return *loop_; }

    // Listens on 127.0.0.1:<ephemeral>; each connection is handed to on_accept(listener).
    void listen(std::function<void(uv_stream_t*)> on_accept);
    [[nodiscard]] const sockaddr* address() const { return reinterpret_cast<const sockaddr*>(&addr_); }
    // Another listener on `ip` (a loopback address):<ephemeral>, closed with the first; returns its
    // address. Each connection is handed to on_accept(listener).
    const sockaddr* listen_more(const char* ip, std::function<void(uv_stream_t*)> on_accept);

    // A new peer owned by this loop (it outlives every stream of the test).
    Peer& new_peer();
    // Connects a peer to the listener.
    void connect(Peer& p, uint64_t id = 1000);
    // Aborts the peers' streams and runs the loop until the other ends have closed too.
    // Called by the destructor; call it earlier when objects the servers use go away first.
    void shutdown(const std::function<bool()>& all_closed = nullptr);

    // Runs the loop until pred() holds or 5 s passed; returns pred().
    bool run_until(const std::function<bool()>& pred, uint64_t max_ms = 5000);
    void run_for(uint64_t ms);

private:
    uv_loop_t uv_{};
    EventLoop* loop_ = nullptr;
    uv_tcp_t listener_{};
    bool listening_ = false;
    sockaddr_in addr_{};
    std::function<void(uv_stream_t*)> on_accept_;
    struct Listener {
        uv_tcp_t tcp{};
        sockaddr_in addr{};
        std::function<void(uv_stream_t*)> on_accept;
    };
    std::deque<Listener> more_;  // listen_more()
    std::deque<std::unique_ptr<Peer>> peers_;
    bool shut_down_ = false;
};

}  // namespace s2s::test
