// Two Streams talking to each other over loopback TCP in one TestLoop, and TLS contexts from the
// test CA: the fixtures of the tests of proxy/stream/stream (test_stream*.cpp) and proxy/stream/flow_gate.
#pragma once

#include <utility>

#include "common/tls/tls_context.h"
#include "proxy/stream/stream.h"
#include "tests/unit/support/loop_harness.h"

namespace s2s::test {

// A stream header from a.test to b.test, with the dialback namespace.
extern const char* const kStreamHeader;

// A TestLoop whose listener wraps each accepted socket in a Stream for `server`, and a `client`.
struct StreamHarness : TestLoop {
    Peer& server = new_peer();
    Peer& client = new_peer();
    xml::StreamOptions options;  // the server stream's parser
    StreamHarness();
    void connect() { TestLoop::connect(client, 2); }
};

// TLS contexts from the test CA: the server with a.test's certificate, the client with srv's
// (or none); both trust the CA.
std::pair<tls::ContextResult, tls::ContextResult> tls_pair(bool client_certificate);

}  // namespace s2s::test
