// Expat-driven XMPP stream parser: limits, restricted XML, namespaces, stanza trees.
#include "common/xmpp/xml_stream.h"

#include <expat.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>

// Expat >= 2.6 (and distributions that backported the CVE-2023-52425 fix, Debian 12 among them)
// may defer parsing a partial token until much more data has arrived, which would hold a complete
// stanza back until the peer sends more. We turn that off and bound the cost it protected against
// (re-scanning a growing token) with StreamLimits::max_tag_size instead. When the installed expat
// has no such function, this template is the only candidate and does nothing; when it has one,
// the exact non-template match wins.
template <typename Parser>
static XML_Bool XML_SetReparseDeferralEnabled(Parser, XML_Bool) {
    return XML_FALSE;
}

namespace s2s::xml {
namespace {

constexpr char kSeparator = '\x01';  // cannot occur in a name or a namespace URI
constexpr XML_Char kSeparatorString[] = {kSeparator, '\0'};
// Largest slice handed to one XML_Parse call. Expat copies each slice into its buffer, which
// never shrinks, so this bounds the parser's idle memory (buffer ~ slice + partial token + 1 KB
// of context, rounded up to a power of two). Measured: 2 KB slices keep an idle parser at
// ~12.5 KB instead of ~16.5 KB (4 KB) or ~25 KB (8 KB), at no measurable cost in throughput.
constexpr std::size_t kSlice = 2048;
constexpr std::size_t kKeepTextBytes = 16 * 1024;

// --- Counting allocator for expat ------------------------------------------------------------

std::atomic<std::size_t> g_expat_bytes{0};
constexpr std::size_t kHeader = alignof(std::max_align_t);

void* counted_malloc(std::size_t n) {
    if (n > SIZE_MAX - kHeader) return nullptr;
    auto* base = static_cast<unsigned char*>(std::malloc(n + kHeader));
    if (base == nullptr) return nullptr;
    *reinterpret_cast<std::size_t*>(base) = n;
    g_expat_bytes.fetch_add(n, std::memory_order_relaxed);
    return base + kHeader;
}

void* counted_realloc(void* p, std::size_t n) {
    if (p == nullptr) return counted_malloc(n);
    if (n > SIZE_MAX - kHeader) return nullptr;
    auto* old_base = static_cast<unsigned char*>(p) - kHeader;
    const std::size_t old = *reinterpret_cast<std::size_t*>(old_base);
    auto* base = static_cast<unsigned char*>(std::realloc(old_base, n + kHeader));
    if (base == nullptr) return nullptr;
    *reinterpret_cast<std::size_t*>(base) = n;
    g_expat_bytes.fetch_add(n, std::memory_order_relaxed);
    g_expat_bytes.fetch_sub(old, std::memory_order_relaxed);
    return base + kHeader;
}

void counted_free(void* p) {
    if (p == nullptr) return;
    auto* base = static_cast<unsigned char*>(p) - kHeader;
    g_expat_bytes.fetch_sub(*reinterpret_cast<std::size_t*>(base), std::memory_order_relaxed);
    std::free(base);
}

const XML_Memory_Handling_Suite kMemorySuite = {counted_malloc, counted_realloc, counted_free};

// --- Helpers ---------------------------------------------------------------------------------

// A name as expat reports it in triplet mode: "uri\1local\1prefix", "uri\1local" or "local".
struct QName {
    std::string_view ns;
    std::string_view local;
    std::string_view prefix;
};

QName split_name(const char* raw) noexcept {
    const std::string_view s(raw);
    const std::size_t a = s.find(kSeparator);
    if (a == std::string_view::npos) return QName{{}, s, {}};
    const std::string_view rest = s.substr(a + 1);
    const std::size_t b = rest.find(kSeparator);
    if (b == std::string_view::npos) return QName{s.substr(0, a), rest, {}};
    return QName{s.substr(0, a), rest.substr(0, b), rest.substr(b + 1)};
}

bool is_xml_space(const char* s, int len) noexcept {
    for (int i = 0; i < len; ++i) {
        const char c = s[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return false;
    }
    return true;
}

bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i];
        char y = b[i];
        if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
        if (x != y) return false;
    }
    return true;
}

std::size_t count_attributes(const char** atts) noexcept {
    std::size_t n = 0;
    for (const char** p = atts; *p != nullptr; p += 2) ++n;
    return n;
}

StreamError map_expat_error(XML_Error code) noexcept {
    switch (code) {
        case XML_ERROR_UNBOUND_PREFIX:
        case XML_ERROR_UNDECLARING_PREFIX:
        case XML_ERROR_RESERVED_PREFIX_XML:
        case XML_ERROR_RESERVED_PREFIX_XMLNS:
        case XML_ERROR_RESERVED_NAMESPACE_URI:
            return StreamError::BadNamespacePrefix;
        case XML_ERROR_UNDEFINED_ENTITY:
        case XML_ERROR_RECURSIVE_ENTITY_REF:
        case XML_ERROR_BINARY_ENTITY_REF:
        case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
        case XML_ERROR_PARAM_ENTITY_REF:
        case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
        case XML_ERROR_NOT_STANDALONE:
        case XML_ERROR_ENTITY_DECLARED_IN_PE:
        case XML_ERROR_ASYNC_ENTITY:
        case XML_ERROR_INCOMPLETE_PE:
        case XML_ERROR_AMPLIFICATION_LIMIT_BREACH:
            return StreamError::RestrictedXml;
        case XML_ERROR_UNKNOWN_ENCODING:
        case XML_ERROR_INCORRECT_ENCODING:
            return StreamError::UnsupportedEncoding;
        case XML_ERROR_NO_MEMORY:
            return StreamError::ResourceConstraint;
        default:
            return StreamError::NotWellFormed;
    }
}

// Each field of `want`, but never above the same field of `cap`.
StreamLimits capped(const StreamLimits& want, const StreamLimits& cap) noexcept {
    StreamLimits l;
    l.max_stanza_size = std::min(want.max_stanza_size, cap.max_stanza_size);
    l.max_tag_size = std::min(want.max_tag_size, cap.max_tag_size);
    l.max_depth = std::min(want.max_depth, cap.max_depth);
    l.max_attributes = std::min(want.max_attributes, cap.max_attributes);
    l.max_stanza_elements = std::min(want.max_stanza_elements, cap.max_stanza_elements);
    l.max_stanza_memory = std::min(want.max_stanza_memory, cap.max_stanza_memory);
    return l;
}

// The process-wide budget for unfinished stanzas (one thread: see set_memory_budget()).
std::size_t g_budget = 0;          // 0: none
std::size_t g_stanza_bytes = 0;    // sum of every stream's accounted_
XmlStream* g_unfinished = nullptr;  // streams with accounted_ > 0 (budget_next_ links them)

std::string limit_text(std::string_view what, std::size_t limit) {
    std::string s(what);
    s += " (limit ";
    s += std::to_string(limit);
    s += ')';
    return s;
}

}  // namespace

struct XmlStream::FeedGuard {
    bool destroyed = false;          // the owner destroyed the XmlStream from a callback
    XML_Parser orphan = nullptr;     // its parser, to free once expat has returned
};

// --- Expat trampolines: noexcept, never let an exception reach expat ---------------------------

struct XmlStreamCallbacks {
    template <typename F>
    static void guarded(void* user, F&& f) noexcept {
        auto* self = static_cast<XmlStream*>(user);
        if (self->halted_) return;  // expat may still deliver an event or two after a stop
        XmlStream::FeedGuard* guard = self->guard_;
        try {
            f(*self);
        } catch (const std::bad_alloc&) {
            if (guard == nullptr || !guard->destroyed) {
                self->fail(StreamError::ResourceConstraint, "out of memory");
            }
        } catch (const std::exception& e) {
            if (guard == nullptr || !guard->destroyed) {
                self->fail(StreamError::InternalServerError, e.what());
            }
        } catch (...) {
            if (guard == nullptr || !guard->destroyed) {
                self->fail(StreamError::InternalServerError, "unexpected exception");
            }
        }
    }

    static void XMLCALL start(void* user, const XML_Char* name, const XML_Char** atts) noexcept {
        guarded(user, [&](XmlStream& s) { s.handle_start(name, atts); });
    }
    static void XMLCALL end(void* user, const XML_Char*) noexcept {
        guarded(user, [&](XmlStream& s) { s.handle_end(); });
    }
    static void XMLCALL text(void* user, const XML_Char* data, int len) noexcept {
        guarded(user, [&](XmlStream& s) { s.handle_text(data, len); });
    }
    static void XMLCALL ns_decl(void* user, const XML_Char* prefix, const XML_Char* uri) noexcept {
        guarded(user, [&](XmlStream& s) { s.handle_ns_decl(prefix, uri); });
    }
    static void XMLCALL xml_decl(void* user, const XML_Char*, const XML_Char* encoding,
                                 int) noexcept {
        guarded(user, [&](XmlStream& s) { s.handle_xml_decl(encoding); });
    }
    static void XMLCALL doctype(void* user, const XML_Char*, const XML_Char*, const XML_Char*,
                                int) noexcept {
        guarded(user, [&](XmlStream& s) {
            s.fail(StreamError::RestrictedXml, "DOCTYPE is not allowed in XMPP");
        });
    }
    static void XMLCALL entity_decl(void* user, const XML_Char*, int, const XML_Char*, int,
                                    const XML_Char*, const XML_Char*, const XML_Char*,
                                    const XML_Char*) noexcept {
        guarded(user, [&](XmlStream& s) {
            s.fail(StreamError::RestrictedXml, "entity declarations are not allowed in XMPP");
        });
    }
    static void XMLCALL comment(void* user, const XML_Char*) noexcept {
        guarded(user, [&](XmlStream& s) {
            s.fail(StreamError::RestrictedXml, "comments are not allowed in XMPP");
        });
    }
    static void XMLCALL processing_instruction(void* user, const XML_Char*,
                                               const XML_Char*) noexcept {
        guarded(user, [&](XmlStream& s) {
            s.fail(StreamError::RestrictedXml, "processing instructions are not allowed in XMPP");
        });
    }
};

const char* limit_name(LimitHit hit) noexcept {
    switch (hit) {
        case LimitHit::None: return "none";
        case LimitHit::StanzaSize: return "stanza_size";
        case LimitHit::TagSize: return "tag_size";
        case LimitHit::Depth: return "depth";
        case LimitHit::Attributes: return "attributes";
        case LimitHit::Elements: return "elements";
        case LimitHit::Memory: return "memory";
        case LimitHit::Budget: return "budget";
        case LimitHit::Timeout: return "timeout";
    }
    return "?";
}

// --- StreamHeader ------------------------------------------------------------------------------

std::optional<std::string_view> StreamHeader::attr(std::string_view n,
                                                   std::string_view namespace_uri) const {
    for (const Attr& a : attributes) {
        if (a.name == n && a.ns == namespace_uri) return std::string_view(a.value);
    }
    return std::nullopt;
}

std::string_view StreamHeader::content_namespace() const {
    for (const NamespaceDecl& d : namespaces) {
        if (d.prefix.empty()) return d.uri;
    }
    return {};
}

NamespaceScope StreamHeader::scope() const {
    NamespaceScope s(content_namespace());
    for (const NamespaceDecl& d : namespaces) {
        if (d.prefix.empty() || d.uri.empty() || d.prefix == "xml") continue;
        s.bind(d.prefix, d.uri);
    }
    return s;
}

void StreamHeader::clear() {
    name.clear();
    ns.clear();
    prefix.clear();
    namespaces.clear();
    attributes.clear();
}

// --- XmlStream ---------------------------------------------------------------------------------

XmlStream::XmlStream(Handler& handler, StreamOptions options)
    : handler_(handler), options_(std::move(options)) {
    if (options_.unauthenticated) {
        *options_.unauthenticated = capped(*options_.unauthenticated, options_.limits);
        limits_ = &*options_.unauthenticated;
    }
}

XmlStream::~XmlStream() {
    unaccount();
    if (guard_ != nullptr) {
        // Destroyed from inside a callback: expat is still on the stack. Silence the parser and
        // leave it to feed() to free once XML_Parse has returned.
        guard_->destroyed = true;
        if (parser_ != nullptr) {
            XML_SetElementHandler(parser_, nullptr, nullptr);
            XML_SetCharacterDataHandler(parser_, nullptr);
            XML_SetStartNamespaceDeclHandler(parser_, nullptr);
            XML_SetXmlDeclHandler(parser_, nullptr);
            XML_SetStartDoctypeDeclHandler(parser_, nullptr);
            XML_SetEntityDeclHandler(parser_, nullptr);
            XML_SetCommentHandler(parser_, nullptr);
            XML_SetProcessingInstructionHandler(parser_, nullptr);
            if (in_parse_) XML_StopParser(parser_, XML_FALSE);
            guard_->orphan = parser_;
        }
        return;
    }
    if (parser_ != nullptr) XML_ParserFree(parser_);
}

void XmlStream::set_authenticated() noexcept { limits_ = &options_.limits; }

// --- Budget for unfinished stanzas --------------------------------------------------------------

void XmlStream::set_memory_budget(std::size_t bytes) noexcept { g_budget = bytes; }
std::size_t XmlStream::memory_budget() noexcept { return g_budget; }
std::size_t XmlStream::stanza_memory_in_use() noexcept { return g_stanza_bytes; }

// Updates this stream's share of the running total: the tree of the stanza being built, or 0
// between stanzas. Called after every slice fed to expat (never from inside an expat callback).
void XmlStream::account() noexcept {
    const std::size_t now =
        state_ == State::Open && depth_ >= 2 ? doc_.memory_usage() + text_.capacity() : 0;
    if (now != accounted_) {
        if (now == 0) {
            unaccount();
        } else {
            if (accounted_ == 0) {
                budget_prev_ = nullptr;
                budget_next_ = g_unfinished;
                if (g_unfinished != nullptr) g_unfinished->budget_prev_ = this;
                g_unfinished = this;
            }
            g_stanza_bytes = g_stanza_bytes - accounted_ + now;
            accounted_ = now;
        }
    }
    if (g_budget != 0 && g_stanza_bytes > g_budget) enforce_budget();
}

void XmlStream::unaccount() noexcept {
    if (accounted_ == 0) return;
    g_stanza_bytes -= accounted_;
    accounted_ = 0;
    if (budget_prev_ != nullptr) budget_prev_->budget_next_ = budget_next_;
    else g_unfinished = budget_next_;
    if (budget_next_ != nullptr) budget_next_->budget_prev_ = budget_prev_;
    budget_prev_ = budget_next_ = nullptr;
}

// Over budget: cut off the stream holding the largest unfinished stanza (this one or another)
// until the total fits. The scan runs only here, over streams with an unfinished stanza.
void XmlStream::enforce_budget() noexcept {
    while (g_budget != 0 && g_stanza_bytes > g_budget) {
        XmlStream* largest = nullptr;
        for (XmlStream* s = g_unfinished; s != nullptr; s = s->budget_next_) {
            if (largest == nullptr || s->accounted_ > largest->accounted_) largest = s;
        }
        if (largest == nullptr) return;
        const bool self = largest == this;
        // Its share leaves the total at once (halt()); its owner may even destroy it meanwhile.
        largest->cut_off(StreamError::ResourceConstraint,
                         "the server cannot hold more unfinished stanzas; this one was the largest",
                         LimitHit::Budget);
        if (self) return;
    }
}

void XmlStream::release_tree() noexcept {
    doc_.release();
    std::string().swap(text_);
    unaccount();
}

void XmlStream::cut_off(StreamError error, std::string_view text, LimitHit hit) noexcept {
    if (state_ != State::AwaitingHeader && state_ != State::Open) return;
    fail(error, text, hit);
    if (guard_ != nullptr) return;  // inside feed(): reported when it returns
    // Outside feed(): free what the dead stream holds now, then tell the owner.
    release_tree();
    if (parser_ != nullptr) {
        XML_ParserFree(parser_);
        parser_ = nullptr;
    }
    if (!error_) return;
    const auto [e, t] = std::move(*error_);
    error_.reset();
    FeedGuard guard;
    guard_ = &guard;
    try {
        handler_.on_stream_error(e, t);
    } catch (...) {
        // The stream is already failed: nothing more to report.
    }
    if (guard.destroyed) return;  // no parser to free: it was freed above
    guard_ = nullptr;
}

std::size_t XmlStream::expat_memory_in_use() noexcept {
    return g_expat_bytes.load(std::memory_order_relaxed);
}

std::size_t XmlStream::memory_usage() const noexcept {
    std::size_t n = doc_.memory_usage() + text_.capacity();
    n += header_.namespaces.capacity() * sizeof(StreamHeader::NamespaceDecl);
    n += header_.attributes.capacity() * sizeof(StreamHeader::Attr);
    return n;
}

bool XmlStream::create_parser() {
    parser_ = XML_ParserCreate_MM("UTF-8", &kMemorySuite, kSeparatorString);
    if (parser_ == nullptr) return false;
    XML_SetReturnNSTriplet(parser_, 1);
    install_handlers();
    return true;
}

void XmlStream::install_handlers() {
    using C = XmlStreamCallbacks;
    XML_SetUserData(parser_, this);
    XML_SetElementHandler(parser_, C::start, C::end);
    XML_SetCharacterDataHandler(parser_, C::text);
    XML_SetStartNamespaceDeclHandler(parser_, C::ns_decl);
    XML_SetXmlDeclHandler(parser_, C::xml_decl);
    // Restricted XML (RFC 6120 §11.1): refused at the declaration, before any entity exists.
    XML_SetStartDoctypeDeclHandler(parser_, C::doctype);
    XML_SetEntityDeclHandler(parser_, C::entity_decl);
    XML_SetCommentHandler(parser_, C::comment);
    XML_SetProcessingInstructionHandler(parser_, C::processing_instruction);
    XML_SetParamEntityParsing(parser_, XML_PARAM_ENTITY_PARSING_NEVER);
    XML_SetReparseDeferralEnabled(parser_, XML_FALSE);
}

void XmlStream::halt() noexcept {
    halted_ = true;
    unaccount();  // a stream that parses no more holds no share of the budget
    if (in_parse_ && parser_ != nullptr) XML_StopParser(parser_, XML_FALSE);
}

void XmlStream::fail(StreamError error, std::string_view text, LimitHit hit) noexcept {
    if (state_ == State::Failed) return;  // only the first error is reported
    state_ = State::Failed;
    limit_hit_ = hit;
    try {
        error_.emplace(error, std::string(text));
    } catch (...) {
        error_.emplace(error, std::string());  // no allocation
    }
    halt();
}

void XmlStream::stop() noexcept {
    if (state_ == State::AwaitingHeader || state_ == State::Open) state_ = State::Stopped;
    stop_at_ = last_event_end_;
    halt();
}

void XmlStream::reset() {
    if (guard_ != nullptr) {
        reset_pending_ = true;
        stop_at_ = last_event_end_;
        halt();
        return;
    }
    do_reset();
}

void XmlStream::do_reset() {
    if (parser_ != nullptr) {
        if (XML_ParserReset(parser_, "UTF-8") == XML_TRUE) {
            install_handlers();
        } else {
            XML_ParserFree(parser_);
            parser_ = nullptr;  // recreated by the next feed()
        }
    }
    unaccount();
    state_ = State::AwaitingHeader;
    limit_hit_ = LimitHit::None;
    elements_ = 0;
    header_.clear();
    doc_.clear();
    text_.clear();
    current_ = 0;
    depth_ = 0;
    fed_ = mark_ = last_event_end_ = stop_at_ = 0;
    halted_ = in_parse_ = replaying_ = reset_pending_ = false;
    error_.reset();
}

bool XmlStream::release_parser() noexcept {
    if (guard_ != nullptr || state_ != State::Open || parser_ == nullptr || depth_ != 1 ||
        last_event_end_ != fed_ || !text_.empty()) {
        return false;
    }
    XML_ParserFree(parser_);
    parser_ = nullptr;
    doc_.release();
    std::string().swap(text_);
    return true;
}

// Rebuilds the parser of an open stream after release_parser(): a new parser is fed a header
// carrying the same namespace declarations, so later stanzas resolve prefixes as before.
bool XmlStream::restore_parser() {
    if (!create_parser()) return false;
    std::string head = "<";
    head += header_.prefix;
    head += ":stream";
    for (const StreamHeader::NamespaceDecl& d : header_.namespaces) {
        head += d.prefix.empty() ? " xmlns" : " xmlns:";
        head += d.prefix;
        head += "='";
        append_escaped_attr(head, d.uri);
        head += '\'';
    }
    head += '>';
    depth_ = 0;
    fed_ = mark_ = last_event_end_ = 0;
    replaying_ = true;
    in_parse_ = true;
    const XML_Status st = XML_Parse(parser_, head.data(), static_cast<int>(head.size()), XML_FALSE);
    in_parse_ = false;
    replaying_ = false;
    fed_ = head.size();
    return st == XML_STATUS_OK && !halted_ && depth_ == 1;
}

FeedResult XmlStream::feed(const char* data, std::size_t len) {
    if (guard_ != nullptr) return {FeedStatus::Stopped, 0};  // re-entrant call from a callback
    switch (state_) {
        case State::Closed: return {FeedStatus::Closed, 0};
        case State::Failed: return {FeedStatus::Failed, 0};
        case State::Stopped: return {FeedStatus::Stopped, 0};
        case State::AwaitingHeader:
        case State::Open: break;
    }
    if (parser_ == nullptr) {
        const bool ok = state_ == State::Open ? restore_parser() : create_parser();
        if (!ok) {
            if (!error_) fail(StreamError::ResourceConstraint, "cannot create the XML parser");
            return finish_feed(fed_, len);
        }
    }

    const std::uint64_t base = fed_;
    FeedGuard guard;
    guard_ = &guard;
    std::size_t off = 0;
    while (off < len && !halted_) {
        const StreamLimits& limits = *limits_;  // set_authenticated() may switch it in a callback
        const std::uint64_t in_stanza = fed_ - mark_;
        const std::uint64_t in_tag = fed_ - last_event_end_;
        if (in_stanza >= limits.max_stanza_size) {
            fail(StreamError::PolicyViolation,
                 limit_text(depth_ == 0 ? "stream header too large" : "stanza too large",
                            limits.max_stanza_size),
                 LimitHit::StanzaSize);
            break;
        }
        if (in_tag >= limits.max_tag_size) {
            fail(StreamError::PolicyViolation, limit_text("tag too large", limits.max_tag_size),
                 LimitHit::TagSize);
            break;
        }
        std::size_t n = std::min(len - off, kSlice);
        n = static_cast<std::size_t>(std::min<std::uint64_t>(n, limits.max_stanza_size - in_stanza));
        n = static_cast<std::size_t>(std::min<std::uint64_t>(n, limits.max_tag_size - in_tag));

        in_parse_ = true;
        const XML_Status st = XML_Parse(parser_, data + off, static_cast<int>(n), XML_FALSE);
        if (guard.destroyed) {
            // The owner destroyed us from a callback: touch nothing but the stack.
            if (guard.orphan != nullptr) XML_ParserFree(guard.orphan);
            return {FeedStatus::Stopped, 0};
        }
        in_parse_ = false;
        fed_ += n;
        off += n;
        account();
        if (st != XML_STATUS_OK && !halted_) {
            const XML_Error code = XML_GetErrorCode(parser_);
            std::string text;
            try {
                text = "line " + std::to_string(XML_GetCurrentLineNumber(parser_)) + ", column " +
                       std::to_string(XML_GetCurrentColumnNumber(parser_)) + ": " +
                       XML_ErrorString(code);
            } catch (...) {
                // Report the condition without a text.
            }
            fail(map_expat_error(code), text);
        }
    }
    guard_ = nullptr;
    return finish_feed(base, len);
}

FeedResult XmlStream::finish_feed(std::uint64_t base, std::size_t len) {
    const auto consumed_to = [&](std::uint64_t end) -> std::size_t {
        if (end <= base) return 0;
        return static_cast<std::size_t>(std::min<std::uint64_t>(end - base, len));
    };
    if (error_) {
        release_tree();  // a failed stream builds nothing more
        const auto [error, text] = std::move(*error_);
        error_.reset();
        FeedGuard guard;
        guard_ = &guard;
        try {
            handler_.on_stream_error(error, text);
        } catch (...) {
            // Nothing sensible left to report: the stream is already failed.
        }
        if (guard.destroyed) {
            if (guard.orphan != nullptr) XML_ParserFree(guard.orphan);
            return {FeedStatus::Failed, len};
        }
        guard_ = nullptr;
        if (!reset_pending_) return {FeedStatus::Failed, len};
    }
    if (reset_pending_) {
        const std::size_t consumed = consumed_to(stop_at_);
        do_reset();
        return {FeedStatus::Stopped, consumed};
    }
    switch (state_) {
        case State::Closed: return {FeedStatus::Closed, consumed_to(stop_at_)};
        case State::Stopped: return {FeedStatus::Stopped, consumed_to(stop_at_)};
        case State::Failed: return {FeedStatus::Failed, len};
        case State::AwaitingHeader:
        case State::Open: break;
    }
    return {FeedStatus::Ok, len};
}

// --- Event handling (called through the trampolines, inside XML_Parse) -----------------------

void XmlStream::note_event() {
    last_event_end_ = static_cast<std::uint64_t>(XML_GetCurrentByteIndex(parser_)) +
                      static_cast<std::uint64_t>(XML_GetCurrentByteCount(parser_));
}

void XmlStream::flush_text() {
    if (text_.empty()) return;
    doc_.append_text_node(current_, text_);
    text_.clear();
}

void XmlStream::handle_ns_decl(const char* prefix, const char* uri) {
    if (depth_ != 0 || replaying_) return;  // only the header's declarations are kept
    header_.namespaces.push_back(
        StreamHeader::NamespaceDecl{prefix ? prefix : "", uri ? uri : ""});
}

void XmlStream::handle_xml_decl(const char* encoding) {
    note_event();
    if (encoding != nullptr && !iequals_ascii(encoding, "UTF-8")) {
        fail(StreamError::UnsupportedEncoding,
             std::string("encoding '") + encoding + "' is not supported (UTF-8 only)");
    }
}

void XmlStream::open_stream(const char* raw, const char** atts) {
    if (replaying_) {
        depth_ = 1;
        mark_ = last_event_end_;
        ++items_done_;
        return;
    }
    const QName q = split_name(raw);
    if (q.ns != ns::streams || q.local != "stream") {
        fail(StreamError::InvalidNamespace,
             "the stream header must be <stream:stream/> qualified by http://etherx.jabber.org/streams");
        return;
    }
    if (q.prefix.empty()) {
        fail(StreamError::BadNamespacePrefix, "the stream element must carry a namespace prefix");
        return;
    }
    if (count_attributes(atts) > limits_->max_attributes) {
        fail(StreamError::PolicyViolation, limit_text("too many attributes", limits_->max_attributes),
             LimitHit::Attributes);
        return;
    }
    const std::string_view content = header_.content_namespace();
    const auto& allowed = options_.content_namespaces;
    if (content == ns::streams) {
        fail(StreamError::InvalidNamespace, "the content namespace must not be the stream namespace");
        return;
    }
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), content) == allowed.end()) {
        fail(StreamError::InvalidNamespace,
             content.empty() ? std::string("no content namespace declared")
                             : "unsupported content namespace '" + std::string(content) + "'");
        return;
    }
    header_.name = std::string(q.local);
    header_.ns = std::string(q.ns);
    header_.prefix = std::string(q.prefix);
    for (const char** p = atts; *p != nullptr; p += 2) {
        const QName a = split_name(p[0]);
        header_.attributes.push_back(
            StreamHeader::Attr{std::string(a.ns), std::string(a.local), p[1]});
    }
    depth_ = 1;
    mark_ = last_event_end_;
    ++items_done_;
    state_ = State::Open;
    handler_.on_stream_open(header_);
}

void XmlStream::handle_start(const char* raw, const char** atts) {
    note_event();
    if (depth_ == 0) {
        open_stream(raw, atts);
        return;
    }
    const StreamLimits& limits = *limits_;
    if (depth_ > limits.max_depth) {
        fail(StreamError::PolicyViolation, limit_text("elements nested too deep", limits.max_depth),
             LimitHit::Depth);
        return;
    }
    if (count_attributes(atts) > limits.max_attributes) {
        fail(StreamError::PolicyViolation, limit_text("too many attributes", limits.max_attributes),
             LimitHit::Attributes);
        return;
    }
    const std::size_t elements = depth_ == 1 ? 1 : elements_ + 1;
    if (elements > limits.max_stanza_elements) {
        fail(StreamError::PolicyViolation,
             limit_text("too many elements in one stanza", limits.max_stanza_elements),
             LimitHit::Elements);
        return;
    }
    elements_ = elements;
    const QName q = split_name(raw);
    std::uint32_t index = 0;
    if (depth_ == 1) {
        doc_.clear();
        text_.clear();
        index = doc_.new_element(detail::kNone, q.local, q.ns);
    } else {
        flush_text();
        index = doc_.new_element(current_, q.local, q.ns);
    }
    for (const char** p = atts; *p != nullptr; p += 2) {
        const QName a = split_name(p[0]);
        doc_.append_attr(index, a.ns, a.local, p[1]);
    }
    current_ = index;
    ++depth_;
    check_tree();
}

// The tree being built against max_stanza_memory: a few additions per node.
void XmlStream::check_tree() {
    const std::size_t bytes = doc_.memory_usage() + text_.capacity();
    if (bytes > limits_->max_stanza_memory) {
        fail(StreamError::PolicyViolation,
             limit_text("stanza takes too much memory", limits_->max_stanza_memory), LimitHit::Memory);
    }
}

void XmlStream::handle_end() {
    note_event();
    if (depth_ <= 1) {
        close_stream();
        return;
    }
    --depth_;
    flush_text();
    if (depth_ > 1) {
        current_ = doc_.nodes_[current_].parent;
        check_tree();
        return;
    }
    // A complete depth-1 element.
    mark_ = last_event_end_;
    ++items_done_;
    FeedGuard* guard = guard_;
    handler_.on_stanza(doc_);
    if (guard != nullptr && guard->destroyed) return;
    doc_.clear();
    if (text_.capacity() > kKeepTextBytes) std::string().swap(text_);
}

void XmlStream::close_stream() {
    depth_ = 0;
    state_ = State::Closed;
    stop_at_ = last_event_end_;
    halt();
    handler_.on_stream_close();
}

void XmlStream::handle_text(const char* s, int len) {
    note_event();
    if (depth_ >= 2) {
        text_.append(s, static_cast<std::size_t>(len));
        check_tree();
        return;
    }
    // Between stanzas only whitespace (keepalives) may appear.
    if (!is_xml_space(s, len)) {
        fail(StreamError::BadFormat, "character data between stanzas");
        return;
    }
    mark_ = last_event_end_;
    ++items_done_;
}

// --- One-element parsing ---------------------------------------------------------------------

namespace {

class SingleElement final : public XmlStream::Handler {
public:
    void on_stream_open(const StreamHeader&) override {}
    void on_stanza(Document& stanza) override {
        if (++count == 1) doc = std::move(stanza);
    }
    void on_stream_close() override {}
    void on_stream_error(StreamError, std::string_view) override { failed = true; }

    std::optional<Document> doc;
    int count = 0;
    bool failed = false;
};

}  // namespace

std::optional<Document> parse_element(std::string_view xml, const NamespaceScope& scope,
                                      const StreamLimits& limits) {
    std::string stream_prefix(scope.prefix_for(ns::streams));
    if (stream_prefix.empty()) {
        stream_prefix = scope.uri_for("stream").empty() ? "stream" : "s2s-wrapper";
    }
    std::string head = "<" + stream_prefix + ":stream";
    if (scope.uri_for(stream_prefix).empty()) {
        head += " xmlns:" + stream_prefix + "='";
        head += ns::streams;
        head += '\'';
    }
    if (!scope.default_ns().empty()) {
        head += " xmlns='";
        append_escaped_attr(head, scope.default_ns());
        head += '\'';
    }
    for (const auto& [prefix, uri] : scope.bindings()) {
        head += " xmlns:" + prefix + "='";
        append_escaped_attr(head, uri);
        head += '\'';
    }
    head += '>';
    const std::string tail = "</" + stream_prefix + ":stream>";

    SingleElement collector;
    StreamOptions options;
    options.limits = limits;
    options.content_namespaces.clear();
    XmlStream stream(collector, options);
    if (stream.feed(head).status != FeedStatus::Ok) return std::nullopt;
    if (stream.feed(xml).status != FeedStatus::Ok) return std::nullopt;
    const FeedResult end = stream.feed(tail);
    if (end.status != FeedStatus::Closed || collector.failed || collector.count != 1) {
        return std::nullopt;
    }
    return std::move(collector.doc);
}

}  // namespace s2s::xml
