// Element tree storage, accessors and serializer.
#include "common/xml/xml.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace s2s::xml {

using detail::AttrRec;
using detail::kNone;
using detail::NodeRec;
using detail::Str;

// ---------------------------------------------------------------------------------------------
// Escaping

namespace {

// Escape codes: 0 = copy as is, otherwise an index into kReplacements.
constexpr std::array<std::string_view, 9> kReplacements = {
    "", "&amp;", "&lt;", "&gt;", "&apos;", "&quot;", "&#9;", "&#10;", "&#13;",
};
using EscapeTable = std::array<std::uint8_t, 256>;

constexpr EscapeTable make_table(bool attribute) {
    EscapeTable t{};
    t[static_cast<unsigned char>('&')] = 1;
    t[static_cast<unsigned char>('<')] = 2;
    t[static_cast<unsigned char>('>')] = 3;
    t[static_cast<unsigned char>('\r')] = 8;
    if (attribute) {
        t[static_cast<unsigned char>('\'')] = 4;
        t[static_cast<unsigned char>('"')] = 5;
        t[static_cast<unsigned char>('\t')] = 6;
        t[static_cast<unsigned char>('\n')] = 7;
    }
    return t;
}
constexpr EscapeTable kTextTable = make_table(false);
constexpr EscapeTable kAttrTable = make_table(true);

inline void append_escaped(std::string& out, std::string_view s, const EscapeTable& table) {
    const char* p = s.data();
    const char* const end = p + s.size();
    const char* run = p;  // start of the pending unescaped run
    for (; p != end; ++p) {
        const std::uint8_t code = table[static_cast<unsigned char>(*p)];
        if (code == 0) continue;
        out.append(run, static_cast<std::size_t>(p - run));
        out.append(kReplacements[code]);
        run = p + 1;
    }
    out.append(run, static_cast<std::size_t>(end - run));
}

}  // namespace

void append_escaped_text(std::string& out, std::string_view s) {
    append_escaped(out, s, kTextTable);
}

void append_escaped_attr(std::string& out, std::string_view s) {
    append_escaped(out, s, kAttrTable);
}

std::string escape_text(std::string_view s) {
    std::string out;
    append_escaped_text(out, s);
    return out;
}

std::string escape_attr(std::string_view s) {
    std::string out;
    append_escaped_attr(out, s);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Arena

namespace detail {

Arena::Arena(Arena&& other) noexcept
    : blocks_(std::move(other.blocks_)),
      held_(std::exchange(other.held_, 0)),
      cur_(std::exchange(other.cur_, nullptr)),
      left_(std::exchange(other.left_, 0)),
      next_size_(std::exchange(other.next_size_, kFirstBlock)) {
    other.blocks_.clear();
}

Arena& Arena::operator=(Arena&& other) noexcept {
    if (this != &other) {
        blocks_ = std::move(other.blocks_);
        other.blocks_.clear();
        held_ = std::exchange(other.held_, 0);
        cur_ = std::exchange(other.cur_, nullptr);
        left_ = std::exchange(other.left_, 0);
        next_size_ = std::exchange(other.next_size_, kFirstBlock);
    }
    return *this;
}

char* Arena::allocate(std::size_t n) {
    if (n <= left_) {
        char* p = cur_;
        cur_ += n;
        left_ -= n;
        return p;
    }
    if (n > next_size_ / 2) {
        // A big string gets a block of its own; the current block keeps serving small ones.
        blocks_.push_back(Block{std::unique_ptr<char[]>(new char[n]), n});
        held_ += n;
        return blocks_.back().data.get();
    }
    const std::size_t size = next_size_;
    next_size_ = std::min(next_size_ * 2, kMaxBlock);
    blocks_.push_back(Block{std::unique_ptr<char[]>(new char[size]), size});
    held_ += size;
    char* p = blocks_.back().data.get();
    cur_ = p + n;
    left_ = size - n;
    return p;
}

Str Arena::store(std::string_view s) {
    if (s.empty()) return {};
    if (s.size() > std::numeric_limits<std::uint32_t>::max()) throw std::length_error("xml string");
    char* p = allocate(s.size());
    std::memcpy(p, s.data(), s.size());
    return Str{p, static_cast<std::uint32_t>(s.size())};
}

Str Arena::store_concat(std::string_view a, std::string_view b) {
    const std::size_t n = a.size() + b.size();
    if (n == 0) return {};
    if (n > std::numeric_limits<std::uint32_t>::max()) throw std::length_error("xml string");
    char* p = allocate(n);
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    if (!b.empty()) std::memcpy(p + a.size(), b.data(), b.size());
    return Str{p, static_cast<std::uint32_t>(n)};
}

void Arena::clear() noexcept {
    // Keep the largest block that is not too big; free the rest.
    std::size_t keep = blocks_.size();
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
        if (blocks_[i].size <= kKeepBytes &&
            (keep == blocks_.size() || blocks_[i].size > blocks_[keep].size)) {
            keep = i;
        }
    }
    if (keep == blocks_.size()) {
        release();
        return;
    }
    if (keep != 0) std::swap(blocks_[0], blocks_[keep]);
    blocks_.resize(1);
    held_ = blocks_[0].size;
    cur_ = blocks_[0].data.get();
    left_ = blocks_[0].size;
    next_size_ = std::min(std::max(blocks_[0].size * 2, kFirstBlock), kMaxBlock);
}

void Arena::release() noexcept {
    blocks_.clear();
    blocks_.shrink_to_fit();
    held_ = 0;
    cur_ = nullptr;
    left_ = 0;
    next_size_ = kFirstBlock;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Handles and iteration

namespace {

// Well-known namespaces are referenced, not copied: their storage is static.
constexpr std::array<std::string_view, 10> kStaticNamespaces = {
    ns::server, ns::client,  ns::streams, ns::dialback, ns::xml, ns::component_accept,
    ns::tls,    ns::sasl,    ns::dialback_feature,     "urn:ietf:params:xml:ns:xmpp-stanzas",
};

bool static_ns(std::string_view s, Str& out) noexcept {
    for (std::string_view k : kStaticNamespaces) {
        if (k.size() == s.size() && k == s) {
            out = Str{k.data(), static_cast<std::uint32_t>(k.size())};
            return true;
        }
    }
    return false;
}

std::uint32_t skip_text(const std::vector<NodeRec>& nodes, std::uint32_t i) noexcept {
    while (i != kNone && nodes[i].is_text) i = nodes[i].next;
    return i;
}

}  // namespace

Node NodeTraits::make(const Document* doc, std::uint32_t i) { return Node(doc, i); }
std::uint32_t NodeTraits::next(const Document* doc, std::uint32_t i) {
    return doc->nodes_[i].next;
}
Element ElementTraits::make(const Document* doc, std::uint32_t i) { return Element(doc, i); }
std::uint32_t ElementTraits::next(const Document* doc, std::uint32_t i) {
    return skip_text(doc->nodes_, doc->nodes_[i].next);
}
Attribute AttributeTraits::make(const Document* doc, std::uint32_t i) {
    const AttrRec& a = doc->attrs_[i];
    return Attribute{a.ns.view(), a.name.view(), a.value.view()};
}
std::uint32_t AttributeTraits::next(const Document* doc, std::uint32_t i) {
    return doc->attrs_[i].next;
}

bool Node::is_text() const noexcept { return doc_ != nullptr && doc_->nodes_[index_].is_text; }

std::string_view Node::text() const noexcept {
    return is_text() ? doc_->nodes_[index_].name.view() : std::string_view();
}

Element Node::element() const noexcept {
    return doc_ != nullptr && !doc_->nodes_[index_].is_text ? Element(doc_, index_) : Element();
}

const NodeRec& Element::rec() const noexcept { return doc_->nodes_[index_]; }

std::string_view Element::name() const noexcept { return doc_ ? rec().name.view() : std::string_view(); }
std::string_view Element::ns() const noexcept { return doc_ ? rec().ns.view() : std::string_view(); }

bool Element::is(std::string_view n, std::string_view namespace_uri) const noexcept {
    return doc_ != nullptr && rec().name.view() == n && rec().ns.view() == namespace_uri;
}

std::optional<std::string_view> Element::attr(std::string_view n,
                                              std::string_view namespace_uri) const noexcept {
    if (!doc_) return std::nullopt;
    for (std::uint32_t i = rec().first_attr; i != kNone; i = doc_->attrs_[i].next) {
        const AttrRec& a = doc_->attrs_[i];
        if (a.name.view() == n && a.ns.view() == namespace_uri) return a.value.view();
    }
    return std::nullopt;
}

AttributeRange Element::attributes() const noexcept {
    using It = SiblingIterator<Attribute, AttributeTraits>;
    if (!doc_) return {It(), It()};
    return {It(doc_, rec().first_attr), It(doc_, kNone)};
}

Element Element::child(std::string_view n, std::string_view namespace_uri) const noexcept {
    for (Element c : elements()) {
        if (c.is(n, namespace_uri)) return c;
    }
    return {};
}

Element Element::child_in(std::string_view namespace_uri) const noexcept {
    for (Element c : elements()) {
        if (c.ns() == namespace_uri) return c;
    }
    return {};
}

Element Element::first_element() const noexcept {
    if (!doc_) return {};
    const std::uint32_t i = skip_text(doc_->nodes_, rec().first_child);
    return i == kNone ? Element() : Element(doc_, i);
}

Element Element::parent() const noexcept {
    if (!doc_ || rec().parent == kNone) return {};
    return Element(doc_, rec().parent);
}

NodeRange Element::children() const noexcept {
    using It = SiblingIterator<Node, NodeTraits>;
    if (!doc_) return {It(), It()};
    return {It(doc_, rec().first_child), It(doc_, kNone)};
}

ElementRange Element::elements() const noexcept {
    using It = SiblingIterator<Element, ElementTraits>;
    if (!doc_) return {It(), It()};
    return {It(doc_, skip_text(doc_->nodes_, rec().first_child)), It(doc_, kNone)};
}

bool Element::has_children() const noexcept { return doc_ && rec().first_child != kNone; }

std::string Element::text() const {
    std::string out;
    for (Node n : children()) {
        if (n.is_text()) out += n.text();
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Document

Document::Document(const Document& other) {
    if (!other.empty()) import(Element(), other.root());
}

Document& Document::operator=(const Document& other) {
    if (this != &other) {
        Document copy(other);
        *this = std::move(copy);
    }
    return *this;
}

Document::Document(Document&& other) noexcept
    : nodes_(std::move(other.nodes_)),
      attrs_(std::move(other.attrs_)),
      arena_(std::move(other.arena_)) {
    other.nodes_.clear();
    other.attrs_.clear();
}

Document& Document::operator=(Document&& other) noexcept {
    if (this != &other) {
        nodes_ = std::move(other.nodes_);
        attrs_ = std::move(other.attrs_);
        arena_ = std::move(other.arena_);
        other.nodes_.clear();
        other.attrs_.clear();
    }
    return *this;
}

Element Document::root() const noexcept { return empty() ? Element() : Element(this, 0); }

std::uint32_t Document::check(Element e) const {
    if (e.doc_ != this || e.index_ >= nodes_.size() || nodes_[e.index_].is_text) {
        throw std::invalid_argument("xml::Document: element handle of another document");
    }
    return e.index_;
}

std::uint32_t Document::new_node(std::uint32_t parent, Str name, Str namespace_uri, bool is_text) {
    if (nodes_.size() >= kNone) throw std::length_error("xml::Document: too many nodes");
    const auto index = static_cast<std::uint32_t>(nodes_.size());
    NodeRec& n = nodes_.emplace_back();
    n.name = name;
    n.ns = namespace_uri;
    n.is_text = is_text;
    n.parent = parent;
    if (parent != kNone) {
        NodeRec& p = nodes_[parent];
        if (p.last_child == kNone) {
            p.first_child = index;
        } else {
            nodes_[p.last_child].next = index;
        }
        p.last_child = index;
    }
    return index;
}

std::uint32_t Document::new_element(std::uint32_t parent, std::string_view name,
                                    std::string_view namespace_uri) {
    Str nsstr;
    if (parent != kNone && nodes_[parent].ns.view() == namespace_uri) {
        nsstr = nodes_[parent].ns;  // children usually share their parent's namespace
    } else if (!static_ns(namespace_uri, nsstr)) {
        nsstr = arena_.store(namespace_uri);
    }
    const Str n = arena_.store(name);
    return new_node(parent, n, nsstr, false);
}

void Document::append_attr(std::uint32_t node, std::string_view namespace_uri,
                           std::string_view name, std::string_view value) {
    if (attrs_.size() >= kNone) throw std::length_error("xml::Document: too many attributes");
    AttrRec a;
    if (!namespace_uri.empty() && !static_ns(namespace_uri, a.ns)) a.ns = arena_.store(namespace_uri);
    a.name = arena_.store(name);
    a.value = arena_.store(value);
    const auto index = static_cast<std::uint32_t>(attrs_.size());
    attrs_.push_back(a);
    NodeRec& n = nodes_[node];
    if (n.last_attr == kNone) {
        n.first_attr = index;
    } else {
        attrs_[n.last_attr].next = index;
    }
    n.last_attr = index;
}

void Document::append_text_node(std::uint32_t parent, std::string_view text) {
    if (text.empty()) return;
    const std::uint32_t last = nodes_[parent].last_child;
    if (last != kNone && nodes_[last].is_text) {
        nodes_[last].name = arena_.store_concat(nodes_[last].name.view(), text);
        return;
    }
    new_node(parent, arena_.store(text), Str{}, true);
}

Element Document::create_root(std::string_view name, std::string_view namespace_uri) {
    // name/ns may point into this document's arena, which clear() recycles.
    const std::string n(name);
    const std::string uri(namespace_uri);
    clear();
    new_element(kNone, n, uri);
    return root();
}

Element Document::add_element(Element parent, std::string_view name,
                              std::string_view namespace_uri) {
    return Element(this, new_element(check(parent), name, namespace_uri));
}

void Document::add_text(Element parent, std::string_view text) {
    append_text_node(check(parent), text);
}

void Document::set_attr(Element e, std::string_view name, std::string_view value,
                        std::string_view namespace_uri) {
    const std::uint32_t node = check(e);
    for (std::uint32_t i = nodes_[node].first_attr; i != kNone; i = attrs_[i].next) {
        if (attrs_[i].name.view() == name && attrs_[i].ns.view() == namespace_uri) {
            attrs_[i].value = arena_.store(value);
            return;
        }
    }
    append_attr(node, namespace_uri, name, value);
}

bool Document::remove_attr(Element e, std::string_view name, std::string_view namespace_uri) {
    const std::uint32_t node = check(e);
    std::uint32_t prev = kNone;
    for (std::uint32_t i = nodes_[node].first_attr; i != kNone; prev = i, i = attrs_[i].next) {
        if (attrs_[i].name.view() != name || attrs_[i].ns.view() != namespace_uri) continue;
        const std::uint32_t next = attrs_[i].next;
        if (prev == kNone) {
            nodes_[node].first_attr = next;
        } else {
            attrs_[prev].next = next;
        }
        if (nodes_[node].last_attr == i) nodes_[node].last_attr = prev;
        return true;
    }
    return false;
}

bool Document::remove(Element e) {
    const std::uint32_t node = check(e);
    const std::uint32_t parent = nodes_[node].parent;
    if (parent == kNone) return false;
    std::uint32_t prev = kNone;
    for (std::uint32_t i = nodes_[parent].first_child; i != kNone; prev = i, i = nodes_[i].next) {
        if (i != node) continue;
        if (prev == kNone) {
            nodes_[parent].first_child = nodes_[i].next;
        } else {
            nodes_[prev].next = nodes_[i].next;
        }
        if (nodes_[parent].last_child == i) nodes_[parent].last_child = prev;
        nodes_[i].next = kNone;
        nodes_[i].parent = kNone;
        return true;
    }
    return false;
}

std::uint32_t Document::import_rec(std::uint32_t parent, const Document& src, std::uint32_t index) {
    const NodeRec& r = src.nodes_[index];
    const std::uint32_t copy = new_element(parent, r.name.view(), r.ns.view());
    for (std::uint32_t a = r.first_attr; a != kNone; a = src.attrs_[a].next) {
        const AttrRec& ar = src.attrs_[a];
        append_attr(copy, ar.ns.view(), ar.name.view(), ar.value.view());
    }
    for (std::uint32_t c = r.first_child; c != kNone; c = src.nodes_[c].next) {
        if (src.nodes_[c].is_text) {
            append_text_node(copy, src.nodes_[c].name.view());
        } else {
            import_rec(copy, src, c);
        }
    }
    return copy;
}

Element Document::import(Element parent, Element src) {
    if (!src) throw std::invalid_argument("xml::Document::import: invalid source");
    if (src.doc_ == this) {
        // Copy out first: the source would otherwise change (or vanish) while being copied.
        Document tmp;
        tmp.import(Element(), src);
        return import(parent, tmp.root());
    }
    if (!parent) {
        clear();
        import_rec(kNone, *src.doc_, src.index_);
        return root();
    }
    return Element(this, import_rec(check(parent), *src.doc_, src.index_));
}

void Document::clear() noexcept {
    constexpr std::size_t kKeepNodes = 256;
    nodes_.clear();
    attrs_.clear();
    if (nodes_.capacity() > kKeepNodes) std::vector<NodeRec>().swap(nodes_);
    if (attrs_.capacity() > kKeepNodes) std::vector<AttrRec>().swap(attrs_);
    arena_.clear();
}

void Document::release() noexcept {
    std::vector<NodeRec>().swap(nodes_);
    std::vector<AttrRec>().swap(attrs_);
    arena_.release();
}

std::size_t Document::memory_usage() const noexcept {
    return nodes_.capacity() * sizeof(NodeRec) + attrs_.capacity() * sizeof(AttrRec) +
           arena_.capacity();
}

bool equal(Element a, Element b) {
    if (!a || !b) return !a && !b;
    if (a.name() != b.name() || a.ns() != b.ns()) return false;
    {
        const AttributeRange ra = a.attributes();
        const AttributeRange rb = b.attributes();
        auto ia = ra.begin();
        auto ib = rb.begin();
        for (; ia != ra.end() && ib != rb.end(); ++ia, ++ib) {
            const Attribute x = *ia;
            const Attribute y = *ib;
            if (x.ns != y.ns || x.name != y.name || x.value != y.value) return false;
        }
        if (ia != ra.end() || ib != rb.end()) return false;
    }
    const NodeRange ca = a.children();
    const NodeRange cb = b.children();
    auto ia = ca.begin();
    auto ib = cb.begin();
    for (; ia != ca.end() && ib != cb.end(); ++ia, ++ib) {
        const Node x = *ia;
        const Node y = *ib;
        if (x.is_text() != y.is_text()) return false;
        if (x.is_text() ? x.text() != y.text() : !equal(x.element(), y.element())) return false;
    }
    return ia == ca.end() && ib == cb.end();
}

// ---------------------------------------------------------------------------------------------
// Serializer

NamespaceScope& NamespaceScope::bind(std::string_view prefix, std::string_view uri) {
    if (prefix.empty() || uri.empty() || prefix == "xml" || prefix == "xmlns" ||
        uri == ns::xml || uri == ns::xmlns) {
        throw std::invalid_argument("xml::NamespaceScope::bind: reserved or empty prefix/uri");
    }
    for (auto& b : bindings_) {
        if (b.first == prefix) {
            b.second = std::string(uri);
            return *this;
        }
    }
    bindings_.emplace_back(std::string(prefix), std::string(uri));
    return *this;
}

std::string_view NamespaceScope::prefix_for(std::string_view uri) const noexcept {
    for (const auto& b : bindings_) {
        if (b.second == uri) return b.first;
    }
    return {};
}

std::string_view NamespaceScope::uri_for(std::string_view prefix) const noexcept {
    for (const auto& b : bindings_) {
        if (b.first == prefix) return b.second;
    }
    return {};
}

NamespaceScope NamespaceScope::server_stream() {
    NamespaceScope scope(ns::server);
    scope.bind("stream", ns::streams).bind("db", ns::dialback);
    return scope;
}

namespace {

bool is_xmlns_name(std::string_view name) noexcept {
    return name == "xmlns" || (name.size() > 6 && name.compare(0, 6, "xmlns:") == 0);
}

class Writer {
public:
    Writer(const NamespaceScope& scope, std::string& out) : scope_(scope), out_(out) {}

    void element(Element e, std::string_view inherited_default) {
        const std::string_view ens = e.ns();
        std::string_view prefix;
        std::string_view child_default = inherited_default;
        bool declare_default = false;
        if (ens == ns::xml) {
            prefix = "xml";  // predeclared; it can never be bound as a default namespace
        } else if (ens != inherited_default) {
            if (!ens.empty()) prefix = scope_.prefix_for(ens);
            if (prefix.empty()) {
                declare_default = true;
                child_default = ens;
            }
        }
        out_ += '<';
        write_qname(prefix, e.name());
        if (declare_default) {
            out_ += " xmlns='";
            append_escaped_attr(out_, ens);
            out_ += '\'';
        }
        attributes(e);
        if (!e.has_children()) {
            out_ += "/>";
            return;
        }
        out_ += '>';
        for (Node n : e.children()) {
            if (n.is_text()) {
                append_escaped_text(out_, n.text());
            } else {
                element(n.element(), child_default);
            }
        }
        out_ += "</";
        write_qname(prefix, e.name());
        out_ += '>';
    }

private:
    void write_qname(std::string_view prefix, std::string_view name) {
        if (!prefix.empty()) {
            out_ += prefix;
            out_ += ':';
        }
        out_ += name;
    }

    void attributes(Element e) {
        // Namespaces of attributes that need a prefix declared on this element (rare).
        std::vector<std::string_view> declared;
        for (const Attribute a : e.attributes()) {
            std::string_view prefix;
            std::size_t generated = 0;
            bool use_generated = false;
            if (a.ns.empty()) {
                if (is_xmlns_name(a.name)) continue;  // never let data declare namespaces
            } else if (a.ns == ns::xml) {
                prefix = "xml";
            } else if (a.ns == ns::xmlns) {
                continue;
            } else {
                prefix = scope_.prefix_for(a.ns);
                if (prefix.empty()) {
                    auto it = std::find(declared.begin(), declared.end(), a.ns);
                    generated = static_cast<std::size_t>(it - declared.begin());
                    if (it == declared.end()) declared.push_back(a.ns);
                    use_generated = true;
                }
            }
            out_ += ' ';
            if (use_generated) {
                write_generated_prefix(generated);
                out_ += ':';
            } else if (!prefix.empty()) {
                out_ += prefix;
                out_ += ':';
            }
            out_ += a.name;
            out_ += "='";
            append_escaped_attr(out_, a.value);
            out_ += '\'';
        }
        for (std::size_t i = 0; i < declared.size(); ++i) {
            out_ += " xmlns:";
            write_generated_prefix(i);
            out_ += "='";
            append_escaped_attr(out_, declared[i]);
            out_ += '\'';
        }
    }

    // Generated prefixes are ns<N>, skipping any the scope binds (those stay valid here).
    void write_generated_prefix(std::size_t index) {
        std::size_t n = 0;
        std::string name;
        for (std::size_t seen = 0;; ++n) {
            name = "ns" + std::to_string(n);
            if (!scope_.uri_for(name).empty()) continue;
            if (seen == index) break;
            ++seen;
        }
        out_ += name;
    }

    const NamespaceScope& scope_;
    std::string& out_;
};

}  // namespace

void serialize(Element e, const NamespaceScope& scope, std::string& out) {
    if (!e) return;
    Writer(scope, out).element(e, scope.default_ns());
}

std::string to_string(Element e, const NamespaceScope& scope) {
    std::string out;
    serialize(e, scope, out);
    return out;
}

std::string to_string(Element e) { return to_string(e, NamespaceScope()); }

}  // namespace s2s::xml
