// STARTTLS as a listener offers and answers it (proxy/features/starttls), on a stream that is not encrypted.
#include <doctest/doctest.h>

#include "common/config/config_table.h"
#include "proxy/features/starttls.h"
#include "tests/unit/support/loop_harness.h"

using namespace s2s;

TEST_CASE("starttls: every mode the config accepts has its row in the table") {
    for (const char* key : {"listen.s2s.0.tls.mode", "listen.local.0.tls.mode", "s2s.outgoing.tls.mode",
                            "local.tls.mode", "s2s.use_starttls"}) {
        const config::OptionSpec* spec = config::find_option(key);
        REQUIRE(spec);
        REQUIRE_FALSE(spec->choices.empty());
        for (const std::string& name : spec->choices) {
            INFO(key, " ", name);
            CHECK(starttls::mode(name).name == name);
        }
    }
    CHECK(starttls::mode("no such mode").name == starttls::plain().name);
    CHECK_FALSE(starttls::plain().uses_tls());
}

TEST_CASE("starttls: what each mode offers, requires and checks") {
    // name: direct, starttls, required, trusted, strict_handshake
    struct Row {
        const char* name;
        bool direct, starttls, required, trusted, strict;
    };
    for (Row r : {Row{"false", false, false, false, false, false}, Row{"optional", false, true, false, false, false},
                  Row{"required", false, true, true, false, false}, Row{"required_trusted", false, true, true, true, false},
                  Row{"tls", true, false, false, false, true}, Row{"starttls", false, true, false, false, true},
                  Row{"starttls_required", false, true, true, false, true}}) {
        CAPTURE(r.name);
        const starttls::Mode& m = starttls::mode(r.name);
        CHECK(m.direct == r.direct);
        CHECK(m.starttls == r.starttls);
        CHECK(m.required == r.required);
        CHECK(m.trusted == r.trusted);
        CHECK(m.strict_handshake == r.strict);
        CHECK(m.uses_tls() == (r.direct || r.starttls));
    }
}

TEST_CASE("starttls: a side's mode is its tls.mode, else starttls for a tls subsection (never weaker), else the default") {
    TlsOptions t;
    const starttls::Mode& required = starttls::mode("required");
    CHECK(starttls::configured(t, starttls::plain()).name == "false");
    CHECK(starttls::configured(t, required).name == "required");
    t.present = true;
    CHECK(starttls::configured(t, starttls::plain()).name == "starttls");
    CHECK(starttls::configured(t, required).name == "starttls_required");
    t.mode = "tls";
    CHECK(starttls::configured(t, required).name == "tls");
}

TEST_CASE("starttls: offered with <required/> only in a mode that requires it, never in a plain or direct mode") {
    test::TestLoop t;
    test::Peer& p = t.new_peer();
    p.stream = Stream::create(t.loop(), p, {}, 1);
    CHECK(starttls::feature(starttls::mode("false"), *p.stream).empty());
    CHECK(starttls::feature(starttls::mode("tls"), *p.stream).empty());
    CHECK(starttls::feature(starttls::mode("starttls"), *p.stream) ==
          "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>");
    CHECK(starttls::feature(starttls::mode("starttls_required"), *p.stream) ==
          "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>");
    CHECK(starttls::required_first(starttls::mode("starttls_required"), *p.stream));
    CHECK_FALSE(starttls::required_first(starttls::mode("starttls"), *p.stream));
    CHECK_FALSE(starttls::required_first(starttls::mode("false"), *p.stream));
}

TEST_CASE("starttls: <starttls/> gets <proceed/> only where it was offered") {
    test::TestLoop t;
    test::Peer& p = t.new_peer();
    p.stream = Stream::create(t.loop(), p, {}, 1);
    std::string why;
    CHECK(starttls::may_proceed(starttls::mode("starttls"), *p.stream, &why));
    CHECK(starttls::may_proceed(starttls::mode("starttls_required"), *p.stream, &why));
    CHECK(why.empty());
    CHECK_FALSE(starttls::may_proceed(starttls::mode("false"), *p.stream, &why));
    CHECK(why == "STARTTLS asked but not offered");
    CHECK_FALSE(starttls::may_proceed(starttls::mode("tls"), *p.stream, &why));
}

TEST_CASE("starttls: an outbound link asks as its mode says, fails without the TLS it requires, or goes on") {
    auto with = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                                   "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>");
    auto required = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                                       "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                                       "</stream:features>");
    auto without = xml::parse_element("<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>");
    REQUIRE(with);
    REQUIRE(required);
    REQUIRE(without);
    using starttls::ClientStep;
    std::string why;
    CHECK(starttls::on_features(starttls::mode("starttls"), false, false, with->root(), "b.test", &why) == ClientStep::Ask);
    CHECK(starttls::on_features(starttls::mode("false"), false, true, with->root(), "b.test", &why) == ClientStep::Ask);
    CHECK(starttls::on_features(starttls::mode("false"), false, false, with->root(), "b.test", &why) == ClientStep::Continue);
    CHECK(starttls::on_features(starttls::mode("starttls"), true, false, with->root(), "b.test", &why) == ClientStep::Continue);
    CHECK(starttls::on_features(starttls::mode("starttls"), false, false, without->root(), "b.test", &why) ==
          ClientStep::Continue);
    CHECK(why.empty());
    CHECK(starttls::on_features(starttls::mode("false"), false, false, required->root(), "b.test", &why) == ClientStep::Fail);
    CHECK(why == "b.test requires TLS, but TLS is off here (s2s.use_starttls / s2s.outgoing.tls.mode)");
    CHECK(starttls::on_features(starttls::mode("starttls_required"), false, false, without->root(), "b.test", &why) ==
          ClientStep::Fail);
    CHECK(why == "b.test does not offer STARTTLS, which is required here");
    CHECK(starttls::pre_1_0_acceptable(starttls::mode("starttls"), false, "b.test", &why));
    CHECK(starttls::pre_1_0_acceptable(starttls::mode("tls"), true, "b.test", &why));
    CHECK_FALSE(starttls::pre_1_0_acceptable(starttls::mode("starttls_required"), false, "b.test", &why));
    CHECK(why == "b.test does not support STARTTLS, which is required");
    CHECK(starttls::kRequest == "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
}

TEST_CASE("starttls: asked after a domain was authenticated or a verification started, it is refused") {
    LogContext log{1, "a.test", "b.test"};
    std::string why;
    CHECK(starttls::early_enough(false, false, log, &why));
    CHECK(why.empty());
    CHECK_FALSE(starttls::early_enough(true, true, log, &why));
    CHECK(why == "STARTTLS asked after a domain was authenticated on the plain stream");
    CHECK_FALSE(starttls::early_enough(false, true, log, &why));
    CHECK(why == "STARTTLS asked after a dialback verification was started on the plain stream");
}
