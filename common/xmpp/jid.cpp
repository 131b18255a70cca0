// JID parsing and normalisation; see jid.h for the rules and what is deliberately left out.
#include "common/xmpp/jid.h"

#include <arpa/inet.h>
#include <idn2.h>

#include <cstring>

#include "common/base/utf8.h"

namespace s2s {
namespace {

constexpr std::size_t kMaxLabelBytes = 63;

// Appends the UTF-8 encoding of cp (any valid scalar value) at out[n]; returns the new length.
std::size_t encode_utf8(char32_t cp, char* out, std::size_t n) noexcept {
    if (cp < 0x80) {
        out[n++] = static_cast<char>(cp);
    } else if (cp < 0x800) {
        out[n++] = static_cast<char>(0xC0 | (cp >> 6));
        out[n++] = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[n++] = static_cast<char>(0xE0 | (cp >> 12));
        out[n++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out[n++] = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out[n++] = static_cast<char>(0xF0 | (cp >> 18));
        out[n++] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out[n++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out[n++] = static_cast<char>(0x80 | (cp & 0x3F));
    }
    return n;
}

// The lowercasing we can do without Unicode tables: ASCII, Latin-1 capitals, basic Greek and
// Cyrillic capitals. Each maps one code point to one of the same UTF-8 length, so normalised
// parts are never longer than the input. Everything else is returned unchanged.
char32_t fold_case(char32_t cp) noexcept {
    if (cp >= 'A' && cp <= 'Z') return cp + 0x20;
    if (cp < 0xC0) return cp;
    if (cp <= 0xDE && cp != 0xD7) return cp + 0x20;              // À..Þ except ×
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 0x20;  // Α..Ω
    if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;             // А..Я
    if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;             // Ѐ..Џ
    return cp;
}

bool is_control(char32_t cp) noexcept { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

// Unicode space separators (Zs) plus the line and paragraph separators.
bool is_space(char32_t cp) noexcept {
    return cp == 0x20 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// ASCII character classes, so the common all-ASCII JID is checked with one lookup per byte.
enum : std::uint8_t {
    kLocalOk = 1,     // allowed in a localpart: printable, not space or one of "&'/:<>@
    kResourceOk = 2,  // allowed in a resourcepart: printable or space
    kHostOk = 4,      // letter, digit or '-'
    kDigit = 8,
};

struct AsciiTable {
    std::uint8_t cls[128] = {};
    char lower[128] = {};
    constexpr AsciiTable() {
        for (int c = 0; c < 128; ++c) {
            lower[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 0x20 : c);
            if (c >= 0x20 && c < 0x7F) cls[c] |= kResourceOk;
            if (c > 0x20 && c < 0x7F) cls[c] |= kLocalOk;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-') cls[c] |= kHostOk;
            if (c >= '0' && c <= '9') cls[c] |= kHostOk | kDigit;
        }
        for (char c : {'"', '&', '\'', '/', ':', '<', '>', '@'}) cls[static_cast<int>(c)] &= ~kLocalOk;
    }
};
constexpr AsciiTable kAscii;

// What a localpart or a resourcepart may hold, and the errors that say why not.
struct PartRules {
    std::uint8_t ascii_ok;   // kLocalOk or kResourceOk
    bool spaces_forbidden;   // non-ASCII spaces too (a localpart)
    JidError empty, too_long, forbidden, bad_utf8;
};
constexpr PartRules kLocalRules{kLocalOk, true, JidError::local_empty, JidError::local_too_long,
                                JidError::local_forbidden, JidError::local_bad_utf8};
constexpr PartRules kResourceRules{kResourceOk, false, JidError::resource_empty, JidError::resource_too_long,
                                   JidError::resource_forbidden, JidError::resource_bad_utf8};

JidError check_part(std::string_view s, const PartRules& rules) noexcept {
    if (s.empty()) return rules.empty;
    if (s.size() > kJidMaxPartBytes) return rules.too_long;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            if ((kAscii.cls[c] & rules.ascii_ok) == 0) return rules.forbidden;
            ++i;
            continue;
        }
        char32_t cp;
        const std::size_t n = decode_utf8(s, i, cp);
        if (n == 0) return rules.bad_utf8;
        i += n;
        if (is_control(cp) || (rules.spaces_forbidden && is_space(cp))) return rules.forbidden;
    }
    return JidError::ok;
}

JidError check_local(std::string_view s) noexcept { return check_part(s, kLocalRules); }

JidError check_resource(std::string_view s) noexcept { return check_part(s, kResourceRules); }

// Writes the case-folded form of a valid localpart to out (same length as s); returns the length.
std::size_t fold_local(std::string_view s, char* out) noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out[n++] = kAscii.lower[c];
            ++i;
            continue;
        }
        char32_t cp = 0;
        i += decode_utf8(s, i, cp);
        n = encode_utf8(fold_case(cp), out, n);
    }
    return n;
}

// Dotted quad with decimal octets 0..255 and no leading zeros ("010" could mean octal).
bool is_ipv4(std::string_view s) noexcept {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        std::size_t start = i;
        unsigned value = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 3) {
            value = value * 10 + static_cast<unsigned>(s[i] - '0');
            ++i;
        }
        const std::size_t len = i - start;
        if (len == 0 || value > 255 || (len > 1 && s[start] == '0')) return false;
        if (++parts == 4) return i == s.size();
        if (i >= s.size() || s[i] != '.') return false;
        ++i;
    }
}

// "[v6]" -> canonical "[v6]" (inet_ntop: lowercase, zeros compressed) written to out.
JidError normalize_ipv6(std::string_view s, char* out, std::size_t& out_len) noexcept {
    if (s.size() < 3 || s.back() != ']') return JidError::domain_bad_ip;
    const std::string_view inner = s.substr(1, s.size() - 2);
    char text[INET6_ADDRSTRLEN];
    if (inner.size() >= sizeof text) return JidError::domain_bad_ip;
    for (char c : inner) {
        const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                        c == ':' || c == '.';
        if (!ok) return JidError::domain_bad_ip;  // also rejects zone ids ("%eth0") and IPvFuture
    }
    std::memcpy(text, inner.data(), inner.size());
    text[inner.size()] = '\0';
    unsigned char addr[16];
    if (inet_pton(AF_INET6, text, addr) != 1) return JidError::domain_bad_ip;
    if (inet_ntop(AF_INET6, addr, text, sizeof text) == nullptr) return JidError::domain_bad_ip;
    const std::size_t n = std::strlen(text);
    out[0] = '[';
    std::memcpy(out + 1, text, n);
    out[n + 1] = ']';
    out_len = n + 2;
    return JidError::ok;
}

// Whether a label starting at s[0] says it is an A-label ("xn--" in any case), whose Punycode must
// then decode to a valid U-label.
bool is_a_label_prefix(std::string_view s) noexcept {
    return s.size() >= 4 && (s[0] | 0x20) == 'x' && (s[1] | 0x20) == 'n' && s[2] == '-' && s[3] == '-';
}

// A name of ASCII letters, digits and hyphens (or an IP literal): one trailing '.' is stripped,
// letters are lowercased, and each label must be 1..63 bytes without a leading or trailing '-'.
// Writes the result to `out` (capacity kJidMaxPartBytes: it never grows, and an IPv6 literal is at
// most 47 bytes). With `idna` given, a non-ASCII byte or an "xn--" label stops the check there and
// sets *idna: the name needs UTS 46 processing (one pass over the common all-ASCII name).
JidError normalize_ascii_name(std::string_view s, char* out, std::size_t& out_len, bool* idna = nullptr) noexcept {
    out_len = 0;
    if (!s.empty() && s.back() == '.') s.remove_suffix(1);  // RFC 7622 §3.2: one trailing dot
    if (s.empty()) return JidError::domain_empty;
    if (s.size() > kJidMaxPartBytes) return JidError::domain_too_long;
    if (s.front() == '[') return normalize_ipv6(s, out, out_len);

    std::size_t n = 0;
    std::size_t label_start = 0;  // offset in out
    bool label_digits = true;     // the current label is all digits
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == '.') {
            const std::size_t bytes = n - label_start;
            if (bytes == 0) return JidError::domain_empty_label;
            if (bytes > kMaxLabelBytes) return JidError::domain_label_too_long;
            if (out[label_start] == '-' || out[n - 1] == '-') return JidError::domain_bad_hyphen;
            if (i == s.size()) break;
            out[n++] = '.';
            label_start = n, label_digits = true;
            continue;
        }
        const auto c = static_cast<unsigned char>(s[i]);
        if (idna != nullptr && (c >= 0x80 || (n == label_start && is_a_label_prefix(s.substr(i))))) {
            *idna = true;
            return JidError::ok;
        }
        const std::uint8_t cls = c < 0x80 ? kAscii.cls[c] : 0;
        if ((cls & kHostOk) == 0) return JidError::domain_bad_char;
        label_digits = label_digits && (cls & kDigit) != 0;
        out[n++] = kAscii.lower[c];
    }
    // A numeric last label cannot be a top-level domain: only a real IPv4 address may look so.
    if (label_digits && !is_ipv4(std::string_view(out, n))) return JidError::domain_bad_ip;
    out_len = n;
    return JidError::ok;
}

// UTS 46 (non-transitional, NFC) with libidn2, then the ASCII rules above on its A-label form.
// libidn2 is asked without IDN2_USE_STD3_ASCII_RULES: libidn2 2.3.3 with it drops '_', ' ' or
// a fullwidth '@' from a name instead of refusing it ("a_b" became "ab"); without it they come
// through as ASCII and the host-name rules refuse them.
JidError normalize_idna(std::string_view s, char* out, std::size_t& out_len) noexcept {
    out_len = 0;
    if (s.size() > kJidMaxPartBytes) return JidError::domain_too_long;
    // What reaches libidn2 is one C string of valid UTF-8 without controls or spaces.
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp;
        const std::size_t len = decode_utf8(s, i, cp);
        if (len == 0) return JidError::domain_bad_utf8;
        if (is_control(cp) || is_space(cp)) return JidError::domain_bad_char;
        i += len;
    }
    char in[kJidMaxPartBytes + 1];
    std::memcpy(in, s.data(), s.size());
    in[s.size()] = '\0';
    char* mapped = nullptr;
    if (idn2_to_ascii_8z(in, &mapped, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) != IDN2_OK) {
        idn2_free(mapped);
        return JidError::domain_idna;
    }
    const JidError e = normalize_ascii_name(mapped, out, out_len);
    idn2_free(mapped);
    if (e != JidError::ok) return e;
    // An IP literal is written in ASCII (RFC 7622 §3.2): a name that only maps to one is not one.
    const std::string_view result(out, out_len);
    const std::string_view last = result.substr(result.rfind('.') + 1);
    if (result.front() == '[' || last.find_first_not_of("0123456789") == std::string_view::npos) {
        out_len = 0;
        return JidError::domain_bad_ip;
    }
    return JidError::ok;
}

// The core of every domain function: validates `s` and writes its canonical form to `out`
// (capacity kJidMaxPartBytes). All-ASCII names without A-labels, the common case, never reach
// libidn2 and allocate nothing.
JidError normalize_domain_into(std::string_view s, char* out, std::size_t& out_len) noexcept {
    bool idna = false;
    const JidError e = normalize_ascii_name(s, out, out_len, &idna);
    return idna ? normalize_idna(s, out, out_len) : e;
}

}  // namespace

const char* jid_error_name(JidError e) noexcept {
    switch (e) {
        case JidError::ok: return "ok";
        case JidError::local_empty: return "local_empty";
        case JidError::local_too_long: return "local_too_long";
        case JidError::local_bad_utf8: return "local_bad_utf8";
        case JidError::local_forbidden: return "local_forbidden";
        case JidError::domain_empty: return "domain_empty";
        case JidError::domain_too_long: return "domain_too_long";
        case JidError::domain_bad_utf8: return "domain_bad_utf8";
        case JidError::domain_empty_label: return "domain_empty_label";
        case JidError::domain_label_too_long: return "domain_label_too_long";
        case JidError::domain_bad_char: return "domain_bad_char";
        case JidError::domain_bad_hyphen: return "domain_bad_hyphen";
        case JidError::domain_bad_ip: return "domain_bad_ip";
        case JidError::domain_idna: return "domain_idna";
        case JidError::resource_empty: return "resource_empty";
        case JidError::resource_too_long: return "resource_too_long";
        case JidError::resource_bad_utf8: return "resource_bad_utf8";
        case JidError::resource_forbidden: return "resource_forbidden";
    }
    return "unknown";
}

std::optional<std::string> normalize_domain(std::string_view domain) {
    char buf[kJidMaxPartBytes];
    std::size_t n = 0;
    if (normalize_domain_into(domain, buf, n) != JidError::ok) return std::nullopt;
    return std::string(buf, n);
}

bool is_valid_domain(std::string_view domain, JidError* why) noexcept {
    char buf[kJidMaxPartBytes];
    std::size_t n = 0;
    const JidError e = normalize_domain_into(domain, buf, n);
    if (why != nullptr) *why = e;
    return e == JidError::ok;
}

bool domains_equal(std::string_view a, std::string_view b) noexcept {
    char ba[kJidMaxPartBytes];
    char bb[kJidMaxPartBytes];
    std::size_t na = 0;
    std::size_t nb = 0;
    if (normalize_domain_into(a, ba, na) != JidError::ok) return false;
    if (a == b) return true;
    if (normalize_domain_into(b, bb, nb) != JidError::ok) return false;
    return na == nb && std::memcmp(ba, bb, na) == 0;
}

namespace {

// The parts of a JID string per RFC 7622 §3.2; `at`/`slash` say whether the separators exist.
struct SplitJid {
    std::string_view local, domain, resource;
    bool at = false;
    bool slash = false;
};

SplitJid split_jid(std::string_view s) noexcept {
    SplitJid p;
    std::string_view head = s;
    const std::size_t slash = s.find('/');
    if (slash != std::string_view::npos) {
        head = s.substr(0, slash);
        p.resource = s.substr(slash + 1);
        p.slash = true;
    }
    p.domain = head;
    const std::size_t at = head.find('@');
    if (at != std::string_view::npos) {
        p.local = head.substr(0, at);
        p.domain = head.substr(at + 1);
        p.at = true;
    }
    return p;
}

// Validates the parts in a fixed order (local, domain, resource), leaving the normalised
// domain in dom/dom_len.
JidError check_parts(const SplitJid& p, char* dom, std::size_t& dom_len) noexcept {
    JidError e = p.at ? check_local(p.local) : JidError::ok;
    if (e == JidError::ok) e = normalize_domain_into(p.domain, dom, dom_len);
    if (e == JidError::ok && p.slash) e = check_resource(p.resource);
    return e;
}

}  // namespace

std::optional<JidView> JidView::parse(std::string_view s, JidError* why) noexcept {
    const SplitJid p = split_jid(s);
    char dom[kJidMaxPartBytes];
    std::size_t dom_len = 0;
    const JidError e = check_parts(p, dom, dom_len);
    if (why != nullptr) *why = e;
    if (e != JidError::ok) return std::nullopt;
    return JidView(p.local, p.domain, p.resource);
}

bool JidView::equals(const JidView& other) const noexcept {
    if (resource_ != other.resource_ || local_.size() != other.local_.size()) return false;
    if (local_ != other.local_) {
        // Case folding keeps lengths, so equal folded forms have equal raw lengths (checked above).
        char a[kJidMaxPartBytes];
        char b[kJidMaxPartBytes];
        const std::size_t na = fold_local(local_, a);
        const std::size_t nb = fold_local(other.local_, b);
        if (na != nb || std::memcmp(a, b, na) != 0) return false;
    }
    return domains_equal(domain_, other.domain_);
}

namespace {

// Whether a valid domainpart is already in canonical form, without normalising it: lowercase
// letters, digits, '-' and inner '.', no trailing dot, no A-label (which would need checking).
// One pass over the bytes: the per-stanza test for nearly every address.
bool plainly_canonical(std::string_view d) noexcept {
    if (d.empty() || d.back() == '.') return false;
    bool label_start = true;
    for (std::size_t i = 0; i < d.size(); ++i) {
        const char c = d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
        if (label_start && c == 'x' && is_a_label_prefix(d.substr(i))) return false;
        label_start = c == '.';
    }
    return true;
}

}  // namespace

std::optional<std::string> with_canonical_domain(const JidView& v) {
    if (plainly_canonical(v.domain())) return std::nullopt;
    char dom[kJidMaxPartBytes];
    std::size_t n = 0;
    if (normalize_domain_into(v.domain(), dom, n) != JidError::ok) return std::nullopt;  // cannot: v is valid
    const std::string_view canonical(dom, n);
    if (canonical == v.domain()) return std::nullopt;
    std::string s;
    s.reserve(v.local().size() + n + v.resource().size() + 2);
    if (v.has_local()) s.append(v.local()).append(1, '@');
    s.append(canonical);
    if (v.has_resource()) s.append(1, '/').append(v.resource());
    return s;
}

Jid Jid::build(std::string_view local, std::string_view normalised_domain, std::string_view resource) {
    Jid j;
    j.str_.resize(local.size() + normalised_domain.size() + resource.size() + 2);
    char* out = j.str_.data();
    std::size_t n = 0;
    if (!local.empty()) {
        n = fold_local(local, out);
        j.local_len_ = static_cast<std::uint16_t>(n);
        out[n++] = '@';
    }
    std::memcpy(out + n, normalised_domain.data(), normalised_domain.size());
    n += normalised_domain.size();
    j.domain_len_ = static_cast<std::uint16_t>(normalised_domain.size());
    if (!resource.empty()) {
        out[n++] = '/';
        std::memcpy(out + n, resource.data(), resource.size());
        n += resource.size();
    }
    j.str_.resize(n);
    return j;
}

std::optional<Jid> Jid::parse(std::string_view s, JidError* why) {
    const SplitJid p = split_jid(s);
    char dom[kJidMaxPartBytes];
    std::size_t dom_len = 0;
    const JidError e = check_parts(p, dom, dom_len);
    if (why != nullptr) *why = e;
    if (e != JidError::ok) return std::nullopt;
    return build(p.local, std::string_view(dom, dom_len), p.resource);
}

Jid Jid::from_view(const JidView& v) {
    char dom[kJidMaxPartBytes];
    std::size_t dom_len = 0;
    (void)normalize_domain_into(v.domain(), dom, dom_len);  // cannot fail: the view was validated
    return build(v.local(), std::string_view(dom, dom_len), v.resource());
}

std::optional<Jid> Jid::from_parts(std::string_view local, std::string_view domain,
                                   std::string_view resource, JidError* why) {
    SplitJid p;
    p.local = local, p.at = !local.empty();
    p.domain = domain;
    p.resource = resource, p.slash = !resource.empty();
    char dom[kJidMaxPartBytes];
    std::size_t dom_len = 0;
    const JidError e = check_parts(p, dom, dom_len);
    if (why != nullptr) *why = e;
    if (e != JidError::ok) return std::nullopt;
    return build(local, std::string_view(dom, dom_len), resource);
}

Jid Jid::bare() const {
    Jid b;
    b.str_.assign(bare_string());
    b.local_len_ = local_len_;
    b.domain_len_ = domain_len_;
    return b;
}

JidView Jid::view() const noexcept { return JidView(local(), domain(), resource()); }

}  // namespace s2s
