#include "proxy/ops/metrics.h"
#include "proxy/local/local_in.h"

#include "common/xmpp/jid.h"
#include "common/base/random.h"
#include "proxy/net/access.h"
#include "proxy/local/local_verify.h"
#include "proxy/routing/router.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {
void LocalIn::accept(ProxyContext& ctx, ProxyRouter& router, LocalVerifier& verifier, uv_stream_t* listener,
                     const LocalInSettings& settings) {
    auto* self = new LocalIn(ctx, router, verifier, settings);
    if (!self->accept_stream(listener, settings.parse, Side::Local, settings.max_rate)) return;
    S2S_LOG_DEBUG(self->log_ctx(), "accepted", "%s from %s", settings.listener.c_str(),
                  self->stream_->peer_address().c_str());
    if (!self->stream_->start()) return;
    if (!settings.max_connections.allows(static_cast<int64_t>(settings.active))) {
        metrics().connections_refused.add("local_max_connections");
        self->fail(StreamError::ResourceConstraint, settings.listener + " has reached max_connections (" +
                                                        std::to_string(settings.max_connections.value) + ")");
        return;
    }
    self->window_end_ = ctx.loop.now_ms() + settings.state_timeout_ms;
    self->stream_->set_deadline(settings.state_timeout_ms);
    if (settings.tls.direct) {
        if (!self->begin_handshake()) return;
        self->enter(State::TlsHandshake);
        self->stream_->start_tls(settings.tls_context);
    }
}

// A TLS handshake may start (counted until it ends); false, with the connection closed, when the
// listener already runs max_tls_handshakes (a listener off loopback must not be made to hold
// unbounded handshake work).
bool LocalIn::begin_handshake() {
    if (!settings_.max_tls_handshakes.allows(static_cast<int64_t>(settings_.handshakes) + 1)) {
        metrics().connections_refused.add("max_tls_handshakes");
        S2S_LOG_NOTICE(log_ctx(), "refused", "%s has max_tls_handshakes (%lld) in progress", settings_.listener.c_str(),
                       static_cast<long long>(settings_.max_tls_handshakes.value));
        fail(StreamError::ResourceConstraint, "too many TLS handshakes in progress; try again later");
        return false;
    }
    ++settings_.handshakes;
    in_handshake_ = true;
    return true;
}

void LocalIn::end_handshake() {
    if (!in_handshake_) return;
    in_handshake_ = false;
    --settings_.handshakes;
}

const char* LocalIn::state_name(State s) noexcept {
    switch (s) {
        case State::AwaitingHeader: return "awaiting-header";
        case State::TlsHandshake: return "tls-handshake";
        case State::Open: return "open";
        case State::Closing: return "closing";
    }
    return "?";
}

LocalIn::LocalIn(ProxyContext& ctx, ProxyRouter& router, LocalVerifier& verifier, const LocalInSettings& settings)
    : StreamMachine(ctx, State::AwaitingHeader), router_(router), verifier_(verifier), settings_(settings) {
    ++settings_.active;
}

LocalIn::~LocalIn() {
    end_handshake();
    --settings_.active;
}

void LocalIn::on_stream_open(const xml::StreamHeader& h) {
    remote_ = domain_of(h.attr("to").value_or(""));
    local_ = domain_of(h.attr("from").value_or(""));
    // (checked at the header, not at accept: by now the link that connected has recorded its end)
    sockaddr_storage peer{};
    if (settings_.own_outgoing && stream_->peer_sockaddr(&peer) &&
        settings_.own_outgoing->contains(reinterpret_cast<const sockaddr*>(&peer))) {
        ++metrics().local_loops_refused;
        fail(StreamError::PolicyViolation, "this stream comes from one of s2s-proxy's own outgoing links (routing loop)");
        return;
    }
    stream_id_ = random_hex(16);
    // A pre-XMPP-1.0 header (no version: jabberd2 without a certificate, servers of the dialback
    // era) names no domains: its db:result elements do, one pair at a time (XEP-0220), and it is
    // answered with no features (RFC 6120 §4.7.5), so it cannot negotiate STARTTLS.
    const bool legacy = major_version(h.attr("version").value_or("")) < 1;
    legacy_ = legacy;
    stream_->send(stream_header(remote_, local_, stream_id_, !legacy));
    header_sent_ = true;
    if (remote_.empty() && !legacy) {
        fail(StreamError::HostUnknown, "the stream header names no remote domain");
        return;
    }
    if (!remote_.empty() && ctx_.is_local(remote_)) {
        fail(StreamError::HostUnknown, remote_ + " is one of this server's own domains: its s2s must not come here");
        return;
    }
    if (legacy) {
        if (starttls::required_first(settings_.tls, *stream_)) {
            fail(StreamError::PolicyViolation, "TLS is required on " + settings_.listener +
                                                   ": a pre-1.0 stream (no version) cannot negotiate it");
            return;
        }
        enter(State::Open);
        return;
    }
    std::string features = "<stream:features>" + starttls::feature(settings_.tls, *stream_);
    if (!starttls::required_first(settings_.tls, *stream_))
        features += "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>";
    stream_->send(features + "</stream:features>");
    enter(State::Open);
}

void LocalIn::on_stanza(xml::Document& doc) {
    if (state_ != State::Open) return;
    xml::Element e = doc.root();
    if (e.is("starttls", xml::ns::tls)) {
        handle_starttls();
        return;
    }
    if (e.is("error", xml::ns::streams)) {
        closed_by_peer(e);
        return;
    }
    if (starttls::required_first(settings_.tls, *stream_)) {
        // STARTTLS is mandatory-to-negotiate here (RFC 6120 §5.3.1): see starttls.h.
        fail(StreamError::PolicyViolation, "TLS is required on " + settings_.listener + ": STARTTLS first");
        return;
    }
    if (e.is("result", xml::ns::dialback)) handle_db_result(e);
    else if (e.is("verify", xml::ns::dialback)) handle_db_verify(e);
    else if (e.ns() == xml::ns::server && (e.name() == "message" || e.name() == "presence" || e.name() == "iq"))
        handle_stanza(doc);
    else
        fail(StreamError::UnsupportedStanzaType, "<" + std::string(e.name()) + "> is not handled on the local link");
}

// RFC 6120 §5.4.2: STARTTLS, when this listener offers it and nothing was negotiated on the
// plain stream yet (what was would have to be forgotten: such a peer is refused instead).
void LocalIn::handle_starttls() {
    std::string refused;
    if (starttls::may_proceed(settings_.tls, *stream_, &refused) && (!pairs_.empty() || !pending_.empty()))
        refused = "STARTTLS asked after a dialback key was presented on the plain stream";
    if (!refused.empty()) {
        S2S_LOG_NOTICE(log_ctx(), "starttls-refused", "%s", refused.c_str());
        enter(State::Closing);
        starttls::refuse(*stream_, refused);
        return;
    }
    if (!begin_handshake()) return;
    starttls::proceed(*stream_, settings_.tls_context);
    header_sent_ = false;
    enter(State::TlsHandshake);
}

void LocalIn::on_tls_established() {
    end_handshake();
    S2S_LOG_INFO(log_ctx(), "tls", "%s: %s", settings_.listener.c_str(), starttls::describe(*stream_->tls()).c_str());
    metrics().local_tls.add(settings_.tls.direct ? "listener:direct" : "listener:starttls");
    enter(State::AwaitingHeader);
}

// The local server authenticates one of its domains to us (XEP-0220, s2s-proxy receiving): a
// domain in general.hosts that the listener's access rule admits, toward a domain we may reach,
// with a key the local server confirms it issued (we ask it: it is the authority for our domains).
void LocalIn::handle_db_result(const xml::Element& e) {
    std::string local = domain_of(e.attr("from").value_or("")), remote = domain_of(e.attr("to").value_or(""));
    auto answer = [&](const char* type, const char* condition, const std::string& text) {
        if (legacy_ && std::string_view(type) == "error") type = "invalid", condition = nullptr;
        stream_->send(dialback_answer("result", remote, local, "", type, condition ? condition : "", text));
    };
    if (local.empty() || !ctx_.is_local(local)) {
        fail(StreamError::InvalidFrom, "'" + std::string(e.attr("from").value_or("")) + "' is not one of general.hosts");
        return;
    }
    if (remote.empty() || ctx_.is_local(remote)) {
        answer("error", "item-not-found", "s2s-proxy does not route to " + std::string(e.attr("to").value_or("")));
        return;
    }
    if (!access_allows(ctx_.config, settings_.access, local)) {
        answer("error", "not-authorized", local + " is not admitted by access rule " + settings_.access);
        return;
    }
    // A remote domain our policy denies is still accepted here: the router then bounces each
    // stanza with policy-violation and the reason, which the sender sees (a dialback error would
    // only make the local server report a generic failure).
    if (has_pair(local, remote)) {
        answer("valid", nullptr, "");
        return;
    }
    if (!settings_.verify_dialback) {
        metrics().dialback.add("local_receiving:unchecked");
        accept_pair(local, remote, "key not checked: local.verify_dialback is false");
        return;
    }
    for (auto& p : pending_)
        if (p.local == local && p.remote == remote) return;  // already being asked about
    LogContext lc{id(), local, remote};
    if (pending_.size() >= kMaxPendingVerifications) {
        metrics().dialback.add("local_receiving:refused_stream_limit");
        S2S_LOG_WARNING(lc, "local-verify-refused", "%zu dialback verifications already under way on this stream",
                        pending_.size());
        answer("error", "resource-constraint", "too many dialback verifications are under way on this stream");
        return;
    }
    uint64_t token = verifier_.verify(
        local, remote, stream_id_, e.text(),
        [this, local, remote](Router::Verdict v, const std::string& why) { verify_done(local, remote, v, why); });
    if (token == 0) {
        metrics().dialback.add("local_receiving:refused_total_limit");
        S2S_LOG_WARNING(lc, "local-verify-refused", "local.max_verifications (%zu) are under way",
                        verifier_.under_way());
        answer("error", "resource-constraint", "too many dialback verifications are under way");
        return;
    }
    pending_.push_back({local, remote, token});
    // The verification has deadlines of its own and always ends before this one.
    stream_->set_deadline(verifier_.timeout_ms() + settings_.state_timeout_ms);
}

void LocalIn::verify_done(const std::string& local, const std::string& remote, Router::Verdict v,
                          const std::string& why) {
    for (auto it = pending_.begin(); it != pending_.end(); ++it)
        if (it->local == local && it->remote == remote) {
            pending_.erase(it);
            break;
        }
    if (closing() || !stream_) return;
    LogContext lc{id(), local, remote};
    auto answer = [&](const char* type, const char* condition, const std::string& text) {
        metrics().dialback.add(std::string("local_receiving:") + type);
        if (legacy_ && std::string_view(type) == "error") type = "invalid", condition = nullptr;
        stream_->send(dialback_answer("result", remote, local, "", type, condition ? condition : "", text));
    };
    switch (v) {
        case Router::Verdict::Valid:
            metrics().dialback.add("local_receiving:valid");
            accept_pair(local, remote, "key confirmed by the local server");
            return;
        case Router::Verdict::Invalid:
            S2S_LOG_WARNING(lc, "local-dialback-invalid",
                            "the local server did not issue the key presented for %s on [[listen.local]] (from %s): "
                            "not the local server; refused",
                            local.c_str(), stream_->peer_address().c_str());
            answer("invalid", nullptr, "");
            break;
        case Router::Verdict::Failed:
        case Router::Verdict::Unreachable:
            S2S_LOG_WARNING(lc, "local-dialback-failed", "the key could not be checked: %s", why.c_str());
            answer("error", v == Router::Verdict::Failed ? "remote-server-timeout" : "remote-server-not-found",
                   v == Router::Verdict::Failed ? "the local server did not confirm the key"
                                                : "the local server could not be asked to confirm the key");
            break;
    }
    // Back to the negotiation deadline while nothing is accepted yet: what is left of the first
    // state_timeout (refused keys do not buy a stream more time).
    if (pairs_.empty() && pending_.empty()) {
        uint64_t now = ctx_.loop.now_ms();
        if (now >= window_end_) fail(StreamError::ConnectionTimeout, "negotiation took too long");
        else stream_->set_deadline(window_end_ - now);
    }
}

void LocalIn::accept_pair(const std::string& local, const std::string& remote, const char* how) {
    pairs_.insert(remote, local);
    stream_->set_authenticated();  // the configured stanza limits from now on
    stream_->send(dialback_answer("result", remote, local, "", "valid"));
    S2S_LOG_INFO(LogContext{id(), local, remote}, "local-accepted", "outgoing s2s from the local server (%s)", how);
    if (pending_.empty()) stream_->set_deadline(0);
}

// The local server checks a key LocalOut presented for a remote domain (we are its authority).
// LocalOut issues keys only as a remote domain toward one of ours: anything else is not one of
// them, whatever the key (a process on the listener may not use us to confirm other pairs).
void LocalIn::handle_db_verify(const xml::Element& e) {
    std::string asker(e.attr("from").value_or("")), claimed(e.attr("to").value_or("")), sid(e.attr("id").value_or(""));
    std::string asker_d = domain_of(asker), claimed_d = domain_of(claimed);
    LogContext lc{id(), asker_d, claimed_d};
    bool ours = !asker_d.empty() && ctx_.is_local(asker_d) && !claimed_d.empty() && !ctx_.is_local(claimed_d);
    bool valid = ours && ctx_.keys.verify(asker_d, claimed_d, sid, e.text());
    metrics().dialback.add(valid ? "local_authoritative:valid" : "local_authoritative:invalid");
    if (!ours)
        S2S_LOG_WARNING(lc, "local-verify-invalid", "db:verify from '%s' about '%s': not a pair s2s-proxy issues keys "
                        "for (from one of general.hosts about another domain)", asker.c_str(), claimed.c_str());
    else if (!valid)
        S2S_LOG_NOTICE(lc, "local-verify-invalid", "db:verify for a key s2s-proxy did not issue (from %s)",
                       stream_->peer_address().c_str());
    else
        S2S_LOG_DEBUG(lc, "local-verify", "valid");
    stream_->send(dialback_answer("verify", claimed, asker, sid, valid ? "valid" : "invalid"));
}

void LocalIn::handle_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    auto from = JidView::parse(e.attr("from").value_or("")), to = JidView::parse(e.attr("to").value_or(""));
    if (!from || !to) {
        count_refused_jid("stanza", e.attr(from ? "to" : "from").value_or(""));
        fail(StreamError::ImproperAddressing, "a stanza without valid 'from' and 'to'");
        return;
    }
    canonicalize_address(doc, "from", *from);
    canonicalize_address(doc, "to", *to);
    std::string local = domain_of(from->domain()), remote = domain_of(to->domain());
    bool accepted = has_pair(local, remote);
    QueuedStanza s = QueuedStanza::capture(e, xml::NamespaceScope::server_stream());
    s.source = stream_;
    if (ctx_.is_local(remote) && !pairs_.empty()) {  // a stream nothing was accepted on gets no bounces
        S2S_LOG_WARNING(LogContext{id(), local, remote}, "routing-loop", "%s for one of our own domains came back",
                        s.name.c_str());
        router_.bounce(s, StanzaError::InternalServerError,
                       remote + " is served by this server itself; s2s-proxy does not route it back (routing loop)");
        return;
    }
    if (!accepted) {
        fail(StreamError::InvalidFrom, local + " is not authenticated for " + remote + " on this stream");
        return;
    }
    S2S_LOG_DEBUG(LogContext{id(), local, remote}, "from-local", "%s (local server -> s2s-proxy)", s.describe().c_str());
    router_.to_remote(local, remote, std::move(s));
}

void LocalIn::fail(StreamError error, const std::string& text) {
    if (closing()) return;
    S2S_LOG_WARNING(log_ctx(), "local-stream-error", "%.*s: %s", static_cast<int>(name(error).size()),
                    name(error).data(), text.c_str());
    // Plaintext XML would land in a TLS handshake: the connection is just closed.
    bool writable = state_ != State::TlsHandshake && (!settings_.tls.direct || stream_->tls_open());
    end_stream_with(error, text, std::string(name(error)) + ": " + text,
                    header_sent_ ? "" : stream_header("", "", "", true), writable);
}

void LocalIn::shutdown(StreamError error, const std::string& why) { fail(error, why); }

void LocalIn::closed_by_peer(const xml::Element& error) {
    xml::Element cond = error.first_element();
    S2S_LOG_NOTICE(log_ctx(), "peer-stream-error", "the local server ended the stream with %.*s",
                   static_cast<int>(cond ? cond.name().size() : 1), cond ? cond.name().data() : "?");
    on_stream_close();
}

void LocalIn::on_stream_close() { end_stream("the local server closed the stream"); }

void LocalIn::on_stream_error(StreamError error, std::string_view text) { fail(error, std::string(text)); }

void LocalIn::on_timeout() { fail(StreamError::ConnectionTimeout, "negotiation took too long"); }

void LocalIn::on_closed(const std::string& reason) {
    for (auto& p : pending_) verifier_.cancel(p.token);
    pending_.clear();
    S2S_LOG_DEBUG(log_ctx(), "closed", "%s", reason.c_str());
    stream_ = nullptr;
    delete this;
}

}  // namespace s2s
