#include "proxy/features/dialback_flow.h"

#include <algorithm>

#include "common/xmpp/jid.h"
#include "common/base/log.h"
#include "proxy/features/admission.h"
#include "proxy/ops/metrics.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {
namespace {

// "condition: text" of an <error/> inside a dialback answer, for bounces and logs.
std::string describe_error(const xml::Element& answer) {
    xml::Element err = answer.child("error", answer.ns());
    if (!err) err = answer.child("error", xml::ns::server);
    if (!err) return "no reason given";
    std::string out;
    for (xml::Element c : err.elements()) {
        if (c.name() == "text") continue;
        out = std::string(c.name());
        break;
    }
    xml::Element text = err.child("text", kStanzaErrorsNs);
    if (text) out += (out.empty() ? "" : ": ") + text.text();
    return out.empty() ? "no reason given" : out;
}

// What a peer that has not authenticated is told when a dialback verification did not give an
// answer: the condition and a fixed sentence. The details (addresses, ports, DNS answers, socket
// errors) would map our network for anyone who claims a domain; they go to the log only.
std::string verification_failure_text(Router::Verdict v, const std::string& remote) {
    return v == Router::Verdict::Failed ? "the authoritative server for " + remote + " did not answer in time"
                                        : "the authoritative server for " + remote + " could not be reached";
}

}  // namespace

std::string dialback_request(const std::string& local, const std::string& remote, const std::string& key) {
    return "<db:result from='" + xml::escape_attr(local) + "' to='" + xml::escape_attr(remote) + "'>" + key +
           "</db:result>";
}

std::optional<DialbackRefusal> read_dialback_answer(const xml::Element& e, const std::string& local,
                                                    const std::string& remote) {
    std::string type = attr_or_empty(e, "type");
    metrics().dialback.add(type == "valid" ? "originating:valid" : type == "invalid" ? "originating:invalid" : "originating:error");
    if (type == "valid") return std::nullopt;
    std::string why = remote + " refused dialback for " + local + " (" +
                      (type == "invalid" ? std::string("invalid key") : describe_error(e)) + ")";
    // The remote's own condition (policy-violation, not-authorized...) tells the sender most.
    StanzaError condition = StanzaError::RemoteServerNotFound;
    if (xml::Element err = e.child("error", e.ns()); err || (err = e.child("error", xml::ns::server)))
        for (xml::Element c : err.elements())
            if (auto known = stanza_error_from_name(c.name()); known && c.ns() == kStanzaErrorsNs) {
                condition = *known;
                break;
            }
    return DialbackRefusal{condition, why};
}

std::optional<StanzaRefusal> refuse_on_link(const xml::Element& e, const std::string& remote) {
    bool result = e.name() == "result";
    if (!e.attr("type"))
        return StanzaRefusal{StreamError::UnsupportedStanzaType,
                             result ? remote + " sent a dialback request (db:result without a type) on a stream s2s-proxy opened"
                                    : "a db:verify request on a stream s2s-proxy opened, which is not bidirectional"};
    if (!domains_equal(attr_or_empty(e, "from"), remote))
        return StanzaRefusal{StreamError::InvalidFrom, std::string(result ? "a dialback answer" : "a db:verify answer") +
                                                           " from '" + attr_or_empty(e, "from") + "' on the link to " + remote};
    return std::nullopt;
}

std::string refuse_reverse_dialback(const xml::Element& e, const LogContext& log) {
    std::string why = "dialback on a stream s2s-proxy opened is not accepted; open a stream to " + attr_or_empty(e, "to") +
                      " for it";
    S2S_LOG_NOTICE(log, "refused", "reverse dialback from %s: %s", attr_or_empty(e, "from").c_str(), why.c_str());
    return dialback_answer("result", attr_or_empty(e, "to"), attr_or_empty(e, "from"), "", "error", "policy-violation", why);
}

uint64_t VerifyRequests::add(std::string local, std::string stream_id, std::string key, Router::VerifyDone done) {
    uint64_t token = ++next_;
    requests_.push_back({token, std::move(local), std::move(stream_id), std::move(key), std::move(done), false});
    return token;
}

void VerifyRequests::cancel(uint64_t token) {
    requests_.erase(std::remove_if(requests_.begin(), requests_.end(), [token](const Request& r) { return r.token == token; }),
                    requests_.end());
}

std::vector<std::string> VerifyRequests::take_unsent(const std::string& remote) {
    std::vector<std::string> out;
    for (auto& r : requests_) {
        if (r.sent) continue;
        r.sent = true;
        out.push_back("<db:verify from='" + xml::escape_attr(r.local) + "' to='" + xml::escape_attr(remote) + "' id='" +
                      xml::escape_attr(r.stream_id) + "'>" + xml::escape_text(r.key) + "</db:verify>");
    }
    return out;
}

bool VerifyRequests::waiting() const {
    for (auto& r : requests_)
        if (r.sent) return true;
    return false;
}

void VerifyRequests::answer(const xml::Element& e, const std::string& remote) {
    std::string local = normalize_domain(attr_or_empty(e, "to")).value_or(""), sid = attr_or_empty(e, "id");
    for (auto it = requests_.begin(); it != requests_.end(); ++it) {
        if (!it->sent || it->local != local || it->stream_id != sid) continue;
        Router::VerifyDone done = std::move(it->done);
        requests_.erase(it);
        bool valid = attr_or_empty(e, "type") == "valid";
        done(valid ? Router::Verdict::Valid : Router::Verdict::Invalid,
             valid ? "" : remote + " says the key is not one it issued");
        return;
    }
}

void VerifyRequests::fail_all(Router::Verdict verdict, const std::string& why) {
    std::vector<Request> requests;
    requests.swap(requests_);
    for (auto& r : requests) r.done(verdict, why);
}

// ---- receiving server ----------------------------------------------------------------------------


// Verifications past their bound: the authoritative server did not answer in time (the
// outbound side would have given up by now too); the peer is told so.
void DialbackReceiver::expire(uint64_t now) {
    for (size_t i = 0; i < pending_.size();) {
        if (pending_[i].until == 0 || pending_[i].until > now) {
            ++i;
            continue;
        }
        PendingVerify p = pending_[i];
        end_verify(i);
        ctx_.router.cancel_verify(p.token);
        std::string why = "the authoritative server of " + p.remote + " did not answer within " +
                          std::to_string(ctx_.router.verify_timeout_ms()) + " ms";
        S2S_LOG_NOTICE(LogContext{conn_id_, p.local, p.remote}, "dialback-failed", "%s", why.c_str());
        answer_db_result(p.remote, p.local, "error", "remote-server-timeout", why);
    }
}

void DialbackReceiver::end_verify(size_t i) {
    pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    ctx_.verifications.give_back(client_);
}

// Receiving server role (XEP-0220 §2.1): the peer claims a domain with a dialback key.
void DialbackReceiver::on_request(const xml::Element& e, const std::string& stream_id) {
    if (owner_.tls_required_first()) {
        owner_.fail(StreamError::PolicyViolation, "TLS is required before dialback");
        return;
    }
    std::string from_raw = attr_or_empty(e, "from"), to_raw = attr_or_empty(e, "to");
    std::string remote = domain_of(from_raw), local = domain_of(to_raw);
    if (remote.empty()) {
        count_refused_domain("dialback", from_raw);
        owner_.fail(StreamError::InvalidFrom, "db:result from '" + from_raw + "' is not a domain");
        return;
    }
    if (!e.attr("type").value_or("").empty()) {
        owner_.fail(StreamError::UnsupportedStanzaType, "a db:result with a type is an answer, not a request");
        return;
    }
    if (local.empty() || !ctx_.is_local(local)) {
        if (local.empty()) count_refused_domain("dialback", to_raw);
        answer_db_result(remote, to_raw, "error", "item-not-found", to_raw + " is not served here");
        return;
    }
    if (auto refused = refuse_claim(ctx_, remote)) {
        S2S_LOG_REFUSAL(refused_claims_, LogContext{conn_id_, local, remote}, "refused", "dialback: %s", refused->text.c_str());
        answer_db_result(remote, local, "error", refused->condition, refused->text);
        return;
    }
    if (!ctx_.policy.allowed(remote)) {
        S2S_LOG_REFUSAL(refused_claims_, LogContext{conn_id_, local, remote}, "refused", "dialback: %s", ctx_.policy.refusal(remote).c_str());
        answer_db_result(remote, local, "error", "policy-violation", ctx_.policy.refusal(remote));
        return;
    }
    if (!owner_.admitted(remote, local, "dialback")) {
        answer_db_result(remote, local, "error", "not-authorized", remote + " is not admitted by this listener's access rule");
        return;
    }
    bool cert_ok = stream().tls_open() && stream().tls()->authenticate_peer(remote) == tls::PeerAuth::Authenticated;
    if (ctx_.policy.needs_valid_certificate(remote) && !cert_ok) {
        S2S_LOG_REFUSAL(refused_claims_, LogContext{conn_id_, local, remote}, "refused", "dialback: a valid certificate is required (%s)",
                       ctx_.policy.certificate_rule(remote).c_str());
        metrics().secure_domain_refusals.add("inbound:dialback_without_certificate");
        answer_db_result(remote, local, "error", "not-authorized",
                         remote + " must present a certificate valid for its domain");
        return;
    }
    if (owner_.is_authenticated(remote, local)) {
        answer_db_result(remote, local, "valid");
        owner_.authenticated(remote, local, "dialback");
        return;
    }
    for (auto& p : pending_)
        if (p.remote == remote && p.local == local) return;  // already being verified
    if (!owner_.room_for_pair(remote, local)) {
        answer_db_result(remote, local, "error", "policy-violation",
                         "this stream may authenticate at most " + std::to_string(ctx_.config.max_domain_pairs) +
                             " domain pairs; open another stream for more");
        return;
    }
    if (cert_ok) {
        // The certificate already proves the domain (XEP-0344): no need to ask its authority.
        answer_db_result(remote, local, "valid");
        owner_.authenticated(remote, local, "dialback with a valid certificate");
        return;
    }
    // Each verification may cost a connection to another server, made for a peer that has not
    // authenticated: bounded per stream, per client address and in total.
    const char* limit = nullptr;
    size_t per_stream = static_cast<size_t>(std::max<int64_t>(ctx_.config.max_verifications_per_stream, 1));
    if (pending_.size() >= per_stream) {
        limit = "max_verifications_per_stream";
    } else {
        switch (ctx_.verifications.take(client_, static_cast<size_t>(ctx_.config.max_verifications_per_host),
                                        static_cast<size_t>(ctx_.config.max_verifications))) {
            case VerifyBudget::Refusal::None: break;
            case VerifyBudget::Refusal::PerHost: limit = "max_verifications_per_host"; break;
            case VerifyBudget::Refusal::Total: limit = "max_verifications"; break;
        }
    }
    if (limit) {
        metrics().limits_reached.add(limit);
        S2S_LOG_REFUSAL(refused_claims_, LogContext{conn_id_, local, remote}, "refused",
                       "dialback: s2s.%s reached (%zu on this stream, %zu from %s, %zu in all)", limit, pending_.size(),
                       ctx_.verifications.of(client_), client_.c_str(), ctx_.verifications.total());
        answer_db_result(remote, local, "error", "resource-constraint",
                         "too many dialback verifications are under way; try again later");
        return;
    }
    std::string key = e.text();
    uint64_t token = ctx_.router.verify_dialback(
        local, remote, stream_id, key,
        [this, remote, local](Router::Verdict v, const std::string& why) { verify_done(remote, local, v, why); });
    uint64_t bound = ctx_.router.verify_timeout_ms();
    pending_.push_back({remote, local, token, bound ? ctx_.loop.now_ms() + bound : 0});
    owner_.rearm();  // the negotiation deadline now waits for the verification
}

void DialbackReceiver::verify_done(const std::string& remote, const std::string& local, Router::Verdict v,
                                   const std::string& why) {
    for (size_t i = 0; i < pending_.size(); ++i)
        if (pending_[i].remote == remote && pending_[i].local == local) {
            end_verify(i);
            break;
        }
    if (owner_.closing()) return;
    switch (v) {
        case Router::Verdict::Valid:
            // (a reload during the verification may have changed the access rule)
            if (!owner_.admitted(remote, local, "dialback")) {
                answer_db_result(remote, local, "error", "not-authorized",
                                 remote + " is not admitted by this listener's access rule");
                break;
            }
            answer_db_result(remote, local, "valid");
            owner_.authenticated(remote, local, "dialback");
            break;
        case Router::Verdict::Invalid:
            S2S_LOG_REFUSAL(refused_claims_, LogContext{conn_id_, local, remote}, "dialback-invalid", "%s", why.c_str());
            answer_db_result(remote, local, "invalid");
            break;
        case Router::Verdict::Failed:
        case Router::Verdict::Unreachable:
            // XEP-0220 §2.4: the authoritative server was not found/reached, or did not answer.
            S2S_LOG_NOTICE(LogContext{conn_id_, local, remote}, "dialback-failed", "%s", why.c_str());
            answer_db_result(remote, local, "error",
                             v == Router::Verdict::Failed ? "remote-server-timeout" : "remote-server-not-found",
                             verification_failure_text(v, remote));
            break;
    }
    owner_.rearm();  // back to the negotiation window (which may have ended meanwhile) or idleness
}

void DialbackReceiver::answer_db_result(const std::string& remote, const std::string& local, const char* type,
                                        const char* error_condition, const std::string& text) {
    metrics().dialback.add(std::string("receiving:") + type);
    if (std::string_view(type) != "valid") ++refused_claims_;
    stream().send(dialback_answer("result", local, remote, "", type, error_condition ? error_condition : "", text));
}

void DialbackReceiver::cancel_all() {
    while (!pending_.empty()) {
        ctx_.router.cancel_verify(pending_.back().token);
        end_verify(pending_.size() - 1);
    }
}

bool DialbackReceiver::verifying() const noexcept {
    for (auto& p : pending_)
        if (p.until != 0) return true;
    return false;
}

uint64_t DialbackReceiver::earliest_bound() const noexcept {
    uint64_t first = 0;
    for (auto& p : pending_)
        if (p.until != 0 && (first == 0 || p.until < first)) first = p.until;
    return first;
}

uint64_t DialbackReceiver::latest_bound() const noexcept {
    uint64_t last = 0;
    for (auto& p : pending_) last = std::max(last, p.until);
    return last;
}

}  // namespace s2s
