// The local side of the router: one LocalOut per local domain (local.mode = "s2s"), or one
// LocalComponent for every domain (local.mode = "component"), made when first needed.
#pragma once

#include <map>
#include <string>

#include "proxy/local/local_component.h"
#include "proxy/local/local_out.h"
#include "proxy/routing/router.h"

namespace s2s {

class LocalLink final : public LocalSide {
public:
    LocalLink(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router)
        : ctx_(ctx), settings_(settings), router_(router) {}

    void deliver(const std::string& remote, const std::string& local, QueuedStanza stanza) override;
    // Closes every local stream for good; later stanzas are bounced.
    void shutdown(StreamError error, const std::string& why);

private:
    bool shut_down_ = false;
    ProxyContext& ctx_;
    const LocalSettings& settings_;
    ProxyRouter& router_;
    std::map<std::string, LocalOut*> outs_;  // by local domain; each frees itself on shutdown
    LocalComponent* component_ = nullptr;    // component mode; frees itself on shutdown
};

}  // namespace s2s
