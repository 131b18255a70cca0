// The remote hosts whose last connection attempts failed, and how long to wait before the next
// (MongooseIM's max_retry_delay): the first wait is about a second, with jitter so that many
// hosts failing together do not retry together; each consecutive failure doubles it, up to the cap.
//
// Hosts come from peer input too (a domain claimed for dialback is looked up and tried), so the
// table is bounded: an entry is forgotten `kForgetSlackMs` after the longest wait could have
// ended (the cap, from its last failure), which keeps the doubling across a retry that fails
// again; and past `max_entries` the host whose last failure is the oldest is forgotten first.
// Every operation is a hash lookup plus amortised O(1) work on a queue of failures in time order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

namespace s2s {

class BackoffTable {
public:
    static constexpr uint64_t kFirstDelayMs = 1000;
    static constexpr uint64_t kForgetSlackMs = 60000;

    struct Entry {
        uint64_t until = 0;  // loop time before which no new attempt is made
        uint64_t delay = 0;  // the last wait
        std::string error;   // why the last attempt failed
        uint64_t seq = 0;    // the failure that set it (matches its node in the time queue)
    };

    // Records a failed attempt on `host` at `now`; returns the wait before the next one (up to
    // `cap_ms`). Entries past their time are forgotten first; when `max_entries` are still held,
    // the oldest failure is forgotten and counted in evicted().
    uint64_t failed(const std::string& host, const std::string& error, uint64_t now, uint64_t cap_ms,
                    size_t max_entries);
    // The host is reachable again (or its link had worked): no wait.
    void forget(const std::string& host);
    // Forgets entries whose time has passed; also done by failed().
    void sweep(uint64_t now);

    // The wait left before the next attempt on `host` (0: none).
    [[nodiscard]] uint64_t remaining(const std::string& host, uint64_t now) const;
    // The entry of `host`, or nullptr.
    [[nodiscard]] const Entry* find(const std::string& host) const;
    // Hosts with a wait left at `now` (one pass over the table, at most max_entries).
    [[nodiscard]] size_t waiting(uint64_t now) const;
    // Hosts held (waiting, or remembered for the doubling).
    [[nodiscard]] size_t size() const noexcept { return entries_.size(); }
    // Hosts forgotten because the table was full.
    [[nodiscard]] uint64_t evicted() const noexcept { return evicted_; }
    // Failures queued for forgetting (at most 2 x size() + 64: stale ones are dropped as they pass).
    [[nodiscard]] size_t queued() const noexcept { return order_.size(); }

private:
    struct Node {
        uint64_t forget_at;
        std::string host;
        uint64_t seq;
    };
    // Drops queue nodes that no longer match their entry's last failure.
    void compact();

    std::unordered_map<std::string, Entry> entries_;
    std::deque<Node> order_;  // one node per failure, oldest first
    uint64_t next_seq_ = 0;
    uint64_t evicted_ = 0;
};

}  // namespace s2s
