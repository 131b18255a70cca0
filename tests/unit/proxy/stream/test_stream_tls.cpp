// proxy/stream/stream_tls: TLS under a Stream over real loopback TCP: STARTTLS-style upgrades, and a
// stream restarted under TLS inside a callback.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/stream/stream.h"
#include "tests/unit/support/stream_harness.h"

using namespace s2s;
using test::Peer;
using test::kStreamHeader;
using test::tls_pair;
using Harness = test::StreamHarness;

namespace {

// The STARTTLS steps both cases take: the client asks with its header, the server answers
// <proceed/> in plaintext and switches, the client switches on <proceed/>. Each returns whether
// the last event was its step.
void ask_starttls(Peer& r) {
    r.stream->send(kStreamHeader);
    r.stream->send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
}

bool answer_starttls(Peer& r, const tls::ContextResult& server_ctx) {
    if (r.events.back() != "stanza starttls") return false;
    r.stream->send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    r.stream->start_tls(server_ctx.context);
    r.stream->reset_parser();
    return true;
}

bool take_proceed(Peer& r, const tls::ContextResult& client_ctx) {
    if (r.events.back() != "stanza proceed") return false;
    r.stream->start_tls(client_ctx.context, {"a.test", nullptr});
    r.stream->reset_parser();
    return true;
}

}  // namespace

TEST_CASE("stream_tls: STARTTLS-style upgrade: plaintext first, then XML over TLS both ways") {
    auto contexts = tls_pair(true);
    tls::ContextResult& server_ctx = contexts.first;
    tls::ContextResult& client_ctx = contexts.second;

    Harness h;
    // Server: on <starttls/> answer <proceed/> in plaintext and switch; client: on <proceed/> switch.
    h.server.on_stanza_hook = [&](Peer& r) { (void)answer_starttls(r, server_ctx); };
    h.client.on_connect_hook = ask_starttls;
    h.server.on_open_hook = [&](Peer& r) {
        if (r.stream->tls_open()) r.stream->send(std::string(kStreamHeader) + "<message id='over-tls'/>");
        else r.stream->send(kStreamHeader);
    };
    h.client.on_stanza_hook = [&](Peer& r) {
        if (take_proceed(r, client_ctx)) r.stream->send(kStreamHeader);  // queued until the handshake is done, then encrypted
    };
    h.connect();
    REQUIRE(h.run_until([&] { return h.client.events.size() >= 6; }));
    CHECK(h.client.stream->tls_open());
    CHECK(h.server.stream->tls_open());
    CHECK(h.client.events == std::vector<std::string>{"connected 0", "open from=a.test", "stanza proceed",
                                                      "tls", "open from=a.test", "stanza message"});
    CHECK(h.server.stream->tls()->authenticate_peer("b.test") == tls::PeerAuth::Authenticated);
    CHECK(h.client.stream->tls()->authenticate_peer("a.test") == tls::PeerAuth::Authenticated);
    h.client.stream->close("done");
    REQUIRE(h.run_until([&] { return h.server.closed; }));
    CHECK(h.server.closed_reason == "the peer closed TLS");
}

TEST_CASE("stream_tls: a stream restarted inside a callback under TLS parses the rest of the same read as the new stream") {
    auto contexts = tls_pair(false);
    tls::ContextResult& server_ctx = contexts.first;
    tls::ContextResult& client_ctx = contexts.second;

    Harness h;
    // STARTTLS as above; then, over TLS, the server restarts its stream on <restart/> (as after
    // SASL <success/>), and the client sends <restart/> and the new header in one write.
    h.server.on_stanza_hook = [&](Peer& r) {
        if (!answer_starttls(r, server_ctx) && r.events.back() == "stanza restart") r.stream->reset_parser();
    };
    h.server.on_open_hook = [](Peer& r) { r.stream->send(kStreamHeader); };
    h.client.on_connect_hook = ask_starttls;
    h.client.on_stanza_hook = [&](Peer& r) {
        if (take_proceed(r, client_ctx))
            r.stream->send(std::string(kStreamHeader) + "<restart xmlns='urn:example:restart'/>" + kStreamHeader +
                           "<message id='after-restart'/>");
    };
    h.connect();
    REQUIRE(h.run_until([&] { return h.server.events.size() >= 7 || h.server.closed; }));
    REQUIRE_FALSE(h.server.closed);  // (the rest fed to TLS as ciphertext would fail it)
    CHECK(h.server.stream->tls_open());
    CHECK(h.server.events == std::vector<std::string>{"open from=a.test", "stanza starttls", "tls", "open from=a.test",
                                                      "stanza restart", "open from=a.test", "stanza message"});
    CHECK(h.server.saw("after-restart"));
}
