// TLS on the streams s2s-proxy opens to the local server (LocalOut's and LocalComponent's through
// LocalReconnect, LocalVerify's key checks), as local.tls says (local_tls.h): direct TLS from the
// first byte, or STARTTLS after the server's features; then the server's certificate is checked
// before our header goes out. Each step is counted in local_tls_total and a refusal is logged, so
// that every stream to the local server negotiates, counts and explains TLS the same way.
#pragma once

#include <cstdint>
#include <string>

#include "common/base/log.h"
#include "common/tls/tls.h"
#include "common/xml/xml.h"
#include "proxy/local/local_tls.h"
#include "proxy/stream/stream.h"

namespace s2s::local_tls {

// Why the TCP connect to the local server at `server` failed (`status`, a libuv error).
[[nodiscard]] std::string connect_failure(const std::string& server, int status);

// After connecting: starts TLS at once in Direct mode (true: wait for the handshake; false: our
// header goes out now).
bool start_direct(Stream& stream, const LocalTlsSettings& settings, const std::string& domain);

// What the server's <stream:features> on a stream that is not encrypted ask of us.
enum class Offer {
    Continue,  // go on in plain text (TLS off here, and the server does not require it)
    StartTls,  // send <starttls/>
    Fail,      // *why says why the link cannot go on
};
[[nodiscard]] Offer on_features(const LocalTlsSettings& settings, const xml::Element& features, std::string* why);

// The TLS steps on a stream to the local server, for element `e` that came while the stream
// awaited the server's features (`awaiting_proceed` false) or <proceed/> (true).
enum class Step {
    Other,         // no TLS step: the caller handles `e`
    Continue,      // the features, with TLS settled (on, or off as allowed): the stream goes on
    AwaitProceed,  // <starttls/> sent: <proceed/> next
    Handshake,     // <proceed/>: TLS from the next byte and a new stream; the handshake next
    Fail,          // the features: *why says why the stream cannot go on
    Refused,       // <failure/>: the server refused STARTTLS (*why says so)
};
[[nodiscard]] Step negotiate(Stream& stream, const LocalTlsSettings& settings, const std::string& domain,
                             const xml::Element& e, bool awaiting_proceed, std::string* why);

// The same for a stream machine whose State has AwaitingFeatures, AwaitingProceed and
// TlsHandshake, now in `state`: Other in any other state; on AwaitProceed and Handshake the
// machine moves on with `enter(AwaitingProceed or TlsHandshake)` (which arms its deadline).
template <class State, class Enter>
[[nodiscard]] Step negotiate(Stream& stream, const LocalTlsSettings& settings, const std::string& domain,
                             const xml::Element& e, State state, Enter&& enter, std::string* why) {
    if (state != State::AwaitingFeatures && state != State::AwaitingProceed) return Step::Other;
    Step step = negotiate(stream, settings, domain, e, state == State::AwaitingProceed, why);
    if (step == Step::AwaitProceed) enter(State::AwaitingProceed);
    else if (step == Step::Handshake) enter(State::TlsHandshake);
    return step;
}

// After the handshake: "" when the server's certificate is acceptable, else why not.
[[nodiscard]] std::string check_server(const LocalTlsSettings& settings, const tls::Session& session,
                                       const std::string& domain);

// After the handshake on a stream to the local server at `server`: check_server(), counted in
// local_tls_total and logged ("local-tls-refused", or the session at info level; at debug level
// when `quiet`). "" when the stream may go on, else why not.
[[nodiscard]] std::string established(const LocalTlsSettings& settings, const tls::Session& session,
                                      const std::string& domain, const LogContext& log, const std::string& server,
                                      bool quiet = false);

// A stream to the local server at `server` closed during its TLS handshake for `reason`: when that
// was the handshake's own failure ("TLS ..."), it is counted and logged ("local-tls-failed").
void note_handshake_failure(const LogContext& log, const std::string& server, const std::string& reason);

}  // namespace s2s::local_tls
