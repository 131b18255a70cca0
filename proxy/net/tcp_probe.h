// A one-shot TCP connect check (the readiness probe asks whether the local server accepts
// connections): connects, closes at once, and reports 0 or a libuv error within a deadline.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>

namespace s2s {

// `done` runs exactly once, from a later loop callback: 0 when the connection was accepted,
// UV_ETIMEDOUT after timeout_ms, or the connect error.
void probe_tcp(uv_loop_t* loop, const sockaddr* address, uint64_t timeout_ms, std::function<void(int status)> done);

}  // namespace s2s
