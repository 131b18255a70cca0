// Dialback (XEP-0220) on the public streams, as the originating server: what an outbound link
// (s2s_out) sends to have each of our domains accepted by the remote, how it reads the remote's
// answer, and the db:verify requests it carries for our inbound streams, which ask the remote as
// authoritative server about a key a peer showed them. The keys are in dialback.h (XEP-0185); the
// authoritative answer is in db_verify.h.
//
// No socket here: requests are returned as wire bytes for the link to send, answers are read from
// parsed elements. dialback_total{originating:...} is counted here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/stanza_error.h"
#include "common/xml.h"
#include "proxy/context.h"

namespace s2s {

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

}  // namespace s2s
