// SASL EXTERNAL between servers (RFC 6120 §6, XEP-0178): a server authenticates the domain of its
// stream with its TLS certificate. Both roles, for the public streams: the receiving side (s2s_in:
// offering the mechanism, judging <auth/> against the peer's certificate per RFC 6125, answering
// <success/> or <failure/>) and the initiating side (s2s_out: choosing EXTERNAL when it is offered
// and we hold a certificate, sending <auth/>, reading the answer).
//
// Neither side touches a socket: each takes parsed elements and the TLS session and returns the
// bytes to send, so that the stream that owns it only sends them and sequences what comes next
// (the stream restart after <success/>, dialback after <failure/>). Log lines and the
// sasl_external_total counter are written here.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/base/log.h"
#include "common/xmpp/stream_error.h"
#include "common/tls/tls.h"
#include "common/xml/xml.h"
#include "proxy/xmpp/context.h"

namespace s2s {

// The receiving server's side, one per inbound stream.
class SaslExternalServer {
public:
    enum class State {
        Open,       // no <success/> yet: <auth/> may come (and fail up to kMaxFailures times)
        Succeeded,  // <success/> sent: a second <auth/> ends the stream
    };
    static constexpr int kMaxFailures = 2;  // a failure past this many ends the stream

    // What to do after an <auth/> or <abort/>.
    struct Answer {
        std::string bytes;                  // to send now: <success/> or <failure/> ("" for none)
        std::string authenticated;          // on success: the domain the certificate proved
        std::optional<StreamError> error;   // set: end the stream with it (after sending `bytes`)
        std::string error_text;
    };
    // Whether a domain may authenticate on this stream (the listener's access rule, the pairs one
    // stream may hold): the failure text when not (answered not-authorized), else nullopt. It logs
    // and counts its own refusals.
    using PairCheck = std::function<std::optional<std::string>(const std::string& domain)>;

    // The <mechanisms/> feature to list now ("" for none): offered over TLS, before a success,
    // when the stream header's 'from' names a domain that may be claimed and that the peer's
    // certificate proves. `tls`: the session, null on a plain stream.
    [[nodiscard]] std::string feature(const ProxyContext& ctx, const tls::Session* tls, const std::string& claimed) const;
    // Judges <auth/>: the mechanism, TLS, the authorization identity (base64; "=" or nothing for
    // the header's 'from'), the domain against our hosts, policy and `check`, then the peer's
    // certificate for it.
    [[nodiscard]] Answer on_auth(const ProxyContext& ctx, const tls::Session* tls, const xml::Element& auth,
                                 const std::string& claimed, const LogContext& log, const PairCheck& check);
    // <abort/>: a failure like any other.
    [[nodiscard]] Answer on_abort(const LogContext& log) { return failure(log, "aborted", ""); }

    [[nodiscard]] State state() const noexcept { return state_; }
    [[nodiscard]] bool succeeded() const noexcept { return state_ == State::Succeeded; }

private:
    [[nodiscard]] Answer failure(const LogContext& log, const char* condition, const std::string& text);

    State state_ = State::Open;
    int failures_ = 0;
};

// The initiating server's side, one per outbound link.
class SaslExternalClient {
public:
    enum class State {
        NotTried,   // nothing sent on this link
        Sent,       // <auth/> sent: waiting for <success/> or <failure/>
        Succeeded,  // <success/>: the domain our stream is from is authenticated
        Refused,    // <failure/>: dialback authenticates instead (not tried again on this link)
    };

    // Whether `features` list the EXTERNAL mechanism.
    [[nodiscard]] static bool offered(const xml::Element& features);
    // Whether to authenticate with EXTERNAL now: offered, over TLS, with a certificate of ours,
    // and not yet tried on this link.
    [[nodiscard]] bool wanted(const xml::Element& features, bool tls_open, bool have_certificate) const;
    // The <auth/> to send (no authorization identity: the stream's 'from'); waits for the answer.
    [[nodiscard]] std::string start();
    // Reads the answer (<success/> or <failure/> in the SASL namespace, while Sent): true on
    // success. Logged and counted either way.
    [[nodiscard]] bool on_answer(const xml::Element& answer, const LogContext& log, const std::string& remote);

    [[nodiscard]] State state() const noexcept { return state_; }
    [[nodiscard]] bool succeeded() const noexcept { return state_ == State::Succeeded; }

private:
    State state_ = State::NotTried;
};

}  // namespace s2s
