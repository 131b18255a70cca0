#include "tests/bench/link.h"

#include "common/xml/xml.h"

namespace s2s::bench {

const char* Link::state_name(State s) noexcept {
    switch (s) {
        case State::Connecting: return "connecting";
        case State::AwaitingHeader: return "awaiting-header";
        case State::AwaitingFeatures: return "awaiting-features";
        case State::AwaitingProceed: return "awaiting-proceed";
        case State::TlsHandshake: return "tls-handshake";
        case State::AwaitingAuth: return "awaiting-auth";
        case State::Ready: return "ready";
        case State::Closing: return "closing";
    }
    return "?";
}

Link* Link::open(uv_loop_t* loop, const LinkOptions& options, Listener& listener, uint64_t id) {
    auto* link = new Link(loop, options, listener, id);
    const sockaddr* source =
        options.source.ss_family != 0 ? reinterpret_cast<const sockaddr*>(&link->options_.source) : nullptr;
    int rc = link->wire_.connect(reinterpret_cast<const sockaddr*>(&link->options_.target), source);
    if (rc != 0) link->fail(std::string("connect: ") + uv_strerror(rc));
    return link;
}

Link::Link(uv_loop_t* loop, const LinkOptions& options, Listener& listener, uint64_t id)
    : options_(options), listener_(listener), id_(id), wire_(loop, *this), parser_(*this) {}

void Link::on_connected(int status) {
    if (status != 0) return;  // the wire closes itself with the reason
    if (options_.tls == LinkTls::Direct) {
        tls::SessionOptions so;
        so.server_name = options_.to_domain;
        so.resume = options_.resume;
        state_ = State::TlsHandshake;
        wire_.start_tls(options_.tls_context, so);
        return;
    }
    send_header();
    wire_.flush();
}

void Link::send_header() {
    wire_.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
               "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='" +
               options_.from_domain + "' to='" + options_.to_domain + "' version='1.0'>");
    state_ = State::AwaitingHeader;
}

void Link::on_plain(const char* data, std::size_t len) {
    auto r = parser_.feed(data, len);
    (void)r;  // errors arrive through on_stream_error; a reset takes effect for the next bytes
}

void Link::on_tls_ready() {
    send_header();  // leaves encrypted when the read callback flushes
}

void Link::on_stream_open(const xml::StreamHeader&) {
    if (state_ == State::AwaitingHeader) state_ = State::AwaitingFeatures;
}

void Link::on_stanza(xml::Document& doc) {
    xml::Element e = doc.root();
    if (e.is("features", xml::ns::streams)) {
        if (state_ == State::AwaitingFeatures) features(e);
        return;
    }
    if (e.is("proceed", xml::ns::tls) && state_ == State::AwaitingProceed) {
        parser_.reset();
        tls::SessionOptions so;
        so.server_name = options_.to_domain;
        so.resume = options_.resume;
        state_ = State::TlsHandshake;
        wire_.start_tls(options_.tls_context, so);
        return;
    }
    if (e.is("success", xml::ns::sasl) && state_ == State::AwaitingAuth) {
        authenticated_ = true;
        parser_.reset();
        send_header();
        return;
    }
    if (e.is("failure", xml::ns::sasl) || e.is("failure", xml::ns::tls)) {
        fail("refused: " + xml::to_string(e));
        return;
    }
    if (e.is("result", xml::ns::dialback) && state_ == State::AwaitingAuth) {
        if (e.attr("type").value_or("") != "valid") {
            fail("dialback refused: " + xml::to_string(e));
            return;
        }
        authenticated_ = true;
        state_ = State::Ready;
        was_ready_ = true;
        listener_.on_ready(*this);
        return;
    }
    if (e.is("error", xml::ns::streams)) {
        fail("stream error from the peer: " + xml::to_string(e));
        return;
    }
    ++stanzas_received_;  // e.g. an error bounced back to us
}

void Link::features(const xml::Element& f) {
    if (!wire_.tls() && options_.tls == LinkTls::StartTls) {
        if (!f.child("starttls", xml::ns::tls)) {
            fail("the peer offers no STARTTLS");
            return;
        }
        wire_.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        state_ = State::AwaitingProceed;
        return;
    }
    if (authenticated_) {  // the stream restarted after SASL
        state_ = State::Ready;
        was_ready_ = true;
        listener_.on_ready(*this);
        return;
    }
    if (options_.auth == LinkAuth::External) {
        bool offered = false;
        if (xml::Element m = f.child("mechanisms", xml::ns::sasl))
            for (xml::Element mech : m.elements())
                if (mech.text() == "EXTERNAL") offered = true;
        if (!offered) {
            fail("the peer does not offer SASL EXTERNAL (is the client certificate trusted?)");
            return;
        }
        wire_.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>");
    } else {
        wire_.send("<db:result from='" + options_.from_domain + "' to='" + options_.to_domain +
                   "'>0123456789abcdef0123456789abcdef</db:result>");
    }
    state_ = State::AwaitingAuth;
}

void Link::finish() {
    if (state_ == State::Closing || wire_.closing()) return;
    state_ = State::Closing;
    wire_.send("</stream:stream>");
    wire_.flush();
}

void Link::on_stream_close() {
    if (state_ != State::Closing) {
        fail("the peer closed the stream");
        return;
    }
    wire_.close("stream finished");
}

void Link::on_stream_error(StreamError, std::string_view text) { fail("bad XML from the peer: " + std::string(text)); }

void Link::fail(const std::string& why) {
    if (failure_.empty()) failure_ = why;
    state_ = State::Closing;
    wire_.close(why);
}

void Link::on_closed(const std::string& reason) {
    std::string why = failure_.empty() ? reason : failure_;
    listener_.on_closed(*this, why, was_ready_);
    delete this;
}

}  // namespace s2s::bench
