// proxy/app/tls_contexts: every TLS context a config asks for, or the first that cannot be made.
#include <doctest/doctest.h>

#include <string>

#include "common/config/config_load.h"
#include "proxy/app/tls_contexts.h"
#include "tests/unit/support/test_support.h"
#include "tests/unit/support/tls_test_ca.h"

using namespace s2s;

namespace {

config::LoadResult load(const std::string& extra) {
    return config::load("t.toml", "[general]\nhosts = [\"a.test\"]\n[local]\nserver = \"127.0.0.1:1\"\n" + extra, {});
}

}  // namespace

TEST_CASE("tls_contexts: a config without TLS asks for none") {
    config::LoadResult r = load("[s2s]\nuse_starttls = \"false\"\n[[listen.s2s]]\nport = 5269\n[[listen.local]]\nport = 5270\n");
    REQUIRE(r.ok());
    TlsContexts tls;
    std::string error;
    REQUIRE_MESSAGE(build_tls_contexts(r.config, &tls, &error), error);
    CHECK(tls.outgoing.get() == nullptr);
    CHECK(tls.domains.empty());
    REQUIRE(tls.listeners.size() == 1);  // one entry per listener, null without TLS
    CHECK(tls.listeners[0].get() == nullptr);
    REQUIRE(tls.local_listeners.size() == 1);
    CHECK(tls.local_listeners[0].get() == nullptr);
    CHECK(tls.local_client.get() == nullptr);
}

TEST_CASE("tls_contexts: a listener with TLS gets a context; one that cannot be made fails the whole set") {
    const test::TestPki& pki = test::TestPki::get();
    REQUIRE_MESSAGE(pki.ok(), pki.error());
    config::LoadResult r = load("[s2s]\nuse_starttls = \"false\"\n[[listen.s2s]]\nport = 5269\ntls.mode = \"starttls\"\n"
                                "tls.verify_mode = \"none\"\ntls.certfile = \"" + pki.a.cert + "\"\ntls.keyfile = \"" +
                                pki.a.key + "\"\n");
    for (auto& e : r.errors) MESSAGE(e.str());
    REQUIRE(r.ok());
    TlsContexts tls;
    std::string error;
    REQUIRE_MESSAGE(build_tls_contexts(r.config, &tls, &error), error);
    REQUIRE(tls.listeners.size() == 1);
    CHECK(tls.listeners[0].get() != nullptr);

    r.config.listen_s2s[0].tls.certfile = "/nonexistent/a.pem";
    TlsContexts broken;
    CHECK_FALSE(build_tls_contexts(r.config, &broken, &error));
    CHECK_FALSE(error.empty());
}
