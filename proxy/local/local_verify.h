// Checking a dialback key the local server presented on [[listen.local]] (XEP-0220, s2s-proxy in
// the receiving server's role): the local server is the authoritative server for our own domains,
// so s2s-proxy asks it. Each check is a verify-only connection of its own (as ejabberd makes
// them) to local.verify_server (else local.server): our header from=REMOTE to=LOCAL, then
// <db:verify from='REMOTE' to='LOCAL' id='ID'>KEY</db:verify> with the id of the stream
// s2s-proxy sent on [[listen.local]], the server's answer, and the close. Every wait has a
// deadline (connect_timeout, then state_timeout for the header, the features and the answer, and
// for each TLS step). With local.tls the connection is encrypted as LocalOut's are
// (local_tls_client.h), and a local server whose certificate does not check out cannot confirm
// anything.
//
// LocalVerifier starts them and bounds how many are under way at once (local.max_verifications):
// a process on the local listener must not make s2s-proxy open connections without bound.
#pragma once

#include <uv.h>

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/base/log.h"
#include "proxy/xmpp/context.h"
#include "proxy/local/local_tls.h"
#include "proxy/stream/stream.h"
#include "proxy/xmpp/stream_machine.h"

namespace s2s {

struct LocalVerifySettings {
    sockaddr_storage server{};          // local.verify_server, else local.server
    std::string server_text;            // as configured, for logs
    uint64_t connect_timeout_ms = 5000;
    uint64_t state_timeout_ms = 5000;   // for each of the header, the features and the answer
    size_t max_verifications = 100;     // local.max_verifications: under way at once, in total
    xml::StreamOptions parse;
    LocalTlsSettings tls;               // local.tls
};

class LocalVerify;

class LocalVerifier {
public:
    LocalVerifier(ProxyContext& ctx, const LocalVerifySettings& settings) : ctx_(ctx), settings_(settings) {}
    // Cancels what is still under way (their callbacks do not run).
    ~LocalVerifier();
    LocalVerifier(const LocalVerifier&) = delete;
    LocalVerifier& operator=(const LocalVerifier&) = delete;

    // Asks the local server whether `key` is the one it issued for its stream from `local` to
    // `remote` on which s2s-proxy sent the id `stream_id`. `done` runs exactly once, later (never
    // inside this call), unless cancel() was called first: Valid or Invalid as the server answered,
    // Unreachable when it could not be reached or ended the stream, Failed when it did not answer
    // in time or answered with an error. Returns a token for cancel(), or 0 when
    // max_verifications are under way already (nothing was started and `done` never runs).
    [[nodiscard]] uint64_t verify(const std::string& local, const std::string& remote, const std::string& stream_id,
                                  const std::string& key, Router::VerifyDone done);
    void cancel(uint64_t token);
    [[nodiscard]] size_t under_way() const noexcept { return active_.size(); }
    // The longest one may take: connect, header, features, answer (and with TLS, STARTTLS and the
    // handshake).
    [[nodiscard]] uint64_t timeout_ms() const noexcept {
        return settings_.connect_timeout_ms + (settings_.tls.mode.uses_tls() ? 5 : 3) * settings_.state_timeout_ms;
    }

private:
    friend class LocalVerify;
    void finished(uint64_t token) { active_.erase(token); }

    ProxyContext& ctx_;
    const LocalVerifySettings& settings_;
    std::unordered_map<uint64_t, LocalVerify*> active_;  // by token
    uint64_t last_token_ = 0;
};

// The states of a verify-only connection (LocalVerify::State). Each but Connecting and Closing
// waits for the server within state_timeout.
enum class LocalVerifyState {
    Connecting,        // TCP connect to the local server
    TlsHandshake,      // local.tls: direct TLS, or after <proceed/>; our header follows it
    AwaitingHeader,    // our header sent: the server's next
    AwaitingFeatures,  // its header came (1.0): its features next
    AwaitingProceed,   // <starttls/> sent: <proceed/> next
    AwaitingAnswer,    // db:verify sent: the answer next
    Closing,           // answered (or failed): the stream closes
};

// One verify-only connection to the local server.
class LocalVerify final : public StreamMachine<LocalVerify, LocalVerifyState> {
public:
    using State = LocalVerifyState;
    [[nodiscard]] static const char* state_name(State s) noexcept;

    [[nodiscard]] const char* kind() const noexcept override { return "local_verify"; }
    void shutdown(StreamError error, const std::string& why) override;
    // A verification lives for a few state_timeouts: there is nothing worth trimming.
    void trim_idle(uint64_t, uint64_t) override {}

private:
    friend class LocalVerifier;
    friend StreamMachine;
    struct Request {
        std::string local, remote, stream_id, key;
    };
    LocalVerify(ProxyContext& ctx, LocalVerifier& verifier, uint64_t token, Request request, Router::VerifyDone done);
    ~LocalVerify() override = default;
    // What a state arms on entry (StreamMachine::enter): each wait for the server, state_timeout.
    void entered(State s);
    void start();
    void send_verify();
    void handle_answer(const xml::Element& e);
    // Reports the verdict (once), forgets the verifier, and ends the stream (with a stream error
    // when `error` is set).
    void finish(Router::Verdict verdict, const std::string& why, std::optional<StreamError> error = std::nullopt,
                std::string_view text = {});
    // The verifier goes away or the asker no longer wants the answer: close without reporting.
    void abandon();
    [[nodiscard]] LogContext log_ctx() const noexcept { return LogContext{id(), request_.local, request_.remote}; }

    // Stream::Owner
    void on_connected(int status) override;
    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;
    void on_stream_error(StreamError error, std::string_view text) override;
    void on_timeout() override;
    void on_closed(const std::string& reason) override;
    void on_tls_established() override;
    void send_header();

    LocalVerifier* verifier_;  // null once finished or abandoned
    const LocalVerifySettings& settings_;
    uint64_t token_;
    Request request_;
    Router::VerifyDone done_;
    std::string failure_;      // why the connection failed, once known
};

}  // namespace s2s
