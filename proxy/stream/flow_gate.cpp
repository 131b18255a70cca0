#include "proxy/stream/flow_gate.h"

#include <algorithm>

#include "proxy/stream/stream.h"

namespace s2s {

FlowGate::FlowGate(FlowGate&& other) noexcept : held_(std::move(other.held_)) {
    other.held_.clear();
    for (Stream* s : held_) s->blocked_on_ = this;
}

void FlowGate::hold(Stream* source, const Stream* except) {
    if (!source || source == except || source->blocked_on_) return;
    source->blocked_on_ = this;
    held_.push_back(source);
    source->update_reading();
}

void FlowGate::open() {
    std::vector<Stream*> held;
    held.swap(held_);
    for (Stream* s : held) {
        s->blocked_on_ = nullptr;
        s->update_reading();
    }
}

void FlowGate::leave(const Stream* source) { held_.erase(std::remove(held_.begin(), held_.end(), source), held_.end()); }

}  // namespace s2s
