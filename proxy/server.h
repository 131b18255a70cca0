// The process: binds the configured listeners on one libuv loop and stops on SIGTERM/SIGINT.
//
// Streams are accepted here and handed to their protocol state machines (the public s2s side and
// the local link); until those land, an accepted connection is closed with a log line saying so.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "common/config.h"

namespace s2s {

class Server {
public:
    Server(uv_loop_t* loop, const Config& config);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds every listener; false with a message naming the address when one cannot be bound.
    [[nodiscard]] bool start(std::string* error);
    // Closes the listeners and signal handlers; the loop then ends once their close callbacks ran.
    void stop(const char* why);

private:
    struct Listener;
    static void on_connection(uv_stream_t* server, int status) noexcept;
    static void on_signal(uv_signal_t* handle, int signum) noexcept;
    bool listen(const s2s::Listener& conf, const char* kind, std::string* error);

    uv_loop_t* loop_;
    const Config& config_;
    std::vector<Listener*> listeners_;   // owned; freed in their close callbacks
    uv_signal_t sigterm_{}, sigint_{}, sighup_{};
    bool stopping_ = false;
};

}  // namespace s2s
