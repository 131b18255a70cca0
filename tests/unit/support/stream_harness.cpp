#include "tests/unit/support/stream_harness.h"

#include <doctest/doctest.h>

#include "tests/unit/support/tls_test_ca.h"

namespace s2s::test {

const char* const kStreamHeader =
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
    "xmlns:db='jabber:server:dialback' version='1.0' from='a.test' to='b.test'>";

StreamHarness::StreamHarness() {
    listen([this](uv_stream_t* l) {
        server.stream = Stream::create(loop(), server, options, 1);
        REQUIRE(uv_accept(l, server.stream->handle()) == 0);
        server.stream->start();
    });
}

std::pair<tls::ContextResult, tls::ContextResult> tls_pair(bool client_certificate) {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    tls::ContextOptions so;
    so.role = tls::Role::Server;
    so.certificate = {pki.a.cert, pki.a.key, "", {}};
    so.cacertfile = pki.ca;
    tls::ContextOptions co;
    co.role = tls::Role::Client;
    if (client_certificate) co.certificate = {pki.srv.cert, pki.srv.key, "", {}};
    co.cacertfile = pki.ca;
    auto server_ctx = tls::Context::create(so), client_ctx = tls::Context::create(co);
    REQUIRE_MESSAGE(server_ctx, server_ctx.error);
    REQUIRE_MESSAGE(client_ctx, client_ctx.error);
    return {std::move(server_ctx), std::move(client_ctx)};
}

}  // namespace s2s::test
