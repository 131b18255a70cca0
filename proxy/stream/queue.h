// Stanzas waiting for a link, and the bounces that answer for them when it cannot be had.
//
// A queued stanza keeps its serialized bytes plus what a bounce needs (RFC 6120 §8.3: swap the
// addresses, type='error', same id). Errors are never bounced and presence is not either
// (§8.3.1: it would only make noise): those are dropped and counted.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "common/xmpp/stanza_error.h"
#include "common/xml/xml.h"
#include "proxy/stream/stream.h"

namespace s2s {

struct QueuedStanza {
    std::string bytes;        // serialized in the jabber:server scope
    std::string name;         // message, presence or iq
    std::string from, to, id, type;
    bool reply = false;       // an error reply s2s-proxy made for a stanza it bounced
    // The stream it was read from, while it is routed inside that stream's read callback: held
    // back where the stanza finds no room (see FlowGate). Null once queued, and for a stanza not
    // read from a stream; a bounce carries its stanza's source.
    Stream* source = nullptr;

    // Captures a stanza for sending later.
    [[nodiscard]] static QueuedStanza capture(const xml::Element& stanza, const xml::NamespaceScope& scope);
    // "message m1 alice@a.test/r -> bob@b.test", for debug logs of the path a stanza takes.
    [[nodiscard]] std::string describe() const { return name + " " + (id.empty() ? "-" : id) + " " + from + " -> " + to; }
    // Whether a failure to deliver it may be answered with an error (not an error, not presence).
    [[nodiscard]] bool bounceable() const noexcept { return type != "error" && name != "presence"; }
};

// The error reply telling the sender why the stanza was not delivered; nullopt when it must not
// be bounced. `by` is the domain that generated the error; `type` the error type when not the
// condition's default.
[[nodiscard]] std::optional<std::string> make_bounce(const QueuedStanza& s, StanzaError condition,
                                                     std::string_view text, std::string_view by = {},
                                                     std::optional<StanzaErrorType> type = std::nullopt);

// A bounded FIFO of stanzas (count and bytes). Past an eighth of either bound, the stream a
// stanza being queued came from (QueuedStanza::source) stops reading until the queue is down to
// a sixteenth again (see FlowGate), so that a burst waits in TCP rather than being bounced.
class StanzaQueue {
public:
    static constexpr std::size_t kDefaultMaxCount = 1000;
    static constexpr std::size_t kDefaultMaxBytes = 4 * 1024 * 1024;

    explicit StanzaQueue(std::size_t max_count = kDefaultMaxCount, std::size_t max_bytes = kDefaultMaxBytes)
        : max_count_(max_count), max_bytes_(max_bytes) {}

    // False when it is full: then nothing is queued and `s` is left as it was (to be bounced).
    [[nodiscard]] bool push(QueuedStanza&& s);
    [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
    [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
    // How near it is to full, 0 to 1: the larger of its stanzas and its bytes over their limits.
    [[nodiscard]] double fill() const noexcept {
        double by_count = static_cast<double>(items_.size()) / static_cast<double>(max_count_ ? max_count_ : 1);
        double by_bytes = static_cast<double>(bytes_) / static_cast<double>(max_bytes_ ? max_bytes_ : 1);
        return by_count > by_bytes ? by_count : by_bytes;
    }
    // Streams held back because this queue is filling up.
    [[nodiscard]] std::size_t holding() const noexcept { return gate_.held(); }
    QueuedStanza pop();

private:
    static constexpr std::size_t kHoldFraction = 8, kOpenFraction = 16;
    FlowGate gate_;
    std::deque<QueuedStanza> items_;
    std::size_t bytes_ = 0;
    std::size_t max_count_, max_bytes_;
};

// A link that keeps one StanzaQueue per domain (a map whose values hold it as `queue`): the
// stanzas waiting in all its queues, and the fill of the fullest (0 to 1), for /metrics.
template <class DomainMap>
[[nodiscard]] std::size_t queued_in(const DomainMap& domains) noexcept {
    std::size_t n = 0;
    for (const auto& entry : domains) n += entry.second.queue.size();
    return n;
}
template <class DomainMap>
[[nodiscard]] double fullest_fill(const DomainMap& domains) noexcept {
    double most = 0;
    for (const auto& entry : domains) {
        double fill = entry.second.queue.fill();
        if (fill > most) most = fill;
    }
    return most;
}

}  // namespace s2s
