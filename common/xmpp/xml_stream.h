// Incremental, namespace-aware parser for one direction of an XMPP stream (expat underneath).
//
// Depth 0 is the stream header (<stream:stream ...>) and its close; each depth-1 element (a stanza,
// stream features, a dialback or TLS element...) is built into an xml::Document and handed over
// whole. Bytes may arrive split anywhere. Anything RFC 6120 forbids ends the stream with exactly
// one on_stream_error() and no callback after it; the object is then dead until reset().
//
// Limits are enforced while bytes arrive, before expat sees them: a stanza larger than
// max_stanza_size fails as soon as its first byte over the limit is fed, whatever the chunking.
// What a stanza costs in memory is bounded too (max_stanza_elements, max_stanza_memory, checked
// after every node), and so is what all unfinished stanzas of the process hold together
// (set_memory_budget(): past it the stream with the largest unfinished stanza is cut off with
// resource-constraint). A stream is held to StreamOptions::unauthenticated until its owner says
// the peer has authenticated.
//
// Memory of an idle open stream (measured, see "memory of an idle stream" in
// tests/unit/common/xmpp/test_xml_stream.cpp): the XmlStream object (~590 bytes), the expat parser (~9.6 KB
// right after the header, ~12-14 KB once stanzas have flowed: its input buffer grows to 4 KB and
// never shrinks) and the recycled stanza Document (~1.5 KB for small stanzas; capped at 16 KB of
// strings and 256 nodes). release_parser() frees the parser and the Document of an idle stream,
// leaving ~1.5 KB (object + header); the next feed() rebuilds them (a few microseconds). With a
// TLS link at ~35 KB, an owner aiming at <= 40 KB per idle link should release after some idle
// time rather than after every read.
//
// Typical owner:
//     class Link : xml::XmlStream::Handler { ... xml::XmlStream parser_{*this, options}; };
//     on read:   auto r = parser_.feed(buf, n);  // callbacks run inside feed()
//     STARTTLS:  parser_.reset() (from inside on_stanza() too), then feed decrypted bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/xmpp/stream_error.h"
#include "common/xml/xml.h"

struct XML_ParserStruct;  // expat's parser; expat.h stays out of this header

namespace s2s::xml {

// Resource limits of one stream (all must be > 0). Violations end the stream with
// policy-violation. Byte limits count raw bytes as they are fed, including whitespace.
struct StreamLimits {
    std::size_t max_stanza_size = 512 * 1024;  // bytes of one depth-1 element, or of the header
    // Bytes of one tag (a start tag with its attributes; strictly: bytes without any parser
    // event). Also bounds expat's re-scan of an incomplete token, so a peer trickling a huge
    // tag byte by byte cannot make parsing quadratic.
    std::size_t max_tag_size = 16 * 1024;
    unsigned max_depth = 32;                   // element nesting inside a stanza (stanza = 1)
    unsigned max_attributes = 64;              // attributes on one element
    // Elements in one depth-1 element, itself included.
    std::size_t max_stanza_elements = 10000;
    // Heap bytes the tree of one depth-1 element may hold while it is built: node and attribute
    // records, the string blocks and the character data not yet added (Document::memory_usage()
    // plus the text buffer, capacities, checked after every node and every piece of text).
    // A tag of 4 bytes (<a/>) costs a 64-byte node record, so bytes alone do not bound this.
    std::size_t max_stanza_memory = memory_for(512 * 1024);

    // The tree memory that lets any stanza of `stanza_size` bytes made of text and a sane number
    // of elements through: 4 bytes per byte (text is held twice while it is built, and the
    // buffers grow by doubling) plus 256 KiB for node records.
    [[nodiscard]] static constexpr std::size_t memory_for(std::size_t stanza_size) noexcept {
        return 4 * stanza_size + 256 * 1024;
    }
    // Limits for a peer that has proved nothing yet: negotiation elements (features, STARTTLS,
    // SASL, dialback) are small, so at most 16 KiB, 500 elements and 128 KiB of tree each.
    [[nodiscard]] static constexpr StreamLimits unauthenticated() noexcept {
        StreamLimits l;
        l.max_stanza_size = 16 * 1024;
        l.max_stanza_elements = 500;
        l.max_stanza_memory = 128 * 1024;
        return l;
    }
};

// Which limit ended a stream (XmlStream::limit_hit()), for counters and logs.
enum class LimitHit {
    None,
    StanzaSize,  // max_stanza_size bytes (or the header's)
    TagSize,     // max_tag_size
    Depth,       // max_depth
    Attributes,  // max_attributes
    Elements,    // max_stanza_elements
    Memory,      // max_stanza_memory
    Budget,      // the process-wide budget (XmlStream::set_memory_budget): this stream held the
                 // largest unfinished stanza
    Timeout,     // the owner's stanza deadline (see StreamOptions::stanza_timeout_ms)
};
// "stanza_size", "tag_size", "depth", "attributes", "elements", "memory", "budget", "timeout"
// ("none" for None): the metric label.
[[nodiscard]] const char* limit_name(LimitHit hit) noexcept;

// Configuration of one XmlStream.
struct StreamOptions {
    StreamLimits limits;
    // Limits that apply until the owner calls XmlStream::set_authenticated() (unset: `limits`
    // from the start). Each field is used only where it is below the same field of `limits`.
    std::optional<StreamLimits> unauthenticated;
    // Milliseconds a depth-1 element may take from its first byte to its last; 0: no deadline.
    // The parser keeps no clock: the transport that feeds it (proxy/stream/stream) enforces this, with
    // items_done() and unfinished_bytes(), and ends the stream through cut_off().
    std::uint64_t stanza_timeout_ms = 0;
    // Milliseconds our output may wait for the peer to take it; 0: no deadline. Like the stanza
    // deadline, kept by the transport (proxy/stream/stream: the send deadline), not the parser.
    std::uint64_t send_timeout_ms = 0;
    // Accepted default (content) namespaces of the stream header; anything else, or none,
    // is invalid-namespace. Empty accepts any namespace, or none.
    std::vector<std::string> content_namespaces = {std::string(ns::server)};
};

// What the peer's stream header said.
struct StreamHeader {
    // One xmlns declaration on the header; prefix is empty for the default namespace.
    struct NamespaceDecl {
        std::string prefix;
        std::string uri;
    };
    // One attribute (ns empty unless prefixed, e.g. xml:lang has ns == ns::xml).
    struct Attr {
        std::string ns;
        std::string name;
        std::string value;
    };

    std::string name;    // "stream"
    std::string ns;      // ns::streams
    std::string prefix;  // "stream" (any prefix is accepted, none is not)
    std::vector<NamespaceDecl> namespaces;
    std::vector<Attr> attributes;  // from, to, id, version, xml:lang...

    // Value of an attribute (no namespace by default); nullopt if absent.
    [[nodiscard]] std::optional<std::string_view> attr(std::string_view name,
                                                       std::string_view ns = {}) const;
    // The declared default namespace (jabber:server...), empty if none.
    [[nodiscard]] std::string_view content_namespace() const;
    // A serialization scope with this header's default namespace and prefixes.
    [[nodiscard]] NamespaceScope scope() const;
    void clear();
};

// How a feed() ended.
enum class FeedStatus {
    Ok,       // every byte parsed; the stream goes on
    Stopped,  // stop() or reset() was called from a callback; `consumed` bytes were parsed
    Closed,   // </stream:stream> seen; bytes after it were not parsed
    Failed,   // on_stream_error() was called; the parser is dead until reset()
};

// Result of feed(): the status and how many bytes of this chunk were parsed. For Stopped and
// Closed, `consumed` ends right after the element during which parsing stopped (so bytes after a
// <proceed/> can be told apart); for Ok and Failed it is the whole chunk.
struct [[nodiscard]] FeedResult {
    FeedStatus status = FeedStatus::Ok;
    std::size_t consumed = 0;
};

// The streaming parser. Not copyable or movable (expat holds its address).
class XmlStream {
public:
    // Receives the stream's events. Callbacks run inside feed(). From any callback the owner may
    // call stop() or reset() (parsing stops after the current element) and may even destroy
    // the XmlStream (feed() then returns Stopped, 0 without touching it; closing at a safe point
    // later is the better habit); it must not call feed() re-entrantly (refused). An exception
    // thrown by a callback becomes internal-server-error.
    class Handler {
    public:
        // The stream header was accepted (namespaces checked).
        virtual void on_stream_open(const StreamHeader& header) = 0;
        // One complete depth-1 element. The handler may move the Document away to keep it;
        // otherwise it is recycled for the next stanza when the callback returns.
        virtual void on_stanza(Document& stanza) = 0;
        // </stream:stream> arrived.
        virtual void on_stream_close() = 0;
        // The stream is broken: send <stream:error/> with this condition and close.
        virtual void on_stream_error(StreamError error, std::string_view text) = 0;

    protected:
        ~Handler() = default;
    };

    // Where the stream is.
    enum class State {
        AwaitingHeader,  // nothing yet, or after reset()
        Open,            // header accepted; stanzas flow
        Closed,          // peer closed the stream
        Failed,          // stream error reported
        Stopped,         // owner called stop()
    };

    explicit XmlStream(Handler& handler, StreamOptions options = {});
    ~XmlStream();
    XmlStream(const XmlStream&) = delete;
    XmlStream& operator=(const XmlStream&) = delete;
    XmlStream(XmlStream&&) = delete;
    XmlStream& operator=(XmlStream&&) = delete;

    // Parses a chunk of the stream. Once the stream is Closed/Failed/Stopped, returns that
    // status with consumed = 0 and parses nothing.
    FeedResult feed(const char* data, std::size_t len);
    FeedResult feed(std::string_view data) { return feed(data.data(), data.size()); }

    // Starts a new stream on this object (after STARTTLS or SASL success), keeping the expat
    // parser's memory. Inside a callback it takes effect when feed() returns (which then reports
    // Stopped with the consumed count): remaining bytes of that chunk are not parsed.
    void reset();
    // Stops parsing for good (until reset()); no callback follows. Safe inside a callback.
    void stop() noexcept;
    // Frees the expat parser and the stanza buffers of an idle open stream (between stanzas,
    // no partial data buffered, not inside feed()). The next feed() rebuilds them. Returns false
    // (doing nothing) when that is not possible right now.
    [[nodiscard]] bool release_parser() noexcept;

    [[nodiscard]] State state() const noexcept { return state_; }
    // The peer's header (valid once Open).
    [[nodiscard]] const StreamHeader& header() const noexcept { return header_; }
    [[nodiscard]] const StreamOptions& options() const noexcept { return options_; }
    [[nodiscard]] bool has_parser() const noexcept { return parser_ != nullptr; }
    // Heap bytes held by this stream outside expat (stanza buffers, header).
    [[nodiscard]] std::size_t memory_usage() const noexcept;

    // The peer has authenticated: StreamOptions::limits apply from now on (for the element being
    // built too). Idempotent; kept across reset().
    void set_authenticated() noexcept;
    [[nodiscard]] bool authenticated() const noexcept { return limits_ == &options_.limits; }
    // The limits in force now.
    [[nodiscard]] const StreamLimits& limits() const noexcept { return *limits_; }
    // Which limit ended the stream; None if it did not end on a limit.
    [[nodiscard]] LimitHit limit_hit() const noexcept { return limit_hit_; }

    // Bytes fed of a depth-1 element not yet complete (0 between stanzas and before the header
    // is accepted). With items_done(), tells a transport when a stanza began.
    [[nodiscard]] std::size_t unfinished_bytes() const noexcept {
        return state_ == State::Open && fed_ > mark_ ? static_cast<std::size_t>(fed_ - mark_) : 0;
    }
    // How many items (the header, stanzas, whitespace between them) were completed so far; a
    // change means that the unfinished bytes now belong to a newer element.
    [[nodiscard]] std::uint64_t items_done() const noexcept { return items_done_; }
    // Tree bytes of the unfinished stanza, as counted against the process-wide budget (updated
    // after every slice fed to expat, 0 between stanzas).
    [[nodiscard]] std::size_t accounted_memory() const noexcept { return accounted_; }

    // Ends the stream for a limit enforced outside feed() (a deadline, the budget): frees the
    // stanza being built and reports on_stream_error() now, or when feed() returns if called
    // from inside it. Nothing happens when the stream is already Closed, Failed or Stopped.
    void cut_off(StreamError error, std::string_view text, LimitHit hit) noexcept;

    // The process-wide budget for the trees of unfinished stanzas, in bytes (0: none). Whenever a
    // stream's share is updated and the total is over it, the stream holding the largest
    // unfinished stanza is cut off with resource-constraint (limit_hit() Budget), until the
    // total fits. The accounting is a running total (O(1) per update); the largest is looked
    // for, among streams with an unfinished stanza only, when the budget is exceeded. All
    // XmlStreams of a process must live on one thread (the event loop).
    static void set_memory_budget(std::size_t bytes) noexcept;
    [[nodiscard]] static std::size_t memory_budget() noexcept;
    // Bytes the trees of all unfinished stanzas hold now (what the budget is compared with).
    [[nodiscard]] static std::size_t stanza_memory_in_use() noexcept;

    // Bytes currently allocated by all expat parsers of the process (every XmlStream uses a
    // counting allocator). For metrics and for measuring the cost of one stream.
    [[nodiscard]] static std::size_t expat_memory_in_use() noexcept;

    // State of the feed() call in progress, on its stack, so that callbacks can tell whether the
    // owner destroyed this object.
    struct FeedGuard;

private:
    friend struct XmlStreamCallbacks;

    bool create_parser();
    void install_handlers();
    bool restore_parser();
    void do_reset();
    void halt() noexcept;
    void fail(StreamError error, std::string_view text, LimitHit hit = LimitHit::None) noexcept;
    void check_tree();
    void account() noexcept;
    void unaccount() noexcept;
    void release_tree() noexcept;
    void enforce_budget() noexcept;
    FeedResult finish_feed(std::uint64_t base, std::size_t len);
    void note_event();
    void flush_text();
    void open_stream(const char* name, const char** atts);
    void close_stream();
    void handle_start(const char* name, const char** atts);
    void handle_end();
    void handle_text(const char* s, int len);
    void handle_ns_decl(const char* prefix, const char* uri);
    void handle_xml_decl(const char* encoding);

    Handler& handler_;
    StreamOptions options_;
    // options_.limits, or options_.unauthenticated (capped by options_.limits at construction)
    const StreamLimits* limits_ = &options_.limits;
    LimitHit limit_hit_ = LimitHit::None;
    std::size_t elements_ = 0;          // elements of the stanza being built
    std::uint64_t items_done_ = 0;      // see items_done()
    std::size_t accounted_ = 0;         // this stream's share of the budget's running total
    XmlStream* budget_prev_ = nullptr;  // in the list of streams with accounted_ > 0
    XmlStream* budget_next_ = nullptr;
    XML_ParserStruct* parser_ = nullptr;
    FeedGuard* guard_ = nullptr;  // non-null while feed() runs
    State state_ = State::AwaitingHeader;
    StreamHeader header_;
    Document doc_;                // stanza being built
    std::uint32_t current_ = 0;   // index of the element being built in doc_
    std::string text_;            // character data not yet added to doc_
    unsigned depth_ = 0;          // open elements, the stream element included
    // Byte accounting, in expat's coordinates (offsets since the parser was created or reset).
    std::uint64_t fed_ = 0;             // bytes handed to expat
    std::uint64_t mark_ = 0;            // end of the last complete depth-1 item (or header)
    std::uint64_t last_event_end_ = 0;  // end of the last event of any kind
    std::uint64_t stop_at_ = 0;         // end of the event during which parsing stopped
    bool halted_ = false;               // no further events wanted from expat
    bool in_parse_ = false;             // inside XML_Parse
    bool replaying_ = false;            // re-feeding the header after release_parser()
    bool reset_pending_ = false;        // reset() asked from a callback
    std::optional<std::pair<StreamError, std::string>> error_;  // to report when feed() returns
};

// Parses exactly one element written as it would appear inside a stream with `scope` (so
// prefixes such as db: resolve and the default namespace applies), e.g. the output of
// serialize(). Returns nullopt unless the input is exactly one element (whitespace around is
// allowed) that the stream parser accepts.
[[nodiscard]] std::optional<Document> parse_element(
    std::string_view xml, const NamespaceScope& scope = NamespaceScope::server_stream(),
    const StreamLimits& limits = StreamLimits{});

}  // namespace s2s::xml
