// libFuzzer target for the outbound public stream (proxy/s2s/s2s_out) through the router: the local
// server hands one stanza for b.test (and, as the input says, one dialback verification is asked
// of b.test); the link connects to a remote on loopback whose answers are the fuzzer's bytes,
// arriving in chunks of varying size (header, features, STARTTLS proceed or failure, SASL,
// dialback results, db:verify answers, bidi stanzas). Then the remote half-closes.
// Promises checked, each run:
//  - the link ends within 5 s of the remote's end of stream, whatever came before;
//  - nothing is lost: the stanza was written to the remote or bounced to its sender, exactly
//    once; the verification was answered exactly once;
//  - nothing of the link is left in the router or the connection set.
//
// Input: [0] flags, [1] chunk seed, then the remote's bytes.
//   flags bits 0-1: outgoing TLS mode (none, starttls, starttls_required, none); 2: ask a
//   verification; 3: bidi; 4: small parser limits; 7: a valid header with dialback
//   features (b.test -> a.test, id 'sid') goes first.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "proxy/xmpp/dialback.h"
#include "proxy/xmpp/policy.h"
#include "proxy/routing/router.h"
#include "proxy/s2s/s2s_out.h"
#include "tests/fuzz/wire_peer.h"

using namespace s2s;

namespace {

struct RecordingLocal final : LocalSide {
    std::vector<QueuedStanza> got;
    void deliver(const std::string&, const std::string&, QueuedStanza s) override { got.push_back(std::move(s)); }
};

struct World {
    int listen_fd = -1;
    uint16_t port = 0;
    Config config;
    DialbackKeys keys{"fuzz secret"};
    std::unique_ptr<PolicyRules> policy;
    std::unique_ptr<StaticResolver> resolver;
    std::shared_ptr<const tls::Context> client_tls;
    QueuedStanza stanza;

    World() {
        listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (listen_fd < 0 || ::bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(listen_fd, 16) != 0 || ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            fuzzwire::die("remote listener");
        port = ntohs(a.sin_port);
        config.hosts = {"a.test"};
        config.outgoing.address = {{"b.test", "127.0.0.1", port}};
        policy = std::make_unique<PolicyRules>(config, false);
        resolver = std::make_unique<StaticResolver>(*fuzzwire::Loop::get().loop, config);
        tls::ContextOptions co;
        co.role = tls::Role::Client;
        auto made = tls::Context::create(co);
        if (!made) fuzzwire::die("TLS client context");
        client_tls = made.context;
        auto d = xml::parse_element("<message from='alice@a.test/r' to='bob@b.test' id='m1'><body>hi</body></message>");
        if (!d) fuzzwire::die("stanza");
        stanza = QueuedStanza::capture(d->root(), xml::NamespaceScope::server_stream());
    }
    static World& get() {
        static World* w = new World();
        return *w;
    }
};

const char kOpening[] =
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
    "xmlns:db='jabber:server:dialback' from='b.test' to='a.test' version='1.0' id='sid'>"
    "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    World& w = World::get();
    fuzzwire::Loop& loop = fuzzwire::Loop::get();
    const uint8_t flags = data[0];

    OutboundSettings settings;
    static const char* const kModes[] = {"false", "starttls", "starttls_required", "false"};
    settings.tls = starttls::mode(kModes[flags & 3]);
    if (settings.tls.uses_tls()) settings.tls_context = w.client_tls;
    settings.bidi = (flags & 8) != 0;
    if (flags & 0x10) {
        settings.parse.limits.max_stanza_size = 512;
        settings.parse.limits.max_depth = 4;
    }
    RecordingLocal local;
    auto router = std::make_unique<ProxyRouter>(settings, *w.resolver);
    auto ctx = std::make_unique<ProxyContext>(ProxyContext{w.config, *loop.loop, w.keys, *w.policy, *router, {}, 0});
    router->attach(*ctx, local);

    router->to_remote("a.test", "b.test", w.stanza);
    int verdicts = 0;
    if (flags & 4)
        (void)router->verify_dialback("a.test", "b.test", "in-stream-id", "some-key",
                                      [&verdicts](Router::Verdict, const std::string&) { ++verdicts; });

    fuzzwire::Peer peer;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        const int fd = ::accept4(w.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
            peer.adopt(fd);
            break;
        }
        if (std::chrono::steady_clock::now() > until) fuzzwire::die("the link did not connect within 5 s");
        loop.turn(1);
    }
    std::string wire;
    if (flags & 0x80) wire = kOpening;
    wire.append(reinterpret_cast<const char*>(data) + 2, size - 2);
    fuzzwire::Chunker chunks(data[1]);
    loop.turn();
    peer.drain();
    size_t pos = 0;
    while (pos < wire.size() && !peer.eof && router->links() > 0) {
        const size_t n = std::min(chunks.next(), wire.size() - pos);
        if (!peer.write(wire.data() + pos, n)) break;
        pos += n;
        loop.turn();
        peer.drain();
    }
    peer.half_close();
    if (!loop.run_until([&] {
            peer.drain();
            return ctx->connections.empty() && router->links() == 0;
        }))
        fuzzwire::die("the outbound link did not end within 5 s of the remote's end of stream");
    peer.close();
    loop.turn();

    const RouterCounters& c = router->counters();
    const size_t bounced = local.got.size();
    if (c.delivered_remote + bounced != 1) {
        std::fprintf(stderr, "delivered %llu, bounced %zu\n", static_cast<unsigned long long>(c.delivered_remote), bounced);
        fuzzwire::die("the stanza was not delivered or bounced exactly once");
    }
    if ((flags & 4) && verdicts != 1) fuzzwire::die("the verification was not answered exactly once");
    if (router->reverse_routes() != 0) fuzzwire::die("a reverse route outlived its link");
    router.reset();
    ctx.reset();
    loop.turn();
    return 0;
}
