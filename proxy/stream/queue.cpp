#include "proxy/stream/queue.h"

#include <utility>

namespace s2s {

QueuedStanza QueuedStanza::capture(const xml::Element& e, const xml::NamespaceScope& scope) {
    QueuedStanza q;
    xml::serialize(e, scope, q.bytes);
    q.name = std::string(e.name());
    q.from = std::string(e.attr("from").value_or(""));
    q.to = std::string(e.attr("to").value_or(""));
    q.id = std::string(e.attr("id").value_or(""));
    q.type = std::string(e.attr("type").value_or(""));
    return q;
}

std::optional<std::string> make_bounce(const QueuedStanza& s, StanzaError condition, std::string_view text,
                                       std::string_view by, std::optional<StanzaErrorType> type) {
    if (!s.bounceable() || s.from.empty()) return std::nullopt;
    std::string out = "<" + s.name + " from='" + xml::escape_attr(s.to) + "' to='" + xml::escape_attr(s.from) +
                      "' type='error'";
    if (!s.id.empty()) out += " id='" + xml::escape_attr(s.id) + "'";
    out += ">";
    append_stanza_error(out, condition, text, type, by);
    return out + "</" + s.name + ">";
}

bool StanzaQueue::push(QueuedStanza&& s) {
    if (items_.size() >= max_count_ || bytes_ + s.bytes.size() > max_bytes_) {
        // Full: the source waits until the queue drains. An empty queue that cannot take this one
        // stanza (bigger than its byte bound) never drains, so it holds no one.
        if (!items_.empty()) gate_.hold(s.source);
        return false;
    }
    Stream* source = std::exchange(s.source, nullptr);  // a queued stanza refers to no stream
    bytes_ += s.bytes.size();
    items_.push_back(std::move(s));
    // Filling up: the stream this comes from stops reading (its TCP window then slows the
    // sender) until the queue is nearly empty again, instead of overflowing into bounces.
    if (items_.size() * kHoldFraction >= max_count_ || bytes_ * kHoldFraction >= max_bytes_) gate_.hold(source);
    return true;
}

QueuedStanza StanzaQueue::pop() {
    QueuedStanza s = std::move(items_.front());
    items_.pop_front();
    bytes_ -= s.bytes.size();
    if (gate_.held() && items_.size() * kOpenFraction <= max_count_ && bytes_ * kOpenFraction <= max_bytes_)
        gate_.open();
    return s;
}

}  // namespace s2s
