// Dialback (proxy/features/dialback_flow). As the originating server: fed parsed answers, no socket. As the
// receiving server (DialbackReceiver): fed parsed db:result requests, with a scripted owner and a
// router that answers when the test says; its answers are read as wire bytes by a peer on the
// other end of the stream.
#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "proxy/features/dialback_flow.h"
#include "proxy/ops/metrics.h"
#include "proxy/xmpp/xmpp.h"
#include "tests/unit/support/loop_harness.h"
#include "tests/unit/support/null_router.h"

using namespace s2s;
using test::Peer;

namespace {

xml::Document element(const std::string& text) {
    auto d = xml::parse_element(text);
    REQUIRE(d);
    return std::move(*d);
}

}  // namespace

TEST_CASE("dialback_flow: the request names both domains and carries the key") {
    CHECK(dialback_request("a.test", "b'.test", "k1") == "<db:result from='a.test' to='b&apos;.test'>k1</db:result>");
}

TEST_CASE("dialback_flow: a valid answer is no refusal; invalid and error say why and with which condition") {
    uint64_t valid = metrics().dialback.get("originating:valid");
    uint64_t invalid = metrics().dialback.get("originating:invalid");
    uint64_t error = metrics().dialback.get("originating:error");
    auto ok = element("<db:result from='b.test' to='a.test' type='valid'/>");
    CHECK_FALSE(read_dialback_answer(ok.root(), "a.test", "b.test"));
    auto bad = element("<db:result from='b.test' to='a.test' type='invalid'/>");
    auto refused = read_dialback_answer(bad.root(), "a.test", "b.test");
    REQUIRE(refused);
    CHECK(refused->condition == StanzaError::RemoteServerNotFound);
    CHECK(refused->why == "b.test refused dialback for a.test (invalid key)");
    auto err = element("<db:result from='b.test' to='a.test' type='error'><error type='cancel'>"
                       "<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                       "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>not you</text></error></db:result>");
    refused = read_dialback_answer(err.root(), "a.test", "b.test");
    REQUIRE(refused);
    CHECK(refused->condition == StanzaError::PolicyViolation);
    CHECK(refused->why == "b.test refused dialback for a.test (policy-violation: not you)");
    auto bare = element("<db:result from='b.test' to='a.test' type='error'/>");
    refused = read_dialback_answer(bare.root(), "a.test", "b.test");
    REQUIRE(refused);
    CHECK(refused->why == "b.test refused dialback for a.test (no reason given)");
    CHECK(metrics().dialback.get("originating:valid") == valid + 1);
    CHECK(metrics().dialback.get("originating:invalid") == invalid + 1);
    CHECK(metrics().dialback.get("originating:error") == error + 2);
}

TEST_CASE("dialback_flow: db:verify requests are sent once, answered by local domain and stream id, failed together") {
    VerifyRequests v;
    std::vector<std::string> got;
    auto record = [&got](const char* name) {
        return [&got, name](Router::Verdict verdict, const std::string& why) {
            got.push_back(std::string(name) + " " + std::to_string(static_cast<int>(verdict)) + " " + why);
        };
    };
    uint64_t t1 = v.add("a.test", "s1", "k1", record("one"));
    (void)v.add("a.test", "s2", "k<2", record("two"));
    CHECK_FALSE(v.waiting());
    auto sent = v.take_unsent("b.test");
    REQUIRE(sent.size() == 2);
    CHECK(sent[0] == "<db:verify from='a.test' to='b.test' id='s1'>k1</db:verify>");
    CHECK(sent[1] == "<db:verify from='a.test' to='b.test' id='s2'>k&lt;2</db:verify>");
    CHECK(v.take_unsent("b.test").empty());
    CHECK(v.waiting());
    auto other = element("<db:verify from='b.test' to='a.test' id='s9' type='valid'/>");
    v.answer(other.root(), "b.test");
    CHECK(got.empty());
    auto answer = element("<db:verify from='b.test' to='a.test' id='s2' type='invalid'/>");
    v.answer(answer.root(), "b.test");
    REQUIRE(got.size() == 1);
    CHECK(got[0] == "two 1 b.test says the key is not one it issued");
    (void)v.add("a.test", "s3", "k3", record("three"));
    v.cancel(t1);
    v.fail_all(Router::Verdict::Unreachable, "gone");
    REQUIRE(got.size() == 2);
    CHECK(got[1] == "three 3 gone");
    CHECK_FALSE(v.waiting());
}

namespace {

struct ScriptedRouter : test::NullRouter {
    struct Request {
        std::string receiving, originating, stream_id, key;
        VerifyDone done;
    };
    std::vector<Request> requests;
    std::vector<uint64_t> cancelled;
    uint64_t bound_ms = 0;
    uint64_t verify_dialback(const std::string& receiving, const std::string& originating, const std::string& sid,
                             const std::string& key, VerifyDone done) override {
        requests.push_back({receiving, originating, sid, key, std::move(done)});
        return requests.size();
    }
    void cancel_verify(uint64_t token) override { cancelled.push_back(token); }
    [[nodiscard]] uint64_t verify_timeout_ms() const override { return bound_ms; }
};

struct Fixture : DialbackReceiver::Owner {
    test::TestLoop t;
    Config config;
    DialbackKeys keys{"test secret"};
    std::unique_ptr<PolicyRules> policy;
    ScriptedRouter router;
    std::unique_ptr<ProxyContext> ctx;
    Peer& ours;    // the stream the receiver answers on
    Peer& remote;  // the peer reading the answers
    std::string client = "192.0.2.7";
    std::unique_ptr<DialbackReceiver> receiver;
    std::set<std::string> pairs;        // authenticated, "remote->local"
    std::vector<std::string> failures;  // stream errors
    int rearmed = 0;

    Fixture() : ours(t.new_peer()), remote(t.new_peer()) {
        config.hosts = {"a.test"};
        config.max_verifications_per_stream = 2;
        policy = std::make_unique<PolicyRules>(config, false);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, t.loop(), keys, *policy, router, {}, 0});
        t.listen([this](uv_stream_t* l) {
            ours.stream = Stream::create(t.loop(), ours, {}, 7);
            REQUIRE(uv_accept(l, ours.stream->handle()) == 0);
            ours.stream->start();
            ours.stream->send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                              "xmlns:db='jabber:server:dialback' from='a.test' id='sid' version='1.0'>");
        });
        t.connect(remote);
        REQUIRE(t.run_until([this] { return ours.stream != nullptr; }));
        receiver = std::make_unique<DialbackReceiver>(*ctx, *this, 7, client);
    }
    ~Fixture() { receiver->cancel_all(); }

    void request(const std::string& from, const std::string& to, const std::string& type = "") {
        auto d = xml::parse_element("<db:result from='" + from + "' to='" + to + "'" +
                                    (type.empty() ? "" : " type='" + type + "'") + ">key</db:result>");
        REQUIRE(d);
        receiver->on_request(d->root(), "sid");
    }
    // The next answer the remote reads.
    std::string answer(size_t n) {
        REQUIRE(t.run_until([&] { return remote.stanzas.size() >= n; }));
        return remote.stanzas[n - 1];
    }

    // DialbackReceiver::Owner
    Stream* peer_stream() noexcept override { return ours.stream; }
    bool tls_required_first() const noexcept override { return false; }
    bool closing() const noexcept override { return false; }
    void fail(StreamError error, const std::string& text) override {
        failures.push_back(std::string(name(error)) + ": " + text);
    }
    bool admitted(const std::string&, const std::string&, const char*) override { return true; }
    bool is_authenticated(std::string_view remote_domain, std::string_view local) const noexcept override {
        return pairs.count(std::string(remote_domain) + "->" + std::string(local)) != 0;
    }
    bool room_for_pair(const std::string&, const std::string&) override { return true; }
    void authenticated(const std::string& remote_domain, const std::string& local, const char*) override {
        pairs.insert(remote_domain + "->" + local);
    }
    void rearm() override { ++rearmed; }
};

}  // namespace

TEST_CASE("dialback_receiver: a key is verified through the router; its verdict is the answer") {
    Fixture f;
    f.request("b.test", "a.test");
    REQUIRE(f.router.requests.size() == 1);
    CHECK(f.router.requests[0].receiving == "a.test");
    CHECK(f.router.requests[0].originating == "b.test");
    CHECK(f.router.requests[0].stream_id == "sid");
    CHECK(f.router.requests[0].key == "key");
    CHECK(f.receiver->pending() == 1);
    CHECK_FALSE(f.receiver->verifying());  // the router gives no bound
    f.request("b.test", "a.test");         // already being verified: nothing more
    CHECK(f.router.requests.size() == 1);
    f.router.requests[0].done(Router::Verdict::Valid, "");
    CHECK(f.receiver->pending() == 0);
    CHECK(f.pairs.count("b.test->a.test") == 1);
    CHECK(f.answer(1) == "<db:result from='a.test' to='b.test' type='valid'/>");
    f.request("b.test", "a.test");  // authenticated on this stream: valid at once
    CHECK(f.router.requests.size() == 1);
    CHECK(f.answer(2) == "<db:result from='a.test' to='b.test' type='valid'/>");
    f.request("c.test", "a.test");
    f.router.requests[1].done(Router::Verdict::Invalid, "c.test says no");
    CHECK(f.answer(3) == "<db:result from='a.test' to='c.test' type='invalid'/>");
    CHECK(f.receiver->refused_claims() == 1);
}

TEST_CASE("dialback_receiver: refusals are answered with an error, or end the stream") {
    Fixture f;
    f.request("b.test", "z.test");
    CHECK(f.answer(1).find("type='error'") != std::string::npos);
    CHECK(f.answer(1).find("<item-not-found") != std::string::npos);
    f.request("a.test", "a.test");
    CHECK(f.answer(2).find("<policy-violation") != std::string::npos);
    f.request("b.test", "a.test", "valid");
    REQUIRE(f.failures.size() == 1);
    CHECK(f.failures[0] == "unsupported-stanza-type: a db:result with a type is an answer, not a request");
    f.request("", "a.test");
    REQUIRE(f.failures.size() == 2);
    CHECK(f.failures[1] == "invalid-from: db:result from '' is not a domain");
    CHECK(f.router.requests.empty());
    CHECK(f.receiver->refused_claims() == 2);
}

TEST_CASE("dialback_receiver: verifications are bounded per stream and in time") {
    Fixture f;
    f.router.bound_ms = 50;
    uint64_t limits = metrics().limits_reached.get("max_verifications_per_stream");
    f.request("b.test", "a.test");
    f.request("c.test", "a.test");
    f.request("d.test", "a.test");  // a third one: s2s.max_verifications_per_stream is 2
    CHECK(f.router.requests.size() == 2);
    CHECK(f.answer(1).find("<resource-constraint") != std::string::npos);
    CHECK(metrics().limits_reached.get("max_verifications_per_stream") == limits + 1);
    CHECK(f.receiver->verifying());
    uint64_t first = f.receiver->earliest_bound();
    CHECK(first != 0);
    CHECK(f.receiver->latest_bound() >= first);
    f.receiver->expire(first - 1);
    CHECK(f.receiver->pending() == 2);
    f.receiver->expire(f.receiver->latest_bound());
    CHECK(f.receiver->pending() == 0);
    CHECK(f.router.cancelled.size() == 2);
    CHECK(f.answer(2).find("<remote-server-timeout") != std::string::npos);
    CHECK(f.answer(3).find("<remote-server-timeout") != std::string::npos);
    CHECK(f.receiver->earliest_bound() == 0);
}

TEST_CASE("dialback_flow: on a link we opened, only typed answers from the remote are read") {
    auto request = element("<db:result from='b.test' to='a.test'>key</db:result>");
    auto refused = refuse_on_link(request.root(), "b.test");
    REQUIRE(refused);
    CHECK(refused->error == StreamError::UnsupportedStanzaType);
    CHECK(refused->text == "b.test sent a dialback request (db:result without a type) on a stream s2s-proxy opened");
    auto verify = element("<db:verify from='b.test' to='a.test' id='s1'>key</db:verify>");
    refused = refuse_on_link(verify.root(), "b.test");
    REQUIRE(refused);
    CHECK(refused->text == "a db:verify request on a stream s2s-proxy opened, which is not bidirectional");
    auto other = element("<db:verify from='c.test' to='a.test' id='s1' type='valid'/>");
    refused = refuse_on_link(other.root(), "b.test");
    REQUIRE(refused);
    CHECK(refused->error == StreamError::InvalidFrom);
    CHECK(refused->text == "a db:verify answer from 'c.test' on the link to b.test");
    auto answer = element("<db:result from='B.test' to='a.test' type='valid'/>");
    CHECK_FALSE(refuse_on_link(answer.root(), "b.test"));
    CHECK(refuse_reverse_dialback(request.root(), LogContext{1, "a.test", "b.test"}) ==
          dialback_answer("result", "a.test", "b.test", "", "error", "policy-violation",
                          "dialback on a stream s2s-proxy opened is not accepted; open a stream to a.test for it"));
}
