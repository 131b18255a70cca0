#include "proxy/local/local_component.h"

#include <mbedtls/sha1.h>
#include <mbedtls/version.h>

#include "common/xmpp/stanza_error.h"
#include "proxy/ops/metrics.h"
#include "proxy/routing/router.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {

std::string component_handshake(std::string_view stream_id, std::string_view secret) {
    std::string input;
    input.reserve(stream_id.size() + secret.size());
    input.append(stream_id).append(secret);
    unsigned char digest[20];
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    mbedtls_sha1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
#else
    mbedtls_sha1_ret(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
#endif
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * sizeof digest);
    for (unsigned char b : digest) {
        out += kHex[b >> 4];
        out += kHex[b & 0x0f];
    }
    return out;
}

LocalComponent::LocalComponent(ProxyContext& ctx, const LocalSettings& settings, ProxyRouter& router)
    : LocalReconnect(ctx, settings, router, ""), parse_(settings.parse) {
    parse_.content_namespaces = {std::string(xml::ns::component_accept)};
}

void LocalComponent::deliver(QueuedStanza stanza) {
    if (!accepting(stanza)) return;
    if (state_ == State::Ready && queue_.empty() && stream_->state() == Stream::State::Open) {
        write(stanza, log_ctx(), ", as component");
        return;
    }
    if (!enqueue(queue_, std::move(stanza))) return;
    if (state_ == State::Idle) connect();
}

// ---- the stream ----------------------------------------------------------------------------------

void LocalComponent::connect() { open(parse_); }

std::string LocalComponent::tls_domain() const {
    return ctx_.config.hosts.empty() ? std::string() : ctx_.config.hosts.front();
}

void LocalComponent::send_header() {
    // Stanzas from the public side were serialized with jabber:server as the default namespace, so
    // they carry no xmlns of their own and take this stream's (jabber:component:accept). Elements
    // inside them in the dialback or streams namespace are written with the db: or stream:
    // prefix: both are declared here so that no remote content can make this stream ill-formed.
    std::string header =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
        "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' to='";
    xml::append_escaped_attr(header, settings_.component_name);
    stream_->send(header + "'>");
    enter(State::AwaitingHeader);
}

void LocalComponent::on_stream_open(const xml::StreamHeader& h) {
    std::string id(h.attr("id").value_or(""));
    if (id.empty()) {
        connection_lost("the local server's component stream header has no id (the handshake needs one)");
        return;
    }
    stream_->send("<handshake>" + component_handshake(id, settings_.password) + "</handshake>");
    enter(State::AwaitingHandshake);
}

void LocalComponent::on_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    if (e.is("handshake", xml::ns::component_accept) && state_ == State::AwaitingHandshake) {
        enter(State::Ready);
        up();
        stream_->set_authenticated();  // the configured stanza limits from now on
        stream_->set_deadline(0);
        S2S_LOG_INFO(log_ctx(), "component-ready", "the local server at %s accepted the component handshake",
                     settings_.server_text.c_str());
        flush(queue_, log_ctx(), ", as component, was queued");
        return;
    }
    if (e.is("error", xml::ns::streams)) {
        on_error(e);
        return;
    }
    if (state_ == State::Ready && e.ns() == xml::ns::component_accept &&
        (e.name() == "message" || e.name() == "presence" || e.name() == "iq")) {
        to_component(e);
        return;
    }
    connection_lost(StreamError::UnsupportedStanzaType, "unexpected element on the component stream",
                    "the local server sent <" + std::string(e.name()) + "> on the component stream (" +
                        state_name(state_) + ")");
}

// The local server ended the stream: a refused handshake says which setting to check.
void LocalComponent::on_error(const xml::Element& e) {
    xml::Element cond = e.first_element();
    std::string condition = cond ? std::string(cond.name()) : "?";
    std::string text;
    if (xml::Element t = e.child("text", kStreamErrorsNs)) text = ": \"" + t.text() + "\"";
    if (state_ == State::AwaitingHandshake && condition == "not-authorized")
        connection_lost("the local server refused the component handshake (not-authorized" + text +
                        "): local.password is not the secret it has for local.component_name");
    else
        connection_lost("the local server sent stream error " + condition + text + " (" + state_name(state_) + ")");
}

// The local server routes to the component only what is addressed to the component's own
// domain (a ping, a disco query): s2s-proxy offers no service there. A request is answered with
// service-unavailable; anything else is dropped. Errors for stanzas s2s-proxy wrote do not come
// here: the server sends them to the remote sender over its s2s.
void LocalComponent::to_component(const xml::Element& e) {
    router_.dropped_to_component();
    std::string type(e.attr("type").value_or(""));
    std::string from(e.attr("from").value_or("")), to(e.attr("to").value_or(""));
    if (e.name() != "iq" || (type != "get" && type != "set") || from.empty()) {
        S2S_LOG_DEBUG(log_ctx(), "to-component", "%s from %s dropped: the component offers no service",
                      std::string(e.name()).c_str(), from.c_str());
        return;
    }
    std::string reply = "<iq type='error' from='" + xml::escape_attr(to) + "' to='" + xml::escape_attr(from) + "'";
    if (auto id = e.attr("id")) reply += " id='" + xml::escape_attr(*id) + "'";
    reply += ">";
    append_stanza_error(reply, StanzaError::ServiceUnavailable, "s2s-proxy's component address offers no service");
    stream_->send(reply + "</iq>");
    S2S_LOG_DEBUG(log_ctx(), "to-component", "iq %s from %s answered with service-unavailable", type.c_str(),
                  from.c_str());
}

void LocalComponent::on_stream_close() { connection_lost("the local server closed the component stream"); }

void LocalComponent::bounce_waiting(const std::string& why) {
    while (!queue_.empty()) router_.bounce(queue_.pop(), StanzaError::RemoteServerTimeout, why);
}

}  // namespace s2s
