// One generator link: an authenticated S2S stream from a remote domain (l0.gen.test...) to the
// server under test, as an initiating server would open it: TCP, STARTTLS (or direct TLS), then
// SASL EXTERNAL with a client certificate or dialback, then stanzas. The incoming side (the
// receiving server's header, features and answers) is parsed with xml::XmlStream.
//
// A Link owns itself: it deletes itself right after Listener::on_closed().
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/tls/tls_context.h"
#include "common/xmpp/xml_stream.h"
#include "tests/bench/wire.h"

namespace s2s::bench {

enum class LinkTls { None, StartTls, Direct };
enum class LinkAuth { External, Dialback };

struct LinkOptions {
    sockaddr_storage target{};
    sockaddr_storage source{};  // ss_family 0: any
    std::string from_domain;    // the domain this link speaks for
    std::string to_domain;      // the receiving server's domain
    LinkTls tls = LinkTls::StartTls;
    std::shared_ptr<const tls::Context> tls_context;  // client context
    LinkAuth auth = LinkAuth::External;
    std::shared_ptr<const tls::SavedSession> resume;  // resume this TLS session (a ticket) if set
};

class Link final : private Wire::Owner, private xml::XmlStream::Handler {
public:
    enum class State {
        Connecting,        // TCP connect
        AwaitingHeader,    // our header sent
        AwaitingFeatures,  // the peer's header came
        AwaitingProceed,   // <starttls/> sent
        TlsHandshake,      // TLS handshake running
        AwaitingAuth,      // SASL <auth/> or <db:result/> sent
        Ready,             // authenticated: stanzas may flow
        Closing,           // our </stream:stream> sent, or the connection is going away
    };
    [[nodiscard]] static const char* state_name(State s) noexcept;

    class Listener {
    public:
        virtual void on_ready(Link& link) = 0;
        // Last call: the link is deleted when this returns. `was_ready`: it had authenticated.
        virtual void on_closed(Link& link, const std::string& reason, bool was_ready) = 0;
        virtual void on_writable(Link& link) { (void)link; }  // a write completed

    protected:
        ~Listener() = default;
    };

    static Link* open(uv_loop_t* loop, const LinkOptions& options, Listener& listener, uint64_t id);

    void send(std::string_view bytes) { wire_.send(bytes); }
    void flush() { wire_.flush(); }
    [[nodiscard]] std::size_t in_flight() const noexcept { return wire_.in_flight(); }
    // Ends the stream (</stream:stream>) and closes once the peer has ended its own.
    void finish();
    // Closes now.
    void abort(const std::string& why) { wire_.close(why); }

    [[nodiscard]] State state() const noexcept { return state_; }
    [[nodiscard]] uint64_t id() const noexcept { return id_; }
    [[nodiscard]] const LinkOptions& options() const noexcept { return options_; }
    [[nodiscard]] uint64_t stanzas_received() const noexcept { return stanzas_received_; }
    [[nodiscard]] const tls::Session* tls() const noexcept { return wire_.tls(); }

    // Application state for the scenario driving this link.
    uint64_t sent = 0;
    void* user = nullptr;

private:
    Link(uv_loop_t* loop, const LinkOptions& options, Listener& listener, uint64_t id);
    ~Link() = default;

    // Wire::Owner
    void on_connected(int status) override;
    void on_plain(const char* data, std::size_t len) override;
    void on_tls_ready() override;
    void on_written() override { listener_.on_writable(*this); }
    void on_closed(const std::string& reason) override;
    // xml::XmlStream::Handler
    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;
    void on_stream_error(StreamError error, std::string_view text) override;

    void send_header();
    void features(const xml::Element& f);
    void fail(const std::string& why);

    LinkOptions options_;
    Listener& listener_;
    uint64_t id_;
    Wire wire_;
    xml::XmlStream parser_;
    State state_ = State::Connecting;
    bool authenticated_ = false;
    bool was_ready_ = false;
    uint64_t stanzas_received_ = 0;
    std::string failure_;
};

}  // namespace s2s::bench
