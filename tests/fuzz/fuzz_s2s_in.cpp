// libFuzzer target for the inbound public stream (proxy/s2s/s2s_in): a remote server's wire bytes,
// chosen by the fuzzer, arrive over a loopback connection in chunks of varying size; the stream
// negotiates (header, features, STARTTLS offered, required or refused, SASL, dialback claims and
// db:verify), authenticates pairs and forwards stanzas to a router that answers verifications
// as the input says. Then the remote half-closes. Promises checked, each run:
//  - the connection ends within 5 s of the remote's end of stream, whatever came before;
//  - once it has, nothing of it is left: the listener's live counts (streams, per host, TLS
//    handshakes) and the verification budget are back to zero, every reverse route it offered is
//    withdrawn, and every verification it asked for was answered or cancelled;
//  - nothing is forwarded for a pair before a verification for it came back valid.
//
// Input: [0] flags, [1] chunk seed, then the wire bytes.
//   flags bits 0-1: TLS mode (none, offer, require, none); 2-3: the router's verdict;
//   4: the router never answers; 5: bidi; 6: small parser limits; 7: a valid stream header
//   (b.test -> a.test) goes first.
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "proxy/xmpp/dialback.h"
#include "proxy/xmpp/policy.h"
#include "proxy/s2s/s2s_in.h"
#include "tests/fuzz/wire_peer.h"
#include "tests/unit/support/test_support.cpp"

using namespace s2s;

namespace {

struct FuzzRouter final : Router {
    struct Request {
        std::string remote, local;
        VerifyDone done;
        uint64_t token;
        bool cancelled = false;
    };
    std::vector<Request> requests;
    std::set<std::string> valid;  // "remote->local" a verification said valid for
    std::vector<std::string> delivered;
    std::map<std::string, ReverseRoute*> routes;
    Verdict verdict = Verdict::Valid;
    bool silent = false;
    uint64_t next_token = 0;
    uv_timer_t timer{};

    FuzzRouter() {
        uv_timer_init(&fuzzwire::Loop::get().uv, &timer);
        timer.data = this;
    }
    void from_remote(std::string_view remote, std::string_view local, xml::Document&, Stream*) override {
        delivered.push_back(std::string(remote) + "->" + std::string(local));
    }
    void refuse_from_remote(std::string_view, std::string_view, xml::Document&, const std::string&, Stream*) override {}
    uint64_t verify_dialback(const std::string& receiving, const std::string& originating, const std::string&,
                             const std::string&, VerifyDone done) override {
        requests.push_back({originating, receiving, std::move(done), ++next_token});
        if (!silent) uv_timer_start(&timer, [](uv_timer_t* t) { static_cast<FuzzRouter*>(t->data)->answer(); }, 0, 0);
        return next_token;
    }
    void cancel_verify(uint64_t token) override {
        for (auto& r : requests)
            if (r.token == token) r.cancelled = true;
    }
    uint64_t verify_timeout_ms() const override { return 0; }
    void offer_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) override {
        routes[remote + "->" + local] = &route;
    }
    void withdraw_reverse_route(const std::string& remote, const std::string& local, ReverseRoute& route) override {
        auto it = routes.find(remote + "->" + local);
        if (it != routes.end() && it->second == &route) routes.erase(it);
    }
    void answer() {
        for (size_t i = 0; i < requests.size(); ++i) {
            if (requests[i].cancelled || !requests[i].done) continue;
            auto done = std::move(requests[i].done);
            requests[i].done = nullptr;
            if (verdict == Verdict::Valid) valid.insert(requests[i].remote + "->" + requests[i].local);
            done(verdict, verdict == Verdict::Valid ? "" : "the authoritative server said no");
        }
    }
    void reset() {
        uv_timer_stop(&timer);
        requests.clear();
        valid.clear();
        delivered.clear();
        routes.clear();
    }
};

struct World {
    Config config;
    DialbackKeys keys{"fuzz secret"};
    std::unique_ptr<PolicyRules> policy;
    FuzzRouter router;
    std::unique_ptr<ProxyContext> ctx;
    std::shared_ptr<const tls::Context> tls_context;
    InboundSettings settings;
    fuzzwire::Listener listener{[this](uv_stream_t* l) { S2SIn::accept(*ctx, l, settings); }};

    World() {
        config.hosts = {"a.test", "a2.test"};
        policy = std::make_unique<PolicyRules>(config, false);
        ctx = std::make_unique<ProxyContext>(ProxyContext{config, *fuzzwire::Loop::get().loop, keys, *policy, router, {}, 0});
        // The certificate's files go once the context has read them.
        test::TempDir dir;
        std::string key;
        const std::string cert = test::make_certificate(dir, "a.test", &key);
        if (cert.empty()) fuzzwire::die("openssl could not make a certificate");
        tls::ContextOptions o;
        o.role = tls::Role::Server;
        o.certificate = {cert, key, "", {}};
        auto made = tls::Context::create(o);
        if (!made) fuzzwire::die("TLS context");
        tls_context = made.context;
        settings.listener = "listen.s2s.0";
        settings.max_connection_rate_per_host = {0, true};
        settings.state_timeout_ms = 0;  // no negotiation deadline: the run is over long before
    }
    static World& get() {
        static World* w = new World();
        return *w;
    }
};

const char kHeader[] =
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
    "xmlns:db='jabber:server:dialback' from='b.test' to='a.test' version='1.0'>";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    World& w = World::get();
    fuzzwire::Loop& loop = fuzzwire::Loop::get();
    const uint8_t flags = data[0];
    static const char* const kModes[] = {"false", "starttls", "starttls_required", "false"};
    w.settings.tls = starttls::mode(kModes[flags & 3]);
    w.settings.tls_context = w.settings.tls.uses_tls() ? w.tls_context : nullptr;
    static const Router::Verdict kVerdicts[] = {Router::Verdict::Valid, Router::Verdict::Invalid,
                                                Router::Verdict::Failed, Router::Verdict::Unreachable};
    w.router.verdict = kVerdicts[(flags >> 2) & 3];
    w.router.silent = (flags & 0x10) != 0;
    w.settings.bidi = (flags & 0x20) != 0;
    w.settings.parse = xml::StreamOptions{};
    if (flags & 0x40) {
        w.settings.parse.limits.max_stanza_size = 512;
        w.settings.parse.limits.max_depth = 4;
    }
    std::string wire;
    if (flags & 0x80) wire = kHeader;
    wire.append(reinterpret_cast<const char*>(data) + 2, size - 2);

    fuzzwire::Peer peer;
    peer.connect_to(w.listener.port());
    if (!loop.run_until([&] { return !w.ctx->connections.empty(); })) fuzzwire::die("the connection was not accepted");
    fuzzwire::Chunker chunks(data[1]);
    size_t pos = 0;
    while (pos < wire.size() && !peer.eof && !w.ctx->connections.empty()) {
        const size_t n = std::min(chunks.next(), wire.size() - pos);
        if (!peer.write(wire.data() + pos, n)) break;
        pos += n;
        loop.turn();
        peer.drain();
    }
    for (const std::string& pair : w.router.delivered)
        if (!w.router.valid.count(pair)) fuzzwire::die("a stanza was forwarded for a pair never verified");

    peer.half_close();
    if (!loop.run_until([&] {
            peer.drain();
            return w.ctx->connections.empty();
        }))
        fuzzwire::die("the inbound stream did not end within 5 s of the remote's end of stream");
    peer.close();
    loop.turn();

    if (w.settings.active != 0) fuzzwire::die("the listener still counts a stream");
    if (!w.settings.per_host.empty()) fuzzwire::die("the listener still counts a host");
    if (w.settings.handshakes != 0) fuzzwire::die("the listener still counts a TLS handshake");
    if (!w.router.routes.empty()) fuzzwire::die("a reverse route outlived its stream");
    if (w.ctx->verifications.total() != 0 || w.ctx->verifications.hosts() != 0)
        fuzzwire::die("the verification budget still counts a verification of a closed stream");
    for (auto& r : w.router.requests)
        if (r.done && !r.cancelled) fuzzwire::die("a verification was neither answered nor cancelled");
    w.router.reset();
    return 0;
}
