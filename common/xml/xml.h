// A compact XML element tree for one stanza, and its serializer.
//
// A Document owns every node, attribute and string of one tree: nodes and attributes live in two
// vectors addressed by index, strings in a block arena. Building a typical stanza costs no heap
// allocation once a Document has been used before (clear() keeps the capacity), which is what the
// parser does for every stanza. Element and Node are small handles (document pointer + index):
// cheap to copy, valid while the Document is alive and not moved, cleared or released.
// string_views returned by accessors point into the arena and stay valid until then too (a
// mutation never moves existing strings).
//
// Reading goes through handles (Element::attr(), child(), text(), children()...); writing goes
// through the Document (doc.set_attr(el, ...), doc.add_element(el, ...)), so a const Document
// cannot be modified.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace s2s::xml {

// Namespace names used across the proxy.
namespace ns {
inline constexpr std::string_view streams = "http://etherx.jabber.org/streams";
inline constexpr std::string_view server = "jabber:server";
inline constexpr std::string_view client = "jabber:client";
inline constexpr std::string_view component_accept = "jabber:component:accept";
inline constexpr std::string_view dialback = "jabber:server:dialback";
inline constexpr std::string_view dialback_feature = "urn:xmpp:features:dialback";
inline constexpr std::string_view tls = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr std::string_view sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
inline constexpr std::string_view xml = "http://www.w3.org/XML/1998/namespace";
inline constexpr std::string_view xmlns = "http://www.w3.org/2000/xmlns/";
}  // namespace ns

// Appends character data escaped for element content: & < > and CR (as &#13;, which a parser
// would otherwise turn into LF).
void append_escaped_text(std::string& out, std::string_view s);
// Appends an attribute value escaped for either quote character: & < > ' " and TAB/LF/CR as
// character references (a parser would otherwise normalize them to spaces).
void append_escaped_attr(std::string& out, std::string_view s);
// Convenience forms returning a new string.
[[nodiscard]] std::string escape_text(std::string_view s);
[[nodiscard]] std::string escape_attr(std::string_view s);

class Document;
class Element;

// One attribute as seen by readers. ns is empty for an unprefixed attribute (the usual case);
// xml:lang has ns == ns::xml and name "lang".
struct Attribute {
    std::string_view ns;
    std::string_view name;
    std::string_view value;
};

namespace detail {

inline constexpr std::uint32_t kNone = 0xFFFFFFFFu;

// A string stored in a Document's arena.
struct Str {
    const char* data = nullptr;
    std::uint32_t size = 0;
    [[nodiscard]] std::string_view view() const noexcept { return {data, size}; }
};

// One node: an element (name, ns, attributes, children) or a text node (text in `name`).
struct NodeRec {
    Str name;
    Str ns;
    std::uint32_t parent = kNone;
    std::uint32_t next = kNone;  // next sibling
    std::uint32_t first_child = kNone;
    std::uint32_t last_child = kNone;
    std::uint32_t first_attr = kNone;
    std::uint32_t last_attr = kNone;
    bool is_text = false;
};

// One attribute in a per-element singly linked list.
struct AttrRec {
    Str ns;
    Str name;
    Str value;
    std::uint32_t next = kNone;
};

// Bump allocator for strings: blocks are never moved, so stored strings keep their address.
class Arena {
public:
    Arena() = default;
    Arena(Arena&& other) noexcept;
    Arena& operator=(Arena&& other) noexcept;
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    ~Arena() = default;

    [[nodiscard]] Str store(std::string_view s);
    // Stores a + b as one string.
    [[nodiscard]] Str store_concat(std::string_view a, std::string_view b);
    // Forgets every string; keeps one block (up to kKeepBytes) for reuse.
    void clear() noexcept;
    // Forgets every string and frees every block.
    void release() noexcept;
    // Bytes held (blocks and their table); O(1).
    [[nodiscard]] std::size_t capacity() const noexcept { return blocks_.capacity() * sizeof(Block) + held_; }

    static constexpr std::size_t kFirstBlock = 512;
    static constexpr std::size_t kMaxBlock = 64 * 1024;
    static constexpr std::size_t kKeepBytes = 16 * 1024;

private:
    char* allocate(std::size_t n);

    struct Block {
        std::unique_ptr<char[]> data;
        std::size_t size = 0;
    };
    std::vector<Block> blocks_;
    std::size_t held_ = 0;  // sum of the blocks' sizes
    char* cur_ = nullptr;  // free space in the current block
    std::size_t left_ = 0;
    std::size_t next_size_ = kFirstBlock;
};

}  // namespace detail

// A child of an element: either an element or a text node.
class Node {
public:
    Node() = default;
    [[nodiscard]] explicit operator bool() const noexcept { return doc_ != nullptr; }
    [[nodiscard]] bool is_text() const noexcept;
    [[nodiscard]] bool is_element() const noexcept { return doc_ != nullptr && !is_text(); }
    // The text of a text node; empty for an element.
    [[nodiscard]] std::string_view text() const noexcept;
    // The element; an invalid handle for a text node.
    [[nodiscard]] Element element() const noexcept;

private:
    friend class Document;
    friend class Element;
    friend struct NodeTraits;
    Node(const Document* doc, std::uint32_t index) : doc_(doc), index_(index) {}
    const Document* doc_ = nullptr;
    std::uint32_t index_ = 0;
};

// Forward iterator over a sibling chain (children or attributes) of one Document.
template <typename Value, typename Traits>
class SiblingIterator {
public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Value;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Value;

    SiblingIterator() = default;
    SiblingIterator(const Document* doc, std::uint32_t index) : doc_(doc), index_(index) {}
    [[nodiscard]] Value operator*() const { return Traits::make(doc_, index_); }
    SiblingIterator& operator++() {
        index_ = Traits::next(doc_, index_);
        return *this;
    }
    SiblingIterator operator++(int) {
        SiblingIterator old = *this;
        ++*this;
        return old;
    }
    [[nodiscard]] bool operator==(const SiblingIterator& o) const { return index_ == o.index_; }
    [[nodiscard]] bool operator!=(const SiblingIterator& o) const { return index_ != o.index_; }

private:
    const Document* doc_ = nullptr;
    std::uint32_t index_ = detail::kNone;
};

// A begin/end pair for range-for.
template <typename It>
struct Range {
    It first;
    It last;
    [[nodiscard]] It begin() const { return first; }
    [[nodiscard]] It end() const { return last; }
    [[nodiscard]] bool empty() const { return first == last; }
};

struct NodeTraits {
    static Node make(const Document* doc, std::uint32_t i);
    static std::uint32_t next(const Document* doc, std::uint32_t i);
};
struct ElementTraits {
    static Element make(const Document* doc, std::uint32_t i);
    static std::uint32_t next(const Document* doc, std::uint32_t i);  // skips text nodes
};
struct AttributeTraits {
    static Attribute make(const Document* doc, std::uint32_t i);
    static std::uint32_t next(const Document* doc, std::uint32_t i);
};

using NodeRange = Range<SiblingIterator<Node, NodeTraits>>;
using ElementRange = Range<SiblingIterator<Element, ElementTraits>>;
using AttributeRange = Range<SiblingIterator<Attribute, AttributeTraits>>;

// Read-only handle to an element of a Document. A default-constructed Element is invalid
// (false); lookups that find nothing return an invalid Element, and every accessor of an invalid
// Element returns an empty result.
class Element {
public:
    Element() = default;
    [[nodiscard]] explicit operator bool() const noexcept { return doc_ != nullptr; }

    [[nodiscard]] std::string_view name() const noexcept;  // local name
    [[nodiscard]] std::string_view ns() const noexcept;    // namespace URI ("" for none)
    [[nodiscard]] bool is(std::string_view name, std::string_view ns) const noexcept;

    // Value of the attribute with this local name and namespace (no namespace by default);
    // nullopt when absent (an empty value is not absent: Prosody sends id='').
    [[nodiscard]] std::optional<std::string_view> attr(std::string_view name,
                                                       std::string_view ns = {}) const noexcept;
    [[nodiscard]] AttributeRange attributes() const noexcept;

    // First child element with this name and namespace; invalid if none.
    [[nodiscard]] Element child(std::string_view name, std::string_view ns) const noexcept;
    // First child element in this namespace, any name; invalid if none.
    [[nodiscard]] Element child_in(std::string_view ns) const noexcept;
    [[nodiscard]] Element first_element() const noexcept;
    [[nodiscard]] Element parent() const noexcept;
    [[nodiscard]] NodeRange children() const noexcept;   // elements and text, in order
    [[nodiscard]] ElementRange elements() const noexcept;  // child elements only
    [[nodiscard]] bool has_children() const noexcept;

    // Concatenated direct text children (not descendants').
    [[nodiscard]] std::string text() const;

    [[nodiscard]] const Document* document() const noexcept { return doc_; }
    // Same node of the same document.
    [[nodiscard]] bool same(const Element& o) const noexcept {
        return doc_ == o.doc_ && index_ == o.index_;
    }

private:
    friend class Document;
    friend class Node;
    friend struct ElementTraits;
    friend struct NodeTraits;
    Element(const Document* doc, std::uint32_t index) : doc_(doc), index_(index) {}
    [[nodiscard]] const detail::NodeRec& rec() const noexcept;
    const Document* doc_ = nullptr;
    std::uint32_t index_ = 0;
};

// Owner of one element tree (typically one stanza). See the file comment for the memory model.
class Document {
public:
    Document() = default;
    Document(const Document& other);  // deep copy into fresh storage
    Document& operator=(const Document& other);
    Document(Document&& other) noexcept;  // handles into `other` become invalid
    Document& operator=(Document&& other) noexcept;
    ~Document() = default;

    [[nodiscard]] bool empty() const noexcept { return nodes_.empty(); }
    // The root element; invalid when empty.
    [[nodiscard]] Element root() const noexcept;

    // Replaces the whole tree by a single root element.
    Element create_root(std::string_view name, std::string_view ns);
    // Appends a child element to `parent` and returns it.
    Element add_element(Element parent, std::string_view name, std::string_view ns);
    // Appends text to `parent` (merged into a preceding text node). Empty text is ignored.
    void add_text(Element parent, std::string_view text);
    // Sets (replaces or appends) an attribute. Names starting with "xmlns" are not attributes and
    // are dropped by the serializer; declare namespaces through element namespaces instead.
    void set_attr(Element e, std::string_view name, std::string_view value,
                  std::string_view ns = {});
    // Removes an attribute; false if it was absent.
    bool remove_attr(Element e, std::string_view name, std::string_view ns = {});
    // Unlinks `e` (not the root) from its parent; false if e is the root or already unlinked.
    bool remove(Element e);
    // Deep-copies `src` (from any Document, this one included) as the last child of `parent`; if
    // `parent` is invalid, the copy replaces this whole tree as its root. Returns the copy.
    Element import(Element parent, Element src);

    // Forgets the tree, keeping a bounded amount of capacity for the next one.
    void clear() noexcept;
    // Forgets the tree and frees all memory.
    void release() noexcept;
    // Heap bytes held (capacity, not size): node and attribute records and string blocks. O(1),
    // so a parser can check it after every node.
    [[nodiscard]] std::size_t memory_usage() const noexcept;

private:
    friend class Element;
    friend class Node;
    friend class XmlStream;  // builds trees without the checks done for API callers
    friend struct NodeTraits;
    friend struct ElementTraits;
    friend struct AttributeTraits;

    [[nodiscard]] std::uint32_t check(Element e) const;
    std::uint32_t new_node(std::uint32_t parent, detail::Str name, detail::Str ns, bool is_text);
    std::uint32_t new_element(std::uint32_t parent, std::string_view name, std::string_view ns);
    void append_attr(std::uint32_t node, std::string_view ns, std::string_view name,
                     std::string_view value);
    void append_text_node(std::uint32_t parent, std::string_view text);
    std::uint32_t import_rec(std::uint32_t parent, const Document& src, std::uint32_t index);

    std::vector<detail::NodeRec> nodes_;
    std::vector<detail::AttrRec> attrs_;
    detail::Arena arena_;
};

// Structural equality: names, namespaces, attributes (in order) and children (in order; text
// compared exactly). Handles from different documents compare by content.
[[nodiscard]] bool equal(Element a, Element b);

// The namespaces a serialized element will be written into: the enclosing stream's default
// namespace (e.g. "jabber:server") and the prefixes the stream header declared (e.g. db for
// jabber:server:dialback, stream for the streams namespace). Build one per stream and reuse it.
class NamespaceScope {
public:
    NamespaceScope() = default;
    explicit NamespaceScope(std::string_view default_ns) : default_ns_(default_ns) {}

    // Declares prefix -> uri (as the stream header did). Later bindings of the same prefix win.
    NamespaceScope& bind(std::string_view prefix, std::string_view uri);
    void set_default_ns(std::string_view uri) { default_ns_ = std::string(uri); }

    [[nodiscard]] std::string_view default_ns() const noexcept { return default_ns_; }
    // The prefix bound to uri, or empty if none.
    [[nodiscard]] std::string_view prefix_for(std::string_view uri) const noexcept;
    // The uri bound to prefix, or empty if none.
    [[nodiscard]] std::string_view uri_for(std::string_view prefix) const noexcept;
    [[nodiscard]] const std::vector<std::pair<std::string, std::string>>& bindings() const noexcept {
        return bindings_;
    }

    // The usual scope of an s2s stream we write: default jabber:server, stream and db prefixes.
    [[nodiscard]] static NamespaceScope server_stream();

private:
    std::string default_ns_;
    std::vector<std::pair<std::string, std::string>> bindings_;  // (prefix, uri)
};

// Appends `e` and its subtree to `out` as it must be written inside a stream with `scope`:
// - an element in scope.default_ns() (or its parent's namespace) gets no xmlns;
// - an element whose namespace has a prefix in scope is written prefixed (<db:result>);
// - any other element declares xmlns='...' (xmlns='' for no namespace under a default);
// - xml:* attributes are written as xml:NAME; other namespaced attributes use the scope's prefix
//   or a prefix declared on the element itself (ns0, ns1...).
// Text and attribute values are escaped. Output is UTF-8 as stored.
void serialize(Element e, const NamespaceScope& scope, std::string& out);
[[nodiscard]] std::string to_string(Element e, const NamespaceScope& scope);
// Standalone form: no default namespace, no prefixes (every namespace declared).
[[nodiscard]] std::string to_string(Element e);

}  // namespace s2s::xml
