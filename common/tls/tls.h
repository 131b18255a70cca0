// The TLS engine: one mbedTLS session behind a byte-in/byte-out interface. No socket I/O
// happens here (letting mbedTLS read the socket costs 25%): the owner feeds what libuv read and
// writes what the session produced, once per read callback (batching).
//
// Driving a session from libuv (the owner is e.g. proxy/stream/stream):
//
//   tls::SessionOptions so;
//   so.server_name = "remote.example";                           // client: SNI
//   tls::Session tls(ctx, so);
//   tls.handshake();                                             // client: makes ClientHello
//   flush();                                                     // uv_write(tls.take_ciphertext())
//
//   on_read(buf, n):
//     if (!tls.feed_ciphertext(buf, n)) -> close(tls.failure_reason())
//     if (tls.state() == tls::State::Handshaking) {
//       switch (tls.handshake()) {
//         case Progress::WantMore: flush(); return;              // re-arm state_timeout
//         case Progress::Failed:   flush(); close(tls.failure_reason()); return;
//         case Progress::Done:     check tls.peer_verification(), tls.alpn_protocol()...
//       }                                                        // and fall through: data may
//     }                                                          // follow Finished
//     std::string plain;
//     switch (tls.read_plaintext(plain)) {                       // every complete record
//       case IoResult::Ok:     parse(plain); break;
//       case IoResult::Closed: parse(plain); close("peer closed TLS"); break;
//       case IoResult::Failed: close(tls.failure_reason()); break;
//     }
//     ... tls.write_plaintext(batched_reply) ...                 // one record per call: batch
//     flush();                                                   // one uv_write per callback
//
//   on_eof:      the peer closed TCP (without close_notify if state() is still Open)
//   on shutdown: tls.close_notify(); flush(); close the socket after the write completes.
//
// Deadlines (handshake timeout, idle) are the owner's: nothing here keeps time.
//
// Peer certificates: peer_verification() says whether the chain is good (and why not, in
// words); authenticate_peer(domain) adds the RFC 6125 name check (tls_identity.h) for SASL
// EXTERNAL / secure_domains. A bad chain fails the handshake only if the context has
// require_valid_peer. A resumed session (resumed()) exchanges no certificates: the peer's leaf
// and the chain's verdict come from the handshake that made the ticket, and what may have
// changed since is checked again: the leaf's validity dates and the context's CRLs.
//
// Memory: each session allocates mbedTLS's record buffers (2.28: 16 KB + ~350 B each way,
// for the life of the session) plus the peer's certificate chain kept by mbedTLS; the input
// and output buffers here hold only bytes in transit and are freed by release_idle_memory().
// See the measurement in tests/unit/common/tls/test_tls.cpp.
//
// Not thread-safe (one loop thread, like its Context). Nothing throws except std::bad_alloc.
#pragma once

#include "common/base/buffer.h"
#include "common/tls/tls_context.h"
#include "common/tls/tls_identity.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct mbedtls_x509_crt;

namespace s2s::tls {

/// Where a session is. Facts like "can I write?" derive from it.
enum class State : std::uint8_t {
    Handshaking,  ///< handshake messages are being exchanged; no application data yet
    Open,         ///< handshake done: plaintext flows both ways
    Closing,      ///< we sent close_notify and wait for the peer's; reading still works
    Closed,       ///< the peer's close_notify arrived (ours is in the output): nothing more flows
    Failed,       ///< fatal error, failure_reason() says why; flush the output (an alert), close
};
[[nodiscard]] const char* state_name(State s) noexcept;

/// Result of handshake().
enum class Progress : std::uint8_t {
    Done,      ///< the handshake is complete (state Open); every later call says Done
    WantMore,  ///< waiting for the peer: flush the output and feed more input
    Failed,    ///< state Failed: failure_reason() says why
};

/// Result of read_plaintext() and write_plaintext().
enum class IoResult : std::uint8_t {
    Ok,       ///< done (a read may have produced no bytes: a partial record waits for more)
    NotOpen,  ///< called during the handshake: nothing done
    Closed,   ///< read: the peer sent close_notify now or before; write: we are closing, nothing sent
    Failed,   ///< fatal error: state Failed, failure_reason() says why
};

/// What the peer's certificate chain is worth (names aside).
enum class PeerCertificate : std::uint8_t {
    NotChecked,  ///< handshake not done, or verify_mode none
    Missing,     ///< the peer sent none
    Valid,       ///< chains to a trusted CA (or an accepted self-signed leaf, see below), in date, not revoked
    Invalid,     ///< PeerVerification::reason says why
};

struct PeerVerification {
    PeerCertificate status = PeerCertificate::NotChecked;
    std::uint32_t flags = 0;  ///< MBEDTLS_X509_BADCERT_* / BADCRL_* left after our policy; 0 if Valid
    std::string reason;       ///< words for logs ("expired; not signed by a trusted CA"); "" if Valid
    /// Valid only because verify_mode selfsigned_peer lets a self-signed leaf through: the session
    /// is encrypted, but anyone can make such a certificate for any name, so it proves none.
    bool self_signed_only = false;
};

/// Whether the peer proved it is `domain` with its certificate (SASL EXTERNAL, XEP-0178).
enum class PeerAuth : std::uint8_t {
    Authenticated,  ///< valid chain and the certificate names `domain`
    NoCertificate,  ///< none was sent
    Untrusted,      ///< the chain is not valid, was not checked, or is a self-signed leaf: see peer_verification()
    NameMismatch,   ///< valid chain, but for other names: see describe_identities(peer_identities())
};
[[nodiscard]] const char* peer_auth_name(PeerAuth a) noexcept;

/// A client session's resumption state (its ticket), from Session::save_session().
class SavedSession {
public:
    SavedSession();
    ~SavedSession();
    SavedSession(const SavedSession&) = delete;
    SavedSession& operator=(const SavedSession&) = delete;
    struct Impl;
    [[nodiscard]] Impl& impl() const noexcept { return *impl_; }

private:
    std::unique_ptr<Impl> impl_;
};

struct SessionOptions {
    /// Client: the name sent with SNI (the remote domain, or tls.sni_host); empty: no SNI.
    std::string server_name;
    /// Client: resume this earlier session (a ticket for the same server) if the server agrees.
    std::shared_ptr<const SavedSession> resume;
};

class Session {
public:
    /// Limit on ciphertext waiting to be written (the peer is not reading): the session fails.
    static constexpr std::size_t kMaxPendingOutput = 16 * 1024 * 1024;
    /// Limit on ciphertext fed but not yet processed (the owner should process every feed).
    static constexpr std::size_t kMaxPendingInput = 1024 * 1024;

    /// A session for the context's role. If mbedTLS cannot set it up (out of memory), the
    /// session starts Failed with the reason; nothing else to check here.
    explicit Session(std::shared_ptr<const Context> context, const SessionOptions& options = {});
    ~Session();
    Session(Session&&) noexcept;             ///< the moved-from session may only be destroyed
    Session& operator=(Session&&) noexcept;  ///< or assigned to
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // ---- input ------------------------------------------------------------------------------
    /// Queues bytes read from the socket. False (and state Failed) if more than
    /// kMaxPendingInput would be waiting. Process them with handshake() / read_plaintext().
    [[nodiscard]] bool feed_ciphertext(const void* data, std::size_t len);
    [[nodiscard]] bool feed_ciphertext(std::string_view bytes) { return feed_ciphertext(bytes.data(), bytes.size()); }

    /// Runs the handshake as far as the input allows (a client's first call makes ClientHello).
    Progress handshake();
    /// Decrypts every complete record in the input and appends the plaintext to `out`.
    IoResult read_plaintext(std::string& out);
    /// Encrypts all of `data` (in records of at most 16 KB) into the output.
    IoResult write_plaintext(const void* data, std::size_t len);
    IoResult write_plaintext(std::string_view text) { return write_plaintext(text.data(), text.size()); }
    /// Sends close_notify (Open -> Closing); during the handshake it just gives up (-> Closed).
    void close_notify();

    // ---- output -----------------------------------------------------------------------------
    [[nodiscard]] bool has_output() const noexcept;
    [[nodiscard]] std::size_t pending_output_size() const noexcept;
    /// The ciphertext to write, contiguous; consume_output(n) after n bytes are written...
    [[nodiscard]] std::string_view pending_output() const noexcept;
    void consume_output(std::size_t n) noexcept;
    /// ...or take it all (the Buffer can live in the uv_write request until it completes).
    [[nodiscard]] Buffer take_ciphertext() noexcept;

    // ---- state ------------------------------------------------------------------------------
    [[nodiscard]] State state() const noexcept;
    [[nodiscard]] Role role() const noexcept;
    /// Why the session failed, for logs ("handshake: peer sent alert unknown_ca (48)"); "" unless Failed.
    [[nodiscard]] const std::string& failure_reason() const noexcept;
    // The failure as a short label for counters: "certificate" (peer certificate rejected),
    // "peer_alert", "not_tls", "no_common_cipher", "no_common_version", "input_full",
    // "output_full", "setup" or "other"; empty unless Failed.
    [[nodiscard]] std::string_view failure_kind() const noexcept;
    /// Frees the input/output buffers when they are empty (call on idle links).
    void release_idle_memory() noexcept;

    // ---- after the handshake ----------------------------------------------------------------
    [[nodiscard]] std::string_view protocol_version() const noexcept;  ///< "TLSv1.2"; "" before
    [[nodiscard]] std::string_view ciphersuite() const noexcept;       ///< mbedTLS name; "" before
    [[nodiscard]] std::string_view alpn_protocol() const noexcept;     ///< "" if none agreed
    /// Server: the name the client asked for with SNI ("" if none). Client: the name sent.
    [[nodiscard]] const std::string& server_name() const noexcept;
    /// Whether the peer's certificate comes from a resumed session (a ticket) instead of this
    /// handshake. Known when the peer has one and verify_mode is not none; false otherwise.
    [[nodiscard]] bool resumed() const noexcept;
    [[nodiscard]] const PeerVerification& peer_verification() const noexcept;
    /// The names in the peer's leaf certificate (empty without one).
    [[nodiscard]] const Identities& peer_identities() const noexcept;
    /// The peer's chain as mbedTLS parsed it (leaf first); null without one.
    [[nodiscard]] const mbedtls_x509_crt* peer_certificate() const noexcept;
    /// Valid chain + RFC 6125 match of `domain` (A-label form) against the leaf.
    [[nodiscard]] PeerAuth authenticate_peer(std::string_view domain) const noexcept;
    /// An authenticate_peer() result in words for logs and bounces, with the detail that helps:
    /// the names the certificate does hold, or why its chain is not trusted.
    [[nodiscard]] std::string describe_peer_auth(PeerAuth a) const;
    /// Client: the state needed to resume this session later (null if there is none, e.g. the
    /// server issued no ticket). With TLS 1.3 the ticket arrives after the handshake: call this
    /// after some data was read.
    [[nodiscard]] std::shared_ptr<const SavedSession> save_session() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace s2s::tls
