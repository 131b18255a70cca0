// Dialback (XEP-0220) on the public streams, in both roles of a stream:
// - as the originating server: what an outbound link (s2s_out) sends to have each of our domains
//   accepted by the remote, how it reads the remote's answer, and the db:verify requests it
//   carries for our inbound streams, which ask the remote as authoritative server about a key a
//   peer showed them;
// - as the receiving server (DialbackReceiver): how an inbound stream (s2s_in) judges a peer's
//   db:result, verifies its key with the domain's authoritative server through the Router, bounds
//   what the peer may have under way, and answers.
// The keys are in dialback.h (XEP-0185); the authoritative answer is in db_verify.h.
//
// Requests and answers are wire bytes: the originating side returns them for the link to send, the
// receiving side writes its answers to the stream its owner lends it. dialback_total is counted
// here (originating:..., receiving:...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/base/log.h"
#include "common/xmpp/stanza_error.h"
#include "common/xmpp/stream_error.h"
#include "common/xml/xml.h"
#include "proxy/features/admission.h"
#include "proxy/xmpp/context.h"
#include "proxy/stream/stream.h"

// A refused claim is logged at notice level for the first kLoggedRefusals on a stream (`refused`:
// the stream's count so far), then at debug level (each is still answered and counted): a peer
// that keeps claiming what it is refused cannot flood the log.
#define S2S_LOG_REFUSAL(refused, ctx, event, ...)                                           \
    do {                                                                                     \
        if ((refused) < ::s2s::kLoggedRefusals) S2S_LOG_NOTICE(ctx, event, __VA_ARGS__);      \
        else S2S_LOG_DEBUG(ctx, event, __VA_ARGS__);                                          \
    } while (0)

namespace s2s {

inline constexpr size_t kLoggedRefusals = 16;  // refusals logged at notice level per stream

// <db:result from='LOCAL' to='REMOTE'>KEY</db:result>: asks the remote to accept `local`.
[[nodiscard]] std::string dialback_request(const std::string& local, const std::string& remote, const std::string& key);

// The remote refused one of our domains: the condition its senders are bounced with (the
// remote's own stanza error condition when it gave a known one, else remote-server-not-found)
// and why, e.g. "b.test refused dialback for a.test (invalid key)".
struct DialbackRefusal {
    StanzaError condition;
    std::string why;
};
// Reads the remote's answer (type valid, invalid or error) to our db:result for `local`; counts
// it. nullopt when valid.
[[nodiscard]] std::optional<DialbackRefusal> read_dialback_answer(const xml::Element& answer, const std::string& local,
                                                                  const std::string& remote);

// A db:result or db:verify on a link we opened must be an answer from the remote: one without a
// type (a request: without bidi the remote has no business asking anything of us here) or in
// another domain's name (our requests went to `remote`: it answers none of them) ends the link
// with the refusal. nullopt: an answer, to be read.
[[nodiscard]] std::optional<StanzaRefusal> refuse_on_link(const xml::Element& element, const std::string& remote);
// A dialback request from the remote on a bidi link (the remote as initiating server): the key
// would be checked against the stream id the remote chose itself, which makes a replayed key
// pass. Logged; returns the policy-violation answer to send.
[[nodiscard]] std::string refuse_reverse_dialback(const xml::Element& request, const LogContext& log);

// The db:verify requests one outbound link carries for inbound streams (Router::verify_dialback),
// in the order asked. Each is sent once the link is ready and answered by its (local, stream id).
class VerifyRequests {
public:
    // A request to send; returns its token for cancel().
    uint64_t add(std::string local, std::string stream_id, std::string key, Router::VerifyDone done);
    // Forgets a request; its `done` is never called.
    void cancel(uint64_t token);
    // The requests not sent yet, as wire bytes (one per request), now counted as sent.
    [[nodiscard]] std::vector<std::string> take_unsent(const std::string& remote);
    // Whether a sent request waits for its answer.
    [[nodiscard]] bool waiting() const;
    // The remote's answer (a db:verify with a type, from `remote`): the matching sent request is
    // forgotten, then told valid or invalid. An answer that matches none is ignored.
    void answer(const xml::Element& answer, const std::string& remote);
    // Every request, sent or not, is told `verdict` with `why`, and forgotten.
    void fail_all(Router::Verdict verdict, const std::string& why);

private:
    struct Request {
        uint64_t token;
        std::string local, stream_id, key;
        Router::VerifyDone done;
        bool sent = false;
    };
    uint64_t next_ = 0;
    std::vector<Request> requests_;
};

// The receiving server's side on one inbound stream (XEP-0220 §2.1, §2.4): each db:result is
// judged (our domain, claims, policy, the listener's access rule, certificates required), then
// accepted at once when the pair is already authenticated or the peer's certificate proves the
// domain (XEP-0344), else verified with the authoritative server through the Router. What a peer
// may have under way is bounded: s2s.max_verifications_per_stream here, per client address and in
// total through ctx.verifications; each verification also has the Router's time bound
// (verify_timeout_ms), past which it is answered remote-server-timeout (expire()).
class DialbackReceiver {
public:
    // What the inbound stream lends: its checks, its bookkeeping of authenticated pairs, and its
    // ending. Called only from within the receiver's own calls and verifications.
    class Owner {
    public:
        [[nodiscard]] virtual Stream* peer_stream() noexcept = 0;
        // Whether the listener requires TLS and the stream is not yet encrypted.
        [[nodiscard]] virtual bool tls_required_first() const noexcept = 0;
        [[nodiscard]] virtual bool closing() const noexcept = 0;
        virtual void fail(StreamError error, const std::string& text) = 0;
        // The listener's access rule for `remote` (logged and counted when it refuses).
        [[nodiscard]] virtual bool admitted(const std::string& remote, const std::string& local, const char* how) = 0;
        [[nodiscard]] virtual bool is_authenticated(std::string_view remote, std::string_view local) const noexcept = 0;
        // Whether one more pair may be claimed (s2s.max_domain_pairs, counting pending()).
        [[nodiscard]] virtual bool room_for_pair(const std::string& remote, const std::string& local) = 0;
        virtual void authenticated(const std::string& remote, const std::string& local, const char* how) = 0;
        // The stream's deadline again (the verifications' bounds changed).
        virtual void rearm() = 0;

    protected:
        ~Owner() = default;
    };

    // `client`: the client address the stream is counted under (ctx.verifications), read when a
    // verification starts or ends.
    DialbackReceiver(ProxyContext& ctx, Owner& owner, uint64_t conn_id, const std::string& client)
        : ctx_(ctx), owner_(owner), conn_id_(conn_id), client_(client) {}

    // A db:result from the peer on the stream with id `stream_id`.
    void on_request(const xml::Element& request, const std::string& stream_id);
    // Verifications past their bound are given up and answered remote-server-timeout.
    void expire(uint64_t now);
    // Every verification under way is cancelled (the stream closes); none is answered.
    void cancel_all();

    [[nodiscard]] size_t pending() const noexcept { return pending_.size(); }
    // Whether a verification with a time bound is under way (it holds the stream's deadline off).
    [[nodiscard]] bool verifying() const noexcept;
    // The earliest and the latest bound of the verifications under way (loop time; 0: none).
    [[nodiscard]] uint64_t earliest_bound() const noexcept;
    [[nodiscard]] uint64_t latest_bound() const noexcept;
    // db:result requests answered invalid or error on this stream (for S2S_LOG_REFUSAL).
    [[nodiscard]] size_t refused_claims() const noexcept { return refused_claims_; }

private:
    struct PendingVerify {
        std::string remote, local;
        uint64_t token;
        uint64_t until;  // loop time past which it is given up; 0: no bound
        // (each holds one unit of ctx.verifications for client_, given back in end_verify())
    };

    [[nodiscard]] Stream& stream() noexcept { return *owner_.peer_stream(); }
    void verify_done(const std::string& remote, const std::string& local, Router::Verdict v, const std::string& why);
    // Forgets the pending verification at `i`, giving back its unit of ctx.verifications.
    void end_verify(size_t i);
    void answer_db_result(const std::string& remote, const std::string& local, const char* type,
                          const char* error_condition = nullptr, const std::string& text = "");

    ProxyContext& ctx_;
    Owner& owner_;
    uint64_t conn_id_;
    const std::string& client_;
    size_t refused_claims_ = 0;
    std::vector<PendingVerify> pending_;  // at most s2s.max_verifications_per_stream
};

}  // namespace s2s
