#include "proxy/resolve/dns_forwarder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <uv.h>

#include <cstring>

#include "common/base/log.h"
#include "common/base/random.h"
#include "proxy/ops/metrics.h"
#include "proxy/resolve/dns_responder_wire.h"

namespace s2s {

std::string dns_server_text(const sockaddr_storage& ss) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
        inet_ntop(AF_INET, &in.sin_addr, ip, sizeof ip);
        return std::string(ip) + ":" + std::to_string(in.sin_port ? ntohs(in.sin_port) : 53);
    }
    if (ss.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
        inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof ip);
        return "[" + std::string(ip) + "]:" + std::to_string(in6.sin6_port ? ntohs(in6.sin6_port) : 53);
    }
    return "?";
}

namespace {

constexpr size_t kHeader = 12;
constexpr size_t kQuestionMax = kHeader + 255 + 4;  // a header and the longest question

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

void put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

bool same_address(const sockaddr* a, const sockaddr_storage& b) {
    if (!a || a->sa_family != b.ss_family) return false;
    if (a->sa_family == AF_INET) {
        const auto* x = reinterpret_cast<const sockaddr_in*>(a);
        const auto& y = reinterpret_cast<const sockaddr_in&>(b);
        return x->sin_port == y.sin_port && x->sin_addr.s_addr == y.sin_addr.s_addr;
    }
    const auto* x = reinterpret_cast<const sockaddr_in6*>(a);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    return x->sin6_port == y.sin6_port && std::memcmp(&x->sin6_addr, &y.sin6_addr, sizeof y.sin6_addr) == 0;
}

// What a forward's question was, for the log: "SRV _xmpp-server._tcp.b.test".
std::string describe(const uint8_t* query, size_t len) {
    uint8_t unused[kDnsResponderMaxAnswer];
    DnsResponderRules none;
    const DnsReply r = dns_respond(none, query, len, unused, sizeof unused, true);
    const char* type = dns_type_name(r.qtype);
    return (type ? std::string(type) : "TYPE" + std::to_string(r.qtype)) + " " + r.qname;
}

// Runs a debug log line's formatting, which allocates, where nothing may throw.
template <class Line>
void debug(Line line) noexcept {
    if (!log_enabled(LogLevel::debug)) return;
    try {
        line();
    } catch (...) {  // (out of memory: only the log line is lost)
    }
}

}  // namespace

// One pending forward: its own socket, connected to the upstream it went to.
struct DnsForwarder::Slot {
    enum class State : uint8_t { Free, Waiting, Closing };
    DnsForwarder::Core* core = nullptr;
    uv_udp_t udp{};
    State state = State::Free;
    uint16_t id = 0;         // the ID sent upstream
    uint16_t client_id = 0;  // the ID the client sent
    size_t upstream = 0;
    uint64_t deadline = 0;
    sockaddr_storage client{};
    uint8_t question[kQuestionMax] = {};  // the query's header and question, for the answer's check
    size_t question_len = 0;
    Slot* older = nullptr;  // the waiting list, oldest first (every deadline is send time + the same span)
    Slot* newer = nullptr;
};

struct DnsForwarder::Core {
    EventLoop& loop;
    std::vector<sockaddr_storage> upstreams;
    Deliver deliver;
    uint64_t deadline_ms;
    std::unique_ptr<Slot[]> slots{new Slot[kDnsMaxForwards]};
    std::vector<Slot*> free;
    Slot* oldest = nullptr;
    Slot* newest = nullptr;
    size_t waiting = 0;
    size_t next_upstream = 0;  // where the next forward goes
    uv_timer_t timer{};
    int open_handles = 0;
    bool closing = false;  // the DnsForwarder is gone: nothing is delivered, the Core goes with its last handle
    Counts counts;

    Core(EventLoop& l, std::vector<sockaddr_storage> u, Deliver d, uint64_t ms)
        : loop(l), upstreams(std::move(u)), deliver(std::move(d)), deadline_ms(ms) {
        free.reserve(kDnsMaxForwards);
        for (size_t i = kDnsMaxForwards; i-- > 0;) {
            slots[i].core = this;
            slots[i].udp.data = &slots[i];
            free.push_back(&slots[i]);
        }
        for (auto& server : upstreams) {  // port 0: the DNS port
            if (server.ss_family == AF_INET && !reinterpret_cast<sockaddr_in&>(server).sin_port)
                reinterpret_cast<sockaddr_in&>(server).sin_port = htons(53);
            if (server.ss_family == AF_INET6 && !reinterpret_cast<sockaddr_in6&>(server).sin6_port)
                reinterpret_cast<sockaddr_in6&>(server).sin6_port = htons(53);
        }
    }

    void handle_closed() noexcept {
        if (--open_handles == 0 && closing) delete this;
    }

    // The next forwards go to the upstream after `failed`, if it was the one in use.
    void pass_over(size_t failed) noexcept {
        if (next_upstream == failed) next_upstream = (failed + 1) % upstreams.size();
    }

    void link(Slot* s) noexcept {
        s->older = newest;
        s->newer = nullptr;
        (newest ? newest->newer : oldest) = s;
        newest = s;
        ++waiting;
    }

    void unlink(Slot* s) noexcept {
        (s->older ? s->older->newer : oldest) = s->newer;
        (s->newer ? s->newer->older : newest) = s->older;
        s->older = s->newer = nullptr;
        --waiting;
    }

    // Ends a forward: its socket closes, and the slot is free again once it has.
    void finish(Slot* s) noexcept {
        if (s->state == Slot::State::Waiting) unlink(s);
        s->state = Slot::State::Closing;
        uv_udp_recv_stop(&s->udp);
        uv_close(reinterpret_cast<uv_handle_t*>(&s->udp), on_slot_closed);
    }

    void arm_timer() noexcept {
        if (!oldest || closing) return;
        const uint64_t now = loop.now_ms();
        uv_timer_start(&timer, on_timer, oldest->deadline > now ? oldest->deadline - now : 0, 0);
    }

    static void on_slot_closed(uv_handle_t* h) noexcept {
        auto* s = static_cast<Slot*>(h->data);
        Core* core = s->core;
        s->state = Slot::State::Free;
        if (!core->closing) core->free.push_back(s);
        core->handle_closed();
    }

    static void on_timer(uv_timer_t* t) noexcept {
        auto* core = static_cast<Core*>(t->data);
        const uint64_t now = core->loop.now_ms();
        while (core->oldest && core->oldest->deadline <= now) {
            Slot* s = core->oldest;
            ++core->counts.timeouts;
            metrics().dns_upstream.add("timeout");
            debug([&] {
                S2S_LOG_DEBUG(LogContext{}, "dns-forward", "no answer from %s within %llu ms (id %u), dropped",
                              dns_server_text(core->upstreams[s->upstream]).c_str(),
                              static_cast<unsigned long long>(core->deadline_ms), static_cast<unsigned>(s->id));
            });
            core->pass_over(s->upstream);
            core->finish(s);
        }
        core->arm_timer();
    }

    static void on_answer(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                          unsigned flags) noexcept;
};

void DnsForwarder::Core::on_answer(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                                   unsigned flags) noexcept {
    auto* s = static_cast<Slot*>(handle->data);
    Core* core = s->core;
    if (s->state != Slot::State::Waiting || core->closing) return;
    if (nread < 0) {  // an ICMP error on the connected socket: nobody answers there
        ++core->counts.unreachable;
        metrics().dns_upstream.add("unreachable");
        debug([&] {
            S2S_LOG_DEBUG(LogContext{}, "dns-forward", "%s: %s (id %u), dropped",
                          dns_server_text(core->upstreams[s->upstream]).c_str(), uv_strerror(static_cast<int>(nread)),
                          static_cast<unsigned>(s->id));
        });
        core->pass_over(s->upstream);
        core->finish(s);
        return;
    }
    if (nread == 0 && !from) return;  // nothing more to read this time
    const auto* data = reinterpret_cast<uint8_t*>(buf->base);
    const size_t n = static_cast<size_t>(nread);
    const bool answer = !(flags & UV_UDP_PARTIAL) && same_address(from, core->upstreams[s->upstream]) &&
                        n >= kHeader && get16(data) == s->id && (data[2] & 0x80) &&
                        (dns_same_question(s->question, s->question_len, data, n) ||
                         // an error answer may come as a bare header (RFC 1035 4.1.1: FORMERR,
                         // SERVFAIL, REFUSED with no question): relayed, not held against the upstream
                         (get16(data + 4) == 0 && (data[3] & 0x0F) != 0));
    if (!answer) {
        ++core->counts.ignored;
        metrics().dns_upstream.add("ignored");
        S2S_LOG_DEBUG(LogContext{}, "dns-forward", "%zd bytes on the socket of id %u ignored: not its answer", nread,
                      static_cast<unsigned>(s->id));
        return;
    }
    put16(reinterpret_cast<uint8_t*>(buf->base), s->client_id);
    ++core->counts.relayed;
    metrics().dns_upstream.add("relayed");
    debug([&] {
        S2S_LOG_DEBUG(LogContext{}, "dns-forward", "answer from %s relayed: %s, %zu bytes%s (id %u -> %u)",
                      dns_server_text(core->upstreams[s->upstream]).c_str(), dns_rcode_name(data[3] & 0x0F), n,
                      (data[2] & 0x02) ? ", truncated (TC)" : "", static_cast<unsigned>(s->id),
                      static_cast<unsigned>(s->client_id));
    });
    core->deliver(s->client, data, n);
    core->finish(s);
}

DnsForwarder::DnsForwarder(EventLoop& loop, std::vector<sockaddr_storage> upstreams, Deliver deliver,
                           uint64_t deadline_ms)
    : core_(new Core(loop, std::move(upstreams), std::move(deliver), deadline_ms)) {
    uv_timer_init(loop.uv(), &core_->timer);
    core_->timer.data = core_;
    core_->open_handles = 1;
}

DnsForwarder::~DnsForwarder() {
    core_->closing = true;
    for (size_t i = 0; i < kDnsMaxForwards; ++i)
        if (core_->slots[i].state == Slot::State::Waiting) core_->finish(&core_->slots[i]);
    uv_close(reinterpret_cast<uv_handle_t*>(&core_->timer),
             [](uv_handle_t* h) { static_cast<Core*>(h->data)->handle_closed(); });
}

DnsForwarder::Outcome DnsForwarder::forward(const uint8_t* query, size_t len, const sockaddr_storage& client) {
    Core& c = *core_;
    if (len > kDnsMaxForwardedQuery) return Outcome::TooBig;
    if (len < kHeader) return Outcome::SendFailed;
    if (c.free.empty()) return Outcome::Full;
    Slot* s = c.free.back();
    uint8_t id[2];
    if (!random_bytes(id, sizeof id)) return Outcome::SendFailed;
    const size_t upstream = c.next_upstream;
    int rc = uv_udp_init(c.loop.uv(), &s->udp);
    if (rc != 0) {
        S2S_LOG_DEBUG(LogContext{}, "dns-forward", "no socket for a forward: %s", uv_strerror(rc));
        return Outcome::SendFailed;
    }
    c.free.pop_back();
    ++c.open_handles;
    s->state = Slot::State::Waiting;
    c.link(s);
    s->id = get16(id);
    s->client_id = get16(query);
    s->upstream = upstream;
    s->client = client;
    s->deadline = c.loop.now_ms() + c.deadline_ms;
    s->question_len = len < sizeof s->question ? len : sizeof s->question;
    std::memcpy(s->question, query, s->question_len);

    uint8_t out[kDnsMaxForwardedQuery];
    std::memcpy(out, query, len);
    put16(out, s->id);
    uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(out), static_cast<unsigned>(len));
    rc = uv_udp_connect(&s->udp, reinterpret_cast<const sockaddr*>(&c.upstreams[upstream]));
    if (rc == 0) rc = uv_udp_recv_start(&s->udp, EventLoop::alloc_read_buffer, Core::on_answer);
    if (rc == 0) {
        const int sent = uv_udp_try_send(&s->udp, &b, 1, nullptr);
        rc = sent < 0 ? sent : 0;
    }
    if (rc != 0) {
        debug([&] {
            S2S_LOG_DEBUG(LogContext{}, "dns-forward", "cannot send to %s: %s",
                          dns_server_text(c.upstreams[upstream]).c_str(), uv_strerror(rc));
        });
        // Only the upstream's own refusal (an ICMP error seen by the connected socket) counts
        // against it; a local shortage (descriptors, buffers) does not.
        if (rc == UV_ECONNREFUSED || rc == UV_EHOSTUNREACH || rc == UV_ENETUNREACH) c.pass_over(upstream);
        c.finish(s);
        return Outcome::SendFailed;
    }
    debug([&] {
        S2S_LOG_DEBUG(LogContext{}, "dns-forward", "%s forwarded to %s (id %u -> %u)", describe(query, len).c_str(),
                      dns_server_text(c.upstreams[upstream]).c_str(), static_cast<unsigned>(s->client_id),
                      static_cast<unsigned>(s->id));
    });
    if (c.waiting == 1) c.arm_timer();
    return Outcome::Sent;
}

size_t DnsForwarder::pending() const noexcept { return core_->waiting; }

std::string DnsForwarder::upstreams_text() const {
    std::string out;
    for (const auto& u : core_->upstreams) out += (out.empty() ? "" : ", ") + dns_server_text(u);
    return out;
}

const DnsForwarder::Counts& DnsForwarder::counts() const noexcept { return core_->counts; }

}  // namespace s2s
