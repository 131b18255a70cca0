// The PROXY header stage (proxy/net/proxy_stage): trusted and untrusted senders, what is refused, and
// which bytes are left for the stream, fed whole and one byte at a time.
#include "proxy/net/proxy_stage.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "common/net/net_address.h"
#include "proxy/ops/metrics.h"

using s2s::ProxyOutcome;
using s2s::ProxyStage;

namespace {

const std::string kStream = "<?xml version='1.0'?><stream:stream xmlns='jabber:server'>";
const std::string kV1 = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 5269\r\n";
const std::string kV2Sig("\r\n\r\n\0\r\nQUIT\n", 12);

// v2 PROXY over TCP/IPv4, 192.0.2.9:40001 -> 127.0.0.1:5269.
std::string v2_header() {
    std::string h = kV2Sig + std::string("\x21\x11\x00\x0C", 4);
    h += std::string("\xC0\x00\x02\x09\x7F\x00\x00\x01\x9C\x41\x14\x95", 12);
    return h;
}

// Feeds `bytes` in pieces of `piece` bytes until the stage decides; returns the stream bytes it
// leaves (held ones first), as a caller would feed them on.
std::string run(ProxyStage& st, const std::string& bytes, size_t piece) {
    for (size_t at = 0; at < bytes.size(); at += piece) {
        size_t n = std::min(piece, bytes.size() - at);
        auto r = st.feed(bytes.data() + at, n);
        if (r.outcome == ProxyOutcome::pending) {
            CHECK(r.consumed == n);
            continue;
        }
        if (s2s::is_refusal(r.outcome)) return "";
        return std::string(st.held()) + bytes.substr(at + r.consumed);
    }
    return "";
}

std::string source(const ProxyStage& st) {
    return s2s::format_sockaddr(reinterpret_cast<const sockaddr*>(&st.parser().source()));
}

}  // namespace

TEST_CASE("proxy_stage: a trusted sender's v1 and v2 headers name the client; the rest is the stream's") {
    for (size_t piece : {size_t{1}, size_t{7}, size_t{4096}}) {
        CAPTURE(piece);
        ProxyStage a(true);
        CHECK(run(a, kV1 + kStream, piece) == kStream);
        CHECK(a.outcome() == ProxyOutcome::proxied);
        CHECK(source(a) == "192.0.2.7:40000");
        CHECK(a.describe() == "PROXY v1 header for client 192.0.2.7:40000");

        ProxyStage b(true);
        CHECK(run(b, v2_header() + "\x16\x03\x01", piece) == "\x16\x03\x01");
        CHECK(b.outcome() == ProxyOutcome::proxied);
        CHECK(source(b) == "192.0.2.9:40001");
    }
}

TEST_CASE("proxy_stage: LOCAL and UNKNOWN headers keep the connection's own address") {
    ProxyStage local(true);
    CHECK(run(local, kV2Sig + std::string("\x20\x00\x00\x00", 4) + kStream, 4096) == kStream);
    CHECK(local.outcome() == ProxyOutcome::local);
    CHECK(local.describe().find("LOCAL") != std::string::npos);
    ProxyStage unknown(true);
    CHECK(run(unknown, "PROXY UNKNOWN\r\n" + kStream, 3) == kStream);
    CHECK(unknown.outcome() == ProxyOutcome::unknown);
}

TEST_CASE("proxy_stage: a trusted sender without a header, or with a bad one, is refused") {
    ProxyStage none(true);
    CHECK(run(none, kStream, 4096).empty());
    CHECK(none.outcome() == ProxyOutcome::missing_header);
    CHECK(s2s::is_refusal(none.outcome()));
    CHECK(none.describe().find("no PROXY header") != std::string::npos);

    ProxyStage bad(true);
    CHECK(run(bad, "PROXY TCP4 192.0.2.7 127.0.0.1 99999 5269\r\n" + kStream, 5).empty());
    CHECK(bad.outcome() == ProxyOutcome::malformed);
    CHECK(bad.parser().error() == s2s::ProxyError::v1_bad_port);
    CHECK(bad.describe() == s2s::proxy_error_text(s2s::ProxyError::v1_bad_port));

    // Decided: further bytes change nothing.
    auto again = bad.feed(kV1.data(), kV1.size());
    CHECK(again.outcome == ProxyOutcome::malformed);
    CHECK(again.consumed == 0);
}

TEST_CASE("proxy_stage: an untrusted sender is direct unless its first bytes are a header") {
    for (size_t piece : {size_t{1}, size_t{2}, size_t{4096}}) {
        CAPTURE(piece);
        ProxyStage xmpp(false);
        CHECK(run(xmpp, kStream, piece) == kStream);
        CHECK(xmpp.outcome() == ProxyOutcome::direct);
        CHECK_FALSE(s2s::is_refusal(xmpp.outcome()));

        ProxyStage v1(false);
        CHECK(run(v1, kV1 + kStream, piece).empty());
        CHECK(v1.outcome() == ProxyOutcome::untrusted_sender);

        ProxyStage v2(false);
        CHECK(run(v2, v2_header() + kStream, piece).empty());
        CHECK(v2.outcome() == ProxyOutcome::untrusted_sender);
        CHECK(v2.describe() == "a PROXY header from a sender outside proxy_trusted");

        // Bytes that start like a signature are held, then given back whole.
        ProxyStage almost(false);
        CHECK(run(almost, "PROXZ<stream/>", piece) == "PROXZ<stream/>");
        CHECK(almost.outcome() == ProxyOutcome::direct);
        ProxyStage crlf(false);
        CHECK(run(crlf, "\r\n\r\n<a/>", piece) == "\r\n\r\n<a/>");
        CHECK(crlf.outcome() == ProxyOutcome::direct);
    }
    // The decision needs only the first bytes: "P" waits, "<" does not.
    ProxyStage wait(false);
    CHECK(wait.feed("P", 1).outcome == ProxyOutcome::pending);
    CHECK(wait.held().empty());
    CHECK(wait.describe() == "waiting for the first bytes");
}

TEST_CASE("proxy_stage: the decided outcome is reported once: a refusal closes, a header or a direct peer goes on") {
    s2s::LogContext log{1, "", ""};
    uint64_t refused = s2s::metrics().proxy_headers.get("refused:untrusted_sender");
    ProxyStage untrusted(false);
    (void)run(untrusted, kV1 + kStream, 4096);
    CHECK_FALSE(untrusted.report("192.0.2.1:1", log));
    CHECK(s2s::metrics().proxy_headers.get("refused:untrusted_sender") == refused + 1);

    ProxyStage direct(false);
    (void)run(direct, kStream, 4096);
    CHECK(direct.report("192.0.2.1:1", log));

    ProxyStage trusted(true);
    (void)run(trusted, v2_header() + kStream, 4096);
    uint64_t accepted = s2s::metrics().proxy_headers.get(std::string("accepted:") + s2s::proxy_outcome_name(trusted.outcome()));
    CHECK(trusted.report("192.0.2.1:1", log));
    CHECK(s2s::metrics().proxy_headers.get(std::string("accepted:") + s2s::proxy_outcome_name(trusted.outcome())) ==
          accepted + 1);
}

TEST_CASE("proxy_stage: a trusted sender's missing header past the deadline is counted as a timeout") {
    uint64_t before = s2s::metrics().proxy_headers.get("refused:timeout");
    ProxyStage waiting(true);
    CHECK(waiting.report_timeout(3000, "192.0.2.1:1", s2s::LogContext{1, "", ""}) == "no PROXY header within 3000 ms");
    CHECK(s2s::metrics().proxy_headers.get("refused:timeout") == before + 1);
}
