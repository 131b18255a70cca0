// One XML stream over TCP, with TLS when negotiated: reads, the XML parser, a deadline, batched
// writes and backpressure. It makes no protocol decisions: those belong to its Owner, one of the
// stream state machines (s2s_in, s2s_out, local_in, local_out).
//
// On a listener with proxy_protocol, the first bytes may be a PROXY header (proxy_stage.h): the
// stream reads it before any TLS or XML byte, tells the owner on_proxy_header(), and from then on
// peer_address() is the client's address the header names.
//
// Every stanza read has a deadline from its first byte (StreamOptions::stanza_timeout_ms; the
// clock starts again when it finds that we hold reading back): a peer that starts a stanza and never finishes
// it is cut off with policy-violation, authenticated or not, instead of pinning the stanza's
// memory until the idle timeout. The parser's limits (xml_stream.h) are the unauthenticated ones
// until the owner calls set_authenticated().
//
// Our output has a deadline too (StreamOptions::send_timeout_ms, the send deadline): while bytes
// wait for the kernel to take them, the peer must take some within that time, and must not leave
// more than kHighWater waiting for longer; otherwise the owner is told on_send_timeout() and the
// stream ends with connection-timeout (closed without a word during a TLS handshake), so that a
// peer that stops reading neither holds what we queued for it nor the streams that feed it.
//
// Lifetime: create() allocates; the object deletes itself once its libuv handles have closed,
// right after telling the owner on_closed(). The owner must forget the pointer then. Nothing is
// freed inside a callback chain: close() only starts the closing.
//
// Backpressure between streams goes through FlowGate (flow_gate.h). The definitions sit by
// concern: stream.cpp (sockets, reading, the PROXY stage, output, closing), stream_tls.cpp (TLS
// under the stream), stream_deadline.cpp (the owner's deadline, the stanza deadline and the send
// deadline).
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/buffer.h"
#include "common/base/event_loop.h"
#include "common/net/net_address.h"
#include "common/xmpp/stream_error.h"
#include "common/tls/tls.h"
#include "common/xml/xml.h"
#include "common/xmpp/xml_stream.h"
#include "proxy/stream/flow_gate.h"
#include "proxy/ops/metrics.h"
#include "proxy/net/proxy_stage.h"
#include "proxy/net/shaper.h"

namespace s2s {

class Stream final : private xml::XmlStream::Handler, private Flushable {
public:
    // The protocol side. Callbacks run inside libuv callbacks: they must not throw.
    class Owner {
    public:
        virtual void on_connected(int status) { (void)status; }  // outbound: 0, or a libuv error
        virtual void on_stream_open(const xml::StreamHeader& header) = 0;
        virtual void on_stanza(xml::Document& stanza) = 0;
        virtual void on_stream_close() = 0;  // the peer sent </stream:stream>
        // The peer broke the stream (not well-formed, limits...): send the error and close.
        virtual void on_stream_error(StreamError error, std::string_view text) = 0;
        virtual void on_timeout() = 0;       // the deadline set with set_deadline() passed
        // The send deadline passed (StreamOptions::send_timeout_ms): the peer took none of our
        // output, or left more than kHighWater of it waiting, for that long; `why` says which.
        // The owner may end the stream its own way here (and hand back what it holds); if it
        // does not, the stream ends itself when this returns, with connection-timeout.
        virtual void on_send_timeout(const std::string& why) { (void)why; }
        virtual void on_tls_established() {} // the TLS handshake finished; tls() tells about the peer
        virtual void on_drained() {}         // output fell below the low-water mark after being high
        // The PROXY header stage (expect_proxy_header()) ended: peer_address() is now the client's.
        // On a refusal (is_refusal(stage.outcome())) the stream aborts once this returns.
        virtual void on_proxy_header(const ProxyStage& stage) { (void)stage; }
        // Final: the socket is closed; the Stream is deleted when this returns.
        virtual void on_closed(const std::string& reason) = 0;

    protected:
        ~Owner() = default;
    };

    enum class State {
        Idle,        // created; not yet accepted or connecting
        Connecting,  // outbound TCP connect in progress
        Open,        // reading and writing
        Closing,     // close() called: flushing what is queued, then closing the socket
        Closed,      // handles closing; the owner has been or is about to be told
    };
    [[nodiscard]] static const char* state_name(State s) noexcept;

    // Output above this many bytes means the peer is slow: sources should pause.
    static constexpr std::size_t kHighWater = 256 * 1024;
    // Output above this closes the stream: the peer is not reading.
    static constexpr std::size_t kHardLimit = 8 * 1024 * 1024;
    // How long a closing stream may take to flush.
    static constexpr uint64_t kCloseFlushMs = 5000;

    // side: which traffic counters its bytes go to (the federated network or the local server).
    static Stream* create(EventLoop& loop, Owner& owner, xml::StreamOptions options, uint64_t id,
                          Side side = Side::Public);

    // For uv_accept() on a listener; then start().
    [[nodiscard]] uv_stream_t* handle() noexcept { return reinterpret_cast<uv_stream_t*>(&tcp_); }
    // Starts reading an accepted socket; false (and closing) on error.
    bool start();
    // Before start(), on a listener with proxy_protocol: the first bytes go through a PROXY header
    // stage (proxy_stage.h), trusted when the TCP peer is in `trusted`. Returns that.
    bool expect_proxy_header(const NetworkList& trusted);
    // The stage while it runs (null before and after).
    [[nodiscard]] const ProxyStage* proxy_stage() const noexcept { return proxy_.get(); }
    // Opens an outbound connection; on_connected() reports the result within timeout_ms.
    bool connect(const sockaddr* addr, uint64_t timeout_ms);

    // Queues bytes for the peer (encrypted when TLS is on); they leave at the end of this loop turn.
    // `source`: the stream they were read from (a stanza routed inside that stream's read
    // callback), which stops reading while this stream is congested; null for anything else.
    void send(std::string_view bytes, Stream* source = nullptr);
    // Queues one element, serialized in this stream's namespace scope.
    void send(const xml::Element& element);

    // Starts a new XML stream on the same connection (after STARTTLS or SASL success).
    void reset_parser();

    // Puts TLS under the stream from now on: bytes sent before this call leave in plaintext
    // (e.g. <proceed/>), later ones encrypted once the handshake is done. A client sends its
    // ClientHello at once. The owner resets the parser itself.
    void start_tls(std::shared_ptr<const tls::Context> context, const tls::SessionOptions& options = {});
    // The TLS session (null on a plain stream).
    [[nodiscard]] const tls::Session* tls() const noexcept { return tls_.get(); }
    // Whether bytes now flow encrypted (TLS handshake done).
    [[nodiscard]] bool tls_open() const noexcept { return tls_ && tls_->state() == tls::State::Open; }

    // The peer has authenticated (a pair on this stream, or the link it serves): the parser's
    // configured limits replace the small unauthenticated ones. Idempotent.
    void set_authenticated() noexcept { parser_.set_authenticated(); }

    // Arms the one deadline (replacing any other); 0 disarms it.
    void set_deadline(uint64_t ms);

    // Sends what is queued, then closes. Idempotent.
    void close(const std::string& reason);
    // Ends the stream: writes `last` (our stream header, owed when the peer's has not been
    // answered yet, or a last element such as STARTTLS's <failure/>; empty otherwise) and
    // </stream:stream>, then close(why).
    void end(const std::string& why, std::string_view last = {});
    // Ends the stream with a stream error (RFC 6120 §4.9), the one place one is written: counts
    // it (stream_errors_sent_total, by condition), writes `header` as end() does, the error with
    // `text`, and </stream:stream>, then close(why). The owner logs it its own way.
    void end_with(StreamError error, std::string_view text, const std::string& why, std::string_view header = {});
    // Where no XML may be written (a TLS handshake under way, or expected first on a direct-TLS
    // port): counts the error as end_with() does, then closes without a word.
    void end_unsent(StreamError error, const std::string& why);
    // Closes now, dropping what is queued.
    void abort(const std::string& reason);

    void pause_reading();
    void resume_reading();
    // Whether reading is stopped: by the owner, because a stream it feeds is congested, or by
    // the shaper.
    [[nodiscard]] bool reading_stopped() const noexcept { return paused_ || shaped_ || blocked_on_ != nullptr; }
    // Holds reading to `bytes_per_second` (a token bucket; see shaper.h); 0 removes the limit.
    void set_rate_limit(uint64_t bytes_per_second);
    // Reads at most `bytes` at a time from now on (0: no cap), so that a reader that counts
    // stanzas (the [antispam] limits, rate_limits.h) can stop it before much more comes in.
    void cap_reads(size_t bytes);

    // Frees what an idle stream does not need (the XML parser between stanzas, TLS and output
    // buffers) when nothing was read for `idle_ms`; the next bytes rebuild it. Cheap to call
    // often. Returns whether it freed anything.
    bool trim_if_idle(uint64_t now_ms, uint64_t idle_ms);

    [[nodiscard]] State state() const noexcept { return state_; }
    [[nodiscard]] uint64_t id() const noexcept { return id_; }
    [[nodiscard]] std::size_t queued_bytes() const noexcept { return plain_out_.size() + out_.size() + inflight_.size(); }
    [[nodiscard]] bool congested() const noexcept { return queued_bytes() > kHighWater; }
    [[nodiscard]] const xml::StreamHeader& peer_header() const noexcept { return parser_.header(); }
    // Loop time of the last bytes read from the peer (any: whitespace too), and of the last
    // bytes queued for it (0: none yet).
    [[nodiscard]] uint64_t last_read_ms() const noexcept { return last_read_; }
    [[nodiscard]] uint64_t last_sent_ms() const noexcept { return last_sent_; }
    // Serialization scope for stanzas on this stream (default namespace and db: prefix).
    [[nodiscard]] xml::NamespaceScope& scope() noexcept { return scope_; }
    // "ip:port" of the peer, or "?" when unknown: the client a PROXY header named, else the TCP peer.
    [[nodiscard]] std::string peer_address() const;
    // The same as a socket address; false when unknown.
    [[nodiscard]] bool peer_sockaddr(sockaddr_storage* out) const;
    // "ip:port" of the TCP peer itself (the load balancer, behind a PROXY header).
    [[nodiscard]] std::string socket_peer_address() const;

private:
    friend class FlowGate;
    Stream(EventLoop& loop, Owner& owner, xml::StreamOptions options, uint64_t id, Side side);
    ~Stream();

    // xml::XmlStream::Handler
    void on_stream_open(const xml::StreamHeader& header) override;
    void on_stanza(xml::Document& stanza) override;
    void on_stream_close() override;
    void on_stream_error(StreamError error, std::string_view text) override;
    // Flushable
    void flush() noexcept override;

    static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) noexcept;
    static void on_write(uv_write_t* req, int status) noexcept;
    static void on_connect(uv_connect_t* req, int status) noexcept;
    static void on_timer(uv_timer_t* t) noexcept;
    static void on_stanza_timer(uv_timer_t* t) noexcept;
    static void on_send_timer(uv_timer_t* t) noexcept;
    static void on_handle_closed(uv_handle_t* h) noexcept;
    static void on_shaper_timer(uv_timer_t* t) noexcept;
    static void alloc_shaped(uv_handle_t* h, size_t suggested, uv_buf_t* buf) noexcept;
    static constexpr int64_t kMinShapedRead = 512;  // a shaped read is never smaller
    [[nodiscard]] bool shaped_reads() const noexcept { return bucket_ || read_cap_; }

    void update_reading();
    void push_back_on_source(Stream* source);
    void drained();
    void release_blocked() { output_gate_.open(); }
    void feed(const char* data, size_t len);
    void feed_tls(const char* data, size_t len);
    void feed_proxy(const char* data, size_t len);
    void feed_stream(const char* data, size_t len);
    void shape(size_t bytes_read);
    void count_tls_failure();
    bool take_tls_output();
    void finish_close();
    // A timer made on demand (the shaper's, the send deadline's), and its closing: it is freed in
    // its close callback, outside the stream's count of open handles.
    uv_timer_t* new_timer();
    static void free_timer(uv_timer_t*& t);
    void watch_stanza();
    void watch_send();
    void send_progress();
    void send_timed_out();
    [[nodiscard]] size_t waiting_output() const;

    EventLoop& loop_;
    Owner& owner_;
    uint64_t id_;
    Side side_;
    State state_ = State::Idle;
    uv_tcp_t tcp_{};
    uv_timer_t timer_{};
    uv_timer_t stanza_timer_{};  // the stanza deadline; left running lazily (see watch_stanza())
    uv_connect_t connect_req_{};
    uv_write_t write_req_{};
    int open_handles_ = 0;
    bool reading_ = false;
    bool paused_ = false;
    bool was_congested_ = false;
    bool timer_is_connect_ = false;  // the armed timer is the connect timeout
    bool trimmed_ = false;           // idle memory released since the last read
    bool shaped_ = false;            // reading waits for the shaper's bucket to refill
    std::unique_ptr<TokenBucket> bucket_;  // with a shaper only
    size_t read_cap_ = 0;                  // cap_reads(); 0: none
    uv_timer_t* shaper_timer_ = nullptr;   // with a shaper only; freed in its close callback
    // The send deadline: made the first time output waits for the kernel; left running lazily
    // (see watch_send()); freed in its close callback.
    uv_timer_t* send_timer_ = nullptr;
    uint64_t send_since_ = 0;        // loop time the output last made progress (or began to wait)
    size_t send_left_ = 0;           // libuv's write queue when the send timer last looked
    // Backpressure: a stanza read from a source stream and sent to this one found this stream's
    // output above kHighWater, so the source stopped reading until this one drains (or closes).
    FlowGate* blocked_on_ = nullptr;     // as a source: where we wait (a congested stream, a queue)
    FlowGate output_gate_;               // as a destination: the sources waiting for our output
    uint64_t last_read_ = 0;         // loop time of the last bytes read
    uint64_t last_sent_ = 0;         // loop time of the last bytes queued by send()
    bool stanza_pending_ = false;    // a stanza is partly read
    uint64_t stanza_since_ = 0;      // loop time its first byte was read
    uint64_t stanza_item_ = 0;       // the parser's items_done() then: a change means a newer stanza
    std::string close_reason_;
    xml::XmlStream parser_;
    xml::NamespaceScope scope_;
    std::unique_ptr<tls::Session> tls_;
    std::unique_ptr<ProxyStage> proxy_;  // while the PROXY header stage runs
    sockaddr_storage client_{};          // the client a PROXY header named; AF_UNSPEC: the TCP peer
    std::string plain_out_;  // TLS: plaintext queued this turn, encrypted at flush (fewer records)
    Buffer out_;       // queued bytes (ciphertext under TLS), not yet handed to libuv
    Buffer inflight_;  // handed to uv_write, waiting for its callback
};

}  // namespace s2s
