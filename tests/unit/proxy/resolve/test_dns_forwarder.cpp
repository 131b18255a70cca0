// DnsForwarder (the DNS responder's upstream side): real UDP sockets on loopback play the
// upstream resolvers. What goes upstream (the query, a fresh ID), what comes back to the client
// (the answer, its ID restored), what is ignored, the deadline, the bound, ICMP errors, and the
// turn to the next upstream. Then DnsResponder with upstreams: its own answers stay local.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/ops/metrics.h"
#include "proxy/resolve/dns_forwarder.h"
#include "proxy/resolve/dns_responder.h"
#include "tests/unit/support/dns_packets.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;
using s2s::test::TestLoop;
using namespace s2s::test::dns;

namespace {

sockaddr_storage address_of(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
    return ss;
}

// A UDP socket on 127.0.0.1 that plays an upstream resolver (or a client) by hand.
struct Udp {
    int fd = -1;
    Udp() {
        fd = socket(AF_INET, SOCK_DGRAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    ~Udp() { close(fd); }
    Udp(const Udp&) = delete;
    Udp& operator=(const Udp&) = delete;
    [[nodiscard]] sockaddr_storage address() const { return address_of(fd); }

    // The next datagram and its sender, running the loop while waiting; nullopt after `ms`.
    std::optional<Bytes> take(TestLoop& t, sockaddr_storage* from = nullptr, uint64_t ms = 2000) {
        Bytes got(70000);
        ssize_t n = -1;
        sockaddr_storage sender{};
        t.run_until([&] {
            socklen_t len = sizeof sender;
            if (n < 0) n = recvfrom(fd, got.data(), got.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sender), &len);
            return n >= 0;
        }, ms);
        if (n < 0) return std::nullopt;
        got.resize(static_cast<size_t>(n));
        if (from) *from = sender;
        return got;
    }
    void send_to(const Bytes& b, const sockaddr_storage& to) const {
        REQUIRE(sendto(fd, b.data(), b.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(sockaddr_in)) ==
                static_cast<ssize_t>(b.size()));
    }
};

uint16_t id_of(const Bytes& b) { return static_cast<uint16_t>(b[0] << 8 | b[1]); }

Bytes with_id(Bytes b, uint16_t id) {
    b[0] = static_cast<uint8_t>(id >> 8);
    b[1] = static_cast<uint8_t>(id);
    return b;
}

// An upstream's answer to `q`: QR set, one A record.
Bytes answer_to(const Bytes& q, const std::string& name) {
    Bytes a = cat({header(id_of(q), 0, 1, 1), question(name, 1), a_record()});
    a[2] = 0x81;  // QR, RD (not authoritative)
    return a;
}

struct Delivered {
    sockaddr_storage client{};
    Bytes answer;
};

struct Harness {
    TestLoop& t;
    std::vector<Delivered> delivered;
    std::unique_ptr<DnsForwarder> forwarder;

    Harness(TestLoop& loop, std::vector<sockaddr_storage> upstreams, uint64_t deadline_ms = kDnsForwardDeadlineMs)
        : t(loop) {
        forwarder = std::make_unique<DnsForwarder>(
            t.loop(), std::move(upstreams),
            [this](const sockaddr_storage& client, const uint8_t* a, size_t n) {
                delivered.push_back({client, Bytes(a, a + n)});
            },
            deadline_ms);
    }
};

sockaddr_storage client_address() {
    sockaddr_storage c{};
    REQUIRE(uv_ip4_addr("127.0.0.1", 40000, reinterpret_cast<sockaddr_in*>(&c)) == 0);
    return c;
}

}  // namespace

TEST_CASE("dns_forwarder: the query goes upstream with a new ID; the answer comes back with the client's") {
    TestLoop t;
    {
        Udp upstream;
        Harness h(t, {upstream.address()});
        const Bytes q = query(0x1111, "db.internal.example", 1, 1, opt(), 1);
        REQUIRE(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Sent);
        CHECK(h.forwarder->pending() == 1);
        sockaddr_storage source{};
        auto sent = upstream.take(t, &source);
        REQUIRE(sent);
        REQUIRE(sent->size() == q.size());
        CHECK(Bytes(sent->begin() + 2, sent->end()) == Bytes(q.begin() + 2, q.end()));  // all but the ID unchanged
        const uint16_t id = id_of(*sent);

        // not the answer: another ID, another question, not a response, a stub of a header
        const Bytes right = answer_to(*sent, "db.internal.example");
        upstream.send_to(with_id(right, static_cast<uint16_t>(id + 1)), source);
        upstream.send_to(answer_to(*sent, "db.internal.example.evil"), source);
        Bytes not_response = right;
        not_response[2] = 0x01;
        upstream.send_to(not_response, source);
        upstream.send_to(Bytes(right.begin(), right.begin() + 11), source);
        t.run_until([&] { return h.forwarder->counts().ignored == 4; }, 2000);
        CHECK(h.forwarder->counts().ignored == 4);
        CHECK(h.delivered.empty());
        CHECK(h.forwarder->pending() == 1);

        // the answer, with the question in another case (the check ignores case)
        Bytes real = cat({header(id, 0, 1, 1), question("DB.internal.EXAMPLE", 1), a_record()});
        upstream.send_to(real, source);
        REQUIRE(t.run_until([&] { return !h.delivered.empty(); }, 2000));
        CHECK(h.delivered[0].answer == with_id(real, 0x1111));
        CHECK(reinterpret_cast<sockaddr_in&>(h.delivered[0].client).sin_port == htons(40000));
        CHECK(h.forwarder->counts().relayed == 1);
        CHECK(h.forwarder->pending() == 0);
        // a second copy finds nobody waiting
        upstream.send_to(real, source);
        t.run_for(50);
        CHECK(h.delivered.size() == 1);
    }
}

TEST_CASE("dns_forwarder: a truncated answer is relayed as it came") {
    TestLoop t;
    {
        Udp upstream;
        Harness h(t, {upstream.address()});
        const Bytes q = query(0x2222, "big.example", 16);
        REQUIRE(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Sent);
        sockaddr_storage source{};
        auto sent = upstream.take(t, &source);
        REQUIRE(sent);
        Bytes tc = cat({header(id_of(*sent), 0, 1, 0), question("big.example", 16)});
        tc[2] = 0x83;  // QR, TC, RD
        upstream.send_to(tc, source);
        REQUIRE(t.run_until([&] { return !h.delivered.empty(); }, 2000));
        CHECK(h.delivered[0].answer == with_id(tc, 0x2222));
    }
}

TEST_CASE("dns_forwarder: an error answer with no question (a bare header) is relayed, an empty success is not") {
    TestLoop t;
    {
        Udp upstream;
        Harness h(t, {upstream.address()});
        const Bytes q = query(0x3333, "refused.example", 1);
        REQUIRE(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Sent);
        sockaddr_storage source{};
        auto sent = upstream.take(t, &source);
        REQUIRE(sent);
        Bytes empty_ok = header(id_of(*sent), 0, 0, 0);
        empty_ok[2] = 0x81;  // QR, RD, NOERROR, no question: not an answer to anything
        upstream.send_to(empty_ok, source);
        Bytes refused = header(id_of(*sent), 0, 0, 0);
        refused[2] = 0x81;
        refused[3] = 0x05;  // REFUSED
        upstream.send_to(refused, source);
        REQUIRE(t.run_until([&] { return !h.delivered.empty(); }, 2000));
        REQUIRE(h.delivered.size() == 1);
        CHECK(h.delivered[0].answer == with_id(refused, 0x3333));
    }
}

TEST_CASE("dns_forwarder: a forward with no answer is dropped at its deadline; the next goes to the next upstream") {
    TestLoop t;
    {
        Udp silent, second;
        Harness h(t, {silent.address(), second.address()}, 150);
        const uint64_t timeouts_before = metrics().dns_upstream.get("timeout");
        const Bytes q = query(0x3333, "db.internal.example", 1);
        REQUIRE(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Sent);
        sockaddr_storage source{};
        auto sent = silent.take(t, &source);
        REQUIRE(sent);
        REQUIRE(t.run_until([&] { return h.forwarder->counts().timeouts == 1; }, 2000));
        CHECK(h.forwarder->pending() == 0);
        CHECK(metrics().dns_upstream.get("timeout") == timeouts_before + 1);
        // too late: nobody waits for it
        silent.send_to(answer_to(*sent, "db.internal.example"), source);
        t.run_for(50);
        CHECK(h.delivered.empty());

        REQUIRE(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Sent);
        auto again = second.take(t, &source);
        REQUIRE(again);
        second.send_to(answer_to(*again, "db.internal.example"), source);
        REQUIRE(t.run_until([&] { return !h.delivered.empty(); }, 2000));
        CHECK(id_of(h.delivered[0].answer) == 0x3333);
    }
}

TEST_CASE("dns_forwarder: an upstream that refuses (ICMP port unreachable) ends the forward") {
    TestLoop t;
    {
        sockaddr_storage closed{};
        {
            Udp gone;
            closed = gone.address();
        }  // nothing listens there any more
        Harness h(t, {closed});
        const Bytes q = query(0x4444, "db.internal.example", 1);
        REQUIRE(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Sent);
        REQUIRE(t.run_until([&] { return h.forwarder->counts().unreachable == 1; }, 2000));
        CHECK(h.forwarder->pending() == 0);
        CHECK(h.delivered.empty());
    }
}

TEST_CASE("dns_forwarder: at most kDnsMaxForwards wait; a slot is free again once its forward ended") {
    TestLoop t;
    {
        Udp silent;
        Harness h(t, {silent.address()}, 200);
        const Bytes q = query(0x5555, "db.internal.example", 1);
        std::vector<uint16_t> ids;  // taken as they come, so that the socket's buffer never overflows
        for (size_t i = 0; i < kDnsMaxForwards; ++i) {
            REQUIRE(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Sent);
            auto got = silent.take(t);
            REQUIRE(got);
            ids.push_back(id_of(*got));
        }
        CHECK(h.forwarder->pending() == kDnsMaxForwards);
        CHECK(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Full);
        Bytes huge = query(0x5556, "db.internal.example", 1);
        huge.resize(kDnsMaxForwardedQuery + 1);
        CHECK(h.forwarder->forward(huge.data(), huge.size(), client_address()) == DnsForwarder::Outcome::TooBig);
        REQUIRE(t.run_until([&] { return h.forwarder->counts().timeouts == kDnsMaxForwards; }, 3000));
        t.run_for(20);  // the sockets' close callbacks
        CHECK(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Sent);
        REQUIRE(silent.take(t));
        // a fresh random ID for each: 256 draws from 65,536 repeat one with p ~ 0.39, so only
        // check that they are not all the same
        bool differ = false;
        for (uint16_t id : ids) differ = differ || id != ids[0];
        CHECK(differ);
    }
}

TEST_CASE("dns_forwarder: destroyed with forwards pending, it delivers nothing and the loop closes clean") {
    TestLoop t;
    {
        Udp upstream;
        Harness h(t, {upstream.address()});
        const Bytes q = query(0x6666, "db.internal.example", 1);
        for (int i = 0; i < 3; ++i)
            REQUIRE(h.forwarder->forward(q.data(), q.size(), client_address()) == DnsForwarder::Outcome::Sent);
        sockaddr_storage source{};
        auto sent = upstream.take(t, &source);
        REQUIRE(sent);
        h.forwarder.reset();
        upstream.send_to(answer_to(*sent, "db.internal.example"), source);
        t.run_for(50);
        CHECK(h.delivered.empty());
    }
}

TEST_CASE("dns_forwarder: dns_server_text") {
    sockaddr_storage a{};
    REQUIRE(uv_ip4_addr("10.96.0.10", 0, reinterpret_cast<sockaddr_in*>(&a)) == 0);
    CHECK(dns_server_text(a) == "10.96.0.10:53");
    REQUIRE(uv_ip6_addr("fd00::a", 5353, reinterpret_cast<sockaddr_in6*>(&a)) == 0);
    CHECK(dns_server_text(a) == "[fd00::a]:5353");
}

// ---- the responder with upstreams ----------------------------------------------------------------

TEST_CASE("dns_responder: with upstreams it answers remote domains' SRV itself and forwards the rest") {
    TestLoop t;
    {
        Udp upstream, client;
        sockaddr_storage bind{};
        REQUIRE(uv_ip4_addr("127.0.0.1", 0, reinterpret_cast<sockaddr_in*>(&bind)) == 0);
        std::string error;
        auto responder = DnsResponder::start(t.loop(), bind, rules(true, false), &error, {upstream.address()});
        REQUIRE_MESSAGE(responder, error);
        REQUIRE(responder->forwarder());
        const sockaddr_storage at = responder->address();
        const uint64_t forwarded_before = metrics().dns_responder.get("forwarded");

        // a remote domain's SRV: answered here, never seen upstream
        const Bytes srv = query(0x0101, "_xmpp-server._tcp.b.test", 33);
        client.send_to(srv, at);
        auto got = client.take(t);
        REQUIRE(got);
        CHECK(*got == cat({header(0x0101, 0, 1, 1, 1), question("_xmpp-server._tcp.b.test", 33),
                           srv_record_own_target(kLocalPort), own_target_a_record()}));
        CHECK(responder->answered() == 1);

        // our own domain's SRV and any other name: upstream's answer, relayed to the client
        for (const char* name : {"_xmpp-server._tcp.c.test", "db.internal.example"}) {
            CAPTURE(name);
            const uint16_t type = name[0] == '_' ? 33 : 1;
            const Bytes q = query(0x0202, name, type);
            client.send_to(q, at);
            sockaddr_storage source{};
            auto sent = upstream.take(t, &source);
            REQUIRE(sent);
            CHECK(Bytes(sent->begin() + 2, sent->end()) == Bytes(q.begin() + 2, q.end()));
            Bytes nx = cat({header(id_of(*sent), 3, 1, 0), question(name, type)});
            upstream.send_to(nx, source);
            auto relayed = client.take(t);
            REQUIRE(relayed);
            CHECK(*relayed == with_id(nx, 0x0202));
        }
        CHECK(responder->forwarded() == 2);
        CHECK(metrics().dns_responder.get("forwarded") == forwarded_before + 2);
        CHECK(responder->forwarder()->counts().relayed == 2);
    }
}
