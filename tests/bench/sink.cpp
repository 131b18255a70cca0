#include "tests/bench/sink.h"

#include <algorithm>
#include <cstring>

#include "common/xml/xml.h"
#include "common/xmpp/xml_stream.h"
#include "tests/bench/stanza_scan.h"
#include "tests/bench/traffic.h"
#include "tests/bench/wire.h"

namespace s2s::bench {

namespace {

std::string_view element_name(std::string_view element) {
    std::size_t end = element.find_first_of(" \t\r\n/>", 1);
    return element.substr(1, (end == std::string_view::npos ? element.size() : end) - 1);
}

bool is_stanza_name(std::string_view n) { return n == "message" || n == "iq" || n == "presence"; }

}  // namespace

class Sink::Conn final : private Wire::Owner, private StanzaScanner::Handler {
public:
    explicit Conn(Sink& sink) : sink_(sink), wire_(sink.loop_, *this), scanner_(*this) {}

    bool accept(uv_stream_t* listener) { return wire_.accept(listener) == 0; }
    void close(const std::string& why) { wire_.close(why); }

private:
    // Wire::Owner
    void on_plain(const char* data, std::size_t len) override {
        now_ = uv_hrtime();
        scanner_.feed(data, len);
    }
    void on_tls_ready() override {}
    void on_closed(const std::string&) override {
        auto& v = sink_.conns_;
        v.erase(std::remove(v.begin(), v.end(), this), v.end());
        sink_.connections_ = v.size();
        delete this;
    }

    // StanzaScanner::Handler
    void on_header(std::string_view tag) override {
        std::string to(tag_attr(tag, "to")), from(tag_attr(tag, "from"));
        if (to.empty()) to = sink_.options_.domain;
        ++sink_.counters_.streams;
        std::string h = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                        "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='" +
                        to + "'";
        if (!from.empty()) h += " to='" + from + "'";
        h += " id='sink" + std::to_string(++stream_ids_) + "' version='1.0'><stream:features>";
        if (sink_.options_.tls && !wire_.tls())
            h += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
        h += "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>";
        wire_.send(h);
    }

    void on_element(std::string_view element) override {
        std::string_view name = element_name(element);
        if (is_stanza_name(name)) {
            stanza(element);
            return;
        }
        auto doc = xml::parse_element(element);
        if (!doc) {
            broken("unparsable element: " + std::string(element.substr(0, 200)));
            return;
        }
        xml::Element e = doc->root();
        if (e.is("result", xml::ns::dialback) || e.is("verify", xml::ns::dialback)) {
            if (e.attr("type")) return;  // an answer to something we never ask
            std::string r = "<db:" + std::string(e.name()) + " from='" + xml::escape_attr(e.attr("to").value_or("")) +
                            "' to='" + xml::escape_attr(e.attr("from").value_or("")) + "'";
            if (auto id = e.attr("id")) r += " id='" + xml::escape_attr(*id) + "'";
            r += " type='valid'/>";
            wire_.send(r);
            ++sink_.counters_.dialback_answered;
            return;
        }
        if (e.is("starttls", xml::ns::tls) && sink_.options_.tls && !wire_.tls()) {
            wire_.send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            wire_.start_tls(sink_.options_.tls);
            scanner_.reset();  // last: `element` points into the scanner's buffer
            return;
        }
        if (e.is("error", xml::ns::streams)) {
            broken("the peer sent a stream error: " + std::string(element.substr(0, 300)));
            return;
        }
        // Anything else (features of a stream we opened: none here) is ignored.
    }

    void stanza(std::string_view element) {
        SinkCounters& c = sink_.counters_;
        ++c.stanzas;
        std::string_view tag = element.substr(0, element.find('>') + 1);
        std::string_view id = tag_attr(tag, "id");
        uint64_t value = 0;
        switch (parse_stanza_id(id, &value)) {
            case IdKind::SendTime:
                ++c.timed;
                if (sink_.recording_ && now_ >= value) {
                    std::lock_guard<std::mutex> lock(sink_.mu_);
                    sink_.latencies_.push_back(now_ - value);
                }
                break;
            case IdKind::Marker:
                ++c.markers;
                if (sink_.on_marker) sink_.on_marker(value);
                break;
            case IdKind::Other:
                break;
        }
    }

    void on_end() override {
        wire_.send("</stream:stream>");
        wire_.flush();
        wire_.close("the peer closed the stream");
    }

    void on_error(const std::string& what) override { broken(what); }

    void broken(const std::string& why) {
        ++sink_.counters_.errors;
        {
            std::lock_guard<std::mutex> lock(sink_.mu_);
            sink_.last_error_ = why;
        }
        wire_.close(why);
    }

    Sink& sink_;
    Wire wire_;
    StanzaScanner scanner_;
    uint64_t now_ = 0;
    static inline uint64_t stream_ids_ = 0;
};

Sink::Sink(uv_loop_t* loop, SinkOptions options) : loop_(loop), options_(std::move(options)) {}

Sink::~Sink() = default;

bool Sink::listen(const std::string& ip, int port, std::string* error) {
    sockaddr_in addr{};
    if (uv_ip4_addr(ip.c_str(), port, &addr) != 0) {
        *error = "bad address " + ip;
        return false;
    }
    uv_tcp_init(loop_, &listener_);
    listener_.data = this;
    listening_ = true;
    int rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 4096, on_connection);
    if (rc != 0) {
        *error = "listen on " + ip + ":" + std::to_string(port) + ": " + uv_strerror(rc);
        return false;
    }
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return true;
}

void Sink::on_connection(uv_stream_t* server, int status) noexcept {
    auto* self = static_cast<Sink*>(server->data);
    if (status != 0) return;
    auto* c = new Conn(*self);
    self->conns_.push_back(c);
    self->connections_ = self->conns_.size();
    if (!c->accept(server)) c->close("accept failed");
}

void Sink::close() {
    if (listening_) {
        listening_ = false;
        uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    }
    std::vector<Conn*> all = conns_;
    for (Conn* c : all) c->close("benchmark over");
}

}  // namespace s2s::bench
