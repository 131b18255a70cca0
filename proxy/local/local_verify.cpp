#include "proxy/local/local_verify.h"

#include <utility>
#include <vector>

#include "proxy/local/local_tls_client.h"
#include "proxy/ops/metrics.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {

// ---- LocalVerifier ---------------------------------------------------------------------------------

LocalVerifier::~LocalVerifier() {
    std::vector<LocalVerify*> open;
    for (auto& [token, v] : active_) open.push_back(v);
    active_.clear();
    for (LocalVerify* v : open) v->abandon();
}

uint64_t LocalVerifier::verify(const std::string& local, const std::string& remote, const std::string& stream_id,
                               const std::string& key, Router::VerifyDone done) {
    if (active_.size() >= settings_.max_verifications) return 0;
    uint64_t token = ++last_token_;
    auto* v = new LocalVerify(ctx_, *this, token, LocalVerify::Request{local, remote, stream_id, key}, std::move(done));
    active_.emplace(token, v);
    v->start();
    return token;
}

void LocalVerifier::cancel(uint64_t token) {
    auto it = active_.find(token);
    if (it == active_.end()) return;
    LocalVerify* v = it->second;
    active_.erase(it);
    v->abandon();
}

// ---- LocalVerify ----------------------------------------------------------------------------------

const char* LocalVerify::state_name(State s) noexcept {
    switch (s) {
        case State::Connecting: return "connecting";
        case State::TlsHandshake: return "tls-handshake";
        case State::AwaitingHeader: return "awaiting-header";
        case State::AwaitingFeatures: return "awaiting-features";
        case State::AwaitingProceed: return "awaiting-proceed";
        case State::AwaitingAnswer: return "awaiting-answer";
        case State::Closing: return "closing";
    }
    return "?";
}

LocalVerify::LocalVerify(ProxyContext& ctx, LocalVerifier& verifier, uint64_t token, Request request,
                         Router::VerifyDone done)
    : StreamMachine(ctx, State::Connecting),
      verifier_(&verifier),
      settings_(verifier.settings_),
      token_(token),
      request_(std::move(request)),
      done_(std::move(done)) {}

void LocalVerify::entered(State s) {
    if (s != State::Connecting && s != State::Closing) stream_->set_deadline(settings_.state_timeout_ms);
}

void LocalVerify::start() {
    open_stream(settings_.parse, Side::Local);
    S2S_LOG_DEBUG(log_ctx(), "local-verify", "asking the local server at %s to confirm a key",
                  settings_.server_text.c_str());
    stream_->connect(reinterpret_cast<const sockaddr*>(&settings_.server), settings_.connect_timeout_ms);
}

void LocalVerify::on_connected(int status) {
    if (status != 0) {
        failure_ = local_tls::connect_failure(settings_.server_text, status);
        return;  // on_closed follows
    }
    if (local_tls::start_direct(*stream_, settings_.tls, request_.local)) enter(State::TlsHandshake);
    else send_header();
}

void LocalVerify::send_header() {
    // As the receiving server for `remote` (XEP-0220 §2.3): our stream names the pair.
    stream_->send(stream_header(request_.remote, request_.local, "", true));
    enter(State::AwaitingHeader);
}

void LocalVerify::on_tls_established() {
    std::string refused = local_tls::established(settings_.tls, *stream_->tls(), request_.local, log_ctx(),
                                                 settings_.server_text, true);
    if (!refused.empty()) {
        finish(Router::Verdict::Unreachable, refused);
        return;
    }
    send_header();
}

void LocalVerify::on_stream_open(const xml::StreamHeader& h) {
    if (state_ != State::AwaitingHeader) return;
    if (major_version(h.attr("version").value_or("")) >= 1) {
        enter(State::AwaitingFeatures);
        return;
    }
    send_verify();
}

void LocalVerify::send_verify() {
    stream_->send("<db:verify from='" + xml::escape_attr(request_.remote) + "' to='" + xml::escape_attr(request_.local) +
                  "' id='" + xml::escape_attr(request_.stream_id) + "'>" + xml::escape_text(request_.key) +
                  "</db:verify>");
    enter(State::AwaitingAnswer);
}

void LocalVerify::on_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    std::string why;
    auto enter_state = [this](State s) { enter(s); };
    switch (local_tls::negotiate(*stream_, settings_.tls, request_.local, e, state_, enter_state, &why)) {
        case local_tls::Step::Other: break;
        case local_tls::Step::Continue: send_verify(); return;
        case local_tls::Step::AwaitProceed:
        case local_tls::Step::Handshake: return;
        case local_tls::Step::Fail: finish(Router::Verdict::Failed, why); return;
        case local_tls::Step::Refused: finish(Router::Verdict::Unreachable, why); return;
    }
    if (state_ == State::AwaitingAnswer && e.is("verify", xml::ns::dialback)) {
        handle_answer(e);
        return;
    }
    if (e.is("error", xml::ns::streams)) {
        xml::Element cond = e.first_element();
        finish(Router::Verdict::Unreachable,
               "the local server ended the stream with " + std::string(cond ? cond.name() : "?") + " (" +
                   state_name(state_) + ")");
        return;
    }
    finish(Router::Verdict::Failed,
           "the local server sent <" + std::string(e.name()) + "> instead of an answer (" + state_name(state_) + ")");
}

// The answer must be for what was asked: from=LOCAL to=REMOTE with our id (XEP-0220 §2.3.1).
void LocalVerify::handle_answer(const xml::Element& e) {
    std::string from = domain_of(attr_or_empty(e, "from")), to = domain_of(attr_or_empty(e, "to"));
    std::string type = attr_or_empty(e, "type");
    if (from != request_.local || to != request_.remote || attr_or_empty(e, "id") != request_.stream_id) {
        finish(Router::Verdict::Failed, "the local server answered a db:verify that was not asked (from '" + from +
                                            "' to '" + to + "')");
        return;
    }
    if (type == "valid") finish(Router::Verdict::Valid, "the local server confirmed the key");
    else if (type == "invalid") finish(Router::Verdict::Invalid, "the local server did not issue this key");
    else {
        xml::Element err = e.child("error", xml::ns::server);
        xml::Element cond = err ? err.first_element() : xml::Element();
        finish(Router::Verdict::Failed, "the local server answered type '" + type + "'" +
                                            (cond ? " (" + std::string(cond.name()) + ")" : std::string()));
    }
}

void LocalVerify::finish(Router::Verdict verdict, const std::string& why, std::optional<StreamError> error,
                         std::string_view text) {
    if (closing()) return;
    if (verifier_) verifier_->finished(token_);
    verifier_ = nullptr;
    S2S_LOG_DEBUG(log_ctx(), "local-verify", "%s", why.c_str());
    if (error) end_stream_with(*error, text, why);
    else end_stream(why);
    if (Router::VerifyDone done = std::exchange(done_, nullptr)) done(verdict, why);
}

void LocalVerify::abandon() {
    verifier_ = nullptr;
    done_ = nullptr;
    close_stream("the verification is no longer wanted");
}

void LocalVerify::shutdown(StreamError, const std::string& why) { finish(Router::Verdict::Unreachable, why); }

void LocalVerify::on_stream_close() {
    finish(Router::Verdict::Unreachable,
           std::string("the local server closed the stream before answering (") + state_name(state_) + ")");
}

void LocalVerify::on_stream_error(StreamError error, std::string_view text) {
    finish(Router::Verdict::Failed, "bad XML from the local server: " + std::string(text), error, text);
}

void LocalVerify::on_timeout() {
    finish(Router::Verdict::Failed, "the local server did not answer within " +
                                        std::to_string(settings_.state_timeout_ms) + " ms (" + state_name(state_) + ")");
}

void LocalVerify::on_closed(const std::string& reason) {
    stream_ = nullptr;
    if (state_ == State::TlsHandshake) local_tls::note_handshake_failure(log_ctx(), settings_.server_text, reason);
    finish(Router::Verdict::Unreachable, failure_.empty() ? "the connection to the local server at " +
                                                                settings_.server_text + " closed: " + reason
                                                          : failure_);
    delete this;
}

}  // namespace s2s
