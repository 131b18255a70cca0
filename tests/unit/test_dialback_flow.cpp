// Dialback as the originating server (proxy/dialback_flow), fed parsed answers: no socket.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/dialback_flow.h"
#include "proxy/metrics.h"

using namespace s2s;

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
