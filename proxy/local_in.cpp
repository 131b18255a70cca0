#include "proxy/metrics.h"
#include "proxy/local_in.h"

#include "common/jid.h"
#include "common/random.h"
#include "proxy/access.h"
#include "proxy/router.h"
#include "proxy/xmpp.h"

namespace s2s {
void LocalIn::accept(ProxyContext& ctx, ProxyRouter& router, uv_stream_t* listener, const LocalInSettings& settings) {
    auto* self = new LocalIn(ctx, router, settings);
    self->stream_ = Stream::create(ctx.loop, *self, settings.parse, self->id(), Side::Local);
    if (settings.max_rate > 0) self->stream_->set_rate_limit(settings.max_rate);
    if (uv_accept(listener, self->stream_->handle()) != 0) {
        self->stream_->abort("accept failed");
        return;
    }
    S2S_LOG_DEBUG(self->log_ctx(), "accepted", "%s from %s", settings.listener.c_str(),
                  self->stream_->peer_address().c_str());
    if (self->stream_->start()) self->stream_->set_deadline(settings.state_timeout_ms);
}

const char* LocalIn::state_label() const noexcept {
    switch (state_) {
        case State::AwaitingHeader: return "awaiting-header";
        case State::Open: return "open";
        case State::Closing: return "closing";
    }
    return "?";
}

LocalIn::LocalIn(ProxyContext& ctx, ProxyRouter& router, const LocalInSettings& settings)
    : Connection(ctx.next_conn_id()), ctx_(ctx), router_(router), settings_(settings) {
    ctx_.connections.insert(this);
}

LocalIn::~LocalIn() { ctx_.connections.erase(this); }

void LocalIn::on_stream_open(const xml::StreamHeader& h) {
    remote_ = domain_of(h.attr("to").value_or(""));
    local_ = domain_of(h.attr("from").value_or(""));
    stream_->send(stream_header(remote_, local_, random_hex(16), true));
    header_sent_ = true;
    if (remote_.empty()) {
        fail(StreamError::HostUnknown, "the stream header names no remote domain");
        return;
    }
    if (ctx_.is_local(remote_)) {
        fail(StreamError::HostUnknown, remote_ + " is one of this server's own domains: its s2s must not come here");
        return;
    }
    stream_->send("<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>");
    state_ = State::Open;
}

void LocalIn::on_stanza(xml::Document& doc) {
    if (state_ != State::Open) return;
    xml::Element e = doc.root();
    if (e.is("result", xml::ns::dialback)) handle_db_result(e);
    else if (e.is("verify", xml::ns::dialback)) handle_db_verify(e);
    else if (e.ns() == xml::ns::server && (e.name() == "message" || e.name() == "presence" || e.name() == "iq"))
        handle_stanza(doc);
    else if (e.is("error", xml::ns::streams))
        closed_by_peer(e);
    else if (e.is("starttls", xml::ns::tls))
        fail(StreamError::UnsupportedFeature, "the local link is plain on loopback");
    else
        fail(StreamError::UnsupportedStanzaType, "<" + std::string(e.name()) + "> is not handled on the local link");
}

// The local server authenticates one of its domains to us: trusted on this loopback listener for
// general.hosts and peers its access rule admits; the remote domain must be one we may reach.
void LocalIn::handle_db_result(const xml::Element& e) {
    std::string local = domain_of(e.attr("from").value_or("")), remote = domain_of(e.attr("to").value_or(""));
    auto answer = [&](const char* type, const char* condition, const std::string& text) {
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
    bool known = false;
    for (auto& p : pairs_) known |= p.local == local && p.remote == remote;
    if (!known) pairs_.push_back({local, remote});
    stream_->set_authenticated();  // the configured stanza limits from now on
    answer("valid", nullptr, "");
    S2S_LOG_INFO(LogContext{id(), local, remote}, "local-accepted", "outgoing s2s from the local server");
    stream_->set_deadline(0);
}

// The local server checks a key LocalOut presented for a remote domain (we are its authority).
void LocalIn::handle_db_verify(const xml::Element& e) {
    std::string asker(e.attr("from").value_or("")), claimed(e.attr("to").value_or("")), sid(e.attr("id").value_or(""));
    bool valid = ctx_.keys.verify(domain_of(asker), domain_of(claimed), sid, e.text());
    S2S_LOG_DEBUG(LogContext{id(), domain_of(asker), domain_of(claimed)}, "local-verify", "%s",
                  valid ? "valid" : "invalid");
    stream_->send(dialback_answer("verify", claimed, asker, sid, valid ? "valid" : "invalid"));
}

void LocalIn::handle_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    auto from = JidView::parse(e.attr("from").value_or("")), to = JidView::parse(e.attr("to").value_or(""));
    if (!from || !to) {
        fail(StreamError::ImproperAddressing, "a stanza without valid 'from' and 'to'");
        return;
    }
    std::string local = domain_of(from->domain()), remote = domain_of(to->domain());
    bool accepted = false;
    for (auto& p : pairs_) accepted |= p.local == local && p.remote == remote;
    QueuedStanza s = QueuedStanza::capture(e, xml::NamespaceScope::server_stream());
    if (ctx_.is_local(remote)) {
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
    if (state_ == State::Closing) return;
    S2S_LOG_WARNING(log_ctx(), "local-stream-error", "%.*s: %s", static_cast<int>(name(error).size()),
                    name(error).data(), text.c_str());
    if (!header_sent_) stream_->send(stream_header("", "", "", true));
    metrics().stream_errors.add(name(error));
    stream_->send(stream_error_bytes(error, text) + "</stream:stream>");
    state_ = State::Closing;
    stream_->close(std::string(name(error)) + ": " + text);
}

void LocalIn::shutdown(StreamError error, const std::string& why) { fail(error, why); }

void LocalIn::closed_by_peer(const xml::Element& error) {
    xml::Element cond = error.first_element();
    S2S_LOG_NOTICE(log_ctx(), "peer-stream-error", "the local server ended the stream with %.*s",
                   static_cast<int>(cond ? cond.name().size() : 1), cond ? cond.name().data() : "?");
    on_stream_close();
}

void LocalIn::on_stream_close() {
    if (state_ == State::Closing) return;
    stream_->send("</stream:stream>");
    state_ = State::Closing;
    stream_->close("the local server closed the stream");
}

void LocalIn::on_stream_error(StreamError error, std::string_view text) { fail(error, std::string(text)); }

void LocalIn::on_timeout() { fail(StreamError::ConnectionTimeout, "negotiation took too long"); }

void LocalIn::on_closed(const std::string& reason) {
    S2S_LOG_DEBUG(log_ctx(), "closed", "%s", reason.c_str());
    stream_ = nullptr;
    delete this;
}

}  // namespace s2s
