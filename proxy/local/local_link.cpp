#include "proxy/local/local_link.h"

#include <utility>

namespace s2s {

void LocalLink::deliver(const std::string& remote, const std::string& local, QueuedStanza stanza) {
    if (shut_down_) {
        router_.bounce(stanza, StanzaError::ServiceUnavailable, "s2s-proxy is shutting down");
        return;
    }
    if (settings_.mode == LocalMode::Component) {
        if (!component_) component_ = new LocalComponent(ctx_, settings_, router_);
        component_->deliver(std::move(stanza));
        return;
    }
    auto it = outs_.find(local);
    if (it == outs_.end()) it = outs_.emplace(local, new LocalOut(ctx_, settings_, router_, local)).first;
    it->second->deliver(remote, std::move(stanza));
}

void LocalLink::shutdown(StreamError error, const std::string& why) {
    shut_down_ = true;
    std::map<std::string, LocalOut*> outs;
    outs.swap(outs_);
    for (auto& [local, out] : outs) out->shutdown(error, why);  // each frees itself when closed
    if (LocalComponent* c = std::exchange(component_, nullptr)) c->shutdown(error, why);
}

}  // namespace s2s
