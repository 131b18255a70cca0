// What every stream state machine of the proxy shares: the config, the loop, the dialback keys,
// the policy, and the router it hands stanzas to. One per process; streams hold a reference.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/config.h"
#include "common/event_loop.h"
#include "common/xml.h"
#include "proxy/connection.h"
#include "proxy/dialback.h"
#include "proxy/policy.h"

namespace s2s {

// Where stanzas accepted from a remote server go (the local link), and who checks dialback keys
// with a remote domain's authoritative server (the outbound side).
class Router {
public:
    // A stanza from `remote` for `local`, accepted on an authenticated stream.
    virtual void from_remote(std::string_view remote, std::string_view local, xml::Document& stanza) = 0;

    enum class Verdict { Valid, Invalid, Failed };
    using VerifyDone = std::function<void(Verdict verdict, const std::string& why)>;
    // Asks the authoritative server of `originating` whether `key` is one it issued for a stream
    // from it to `receiving` with this id. `done` runs exactly once, later (never inside this
    // call), unless cancel() was called first. Returns a token for cancel().
    virtual uint64_t verify_dialback(const std::string& receiving, const std::string& originating,
                                     const std::string& stream_id, const std::string& key, VerifyDone done) = 0;
    virtual void cancel_verify(uint64_t token) = 0;

protected:
    ~Router() = default;
};

struct ProxyContext {
    const Config& config;
    EventLoop& loop;
    const DialbackKeys& keys;
    const PolicyRules& policy;
    Router& router;
    ConnectionSet connections;
    uint64_t last_conn_id = 0;

    [[nodiscard]] uint64_t next_conn_id() { return ++last_conn_id; }
    // Whether `domain` (normalised) is one of general.hosts.
    [[nodiscard]] bool is_local(std::string_view domain) const;
};

}  // namespace s2s
