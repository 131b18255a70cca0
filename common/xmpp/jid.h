// XMPP addresses (JIDs, RFC 7622): parsing, validation, normalisation, comparison.
//
// Split rules (RFC 7622 §3.2): the first '/' starts the resourcepart; an '@' before it ends the
// localpart. Each part present must be 1..1023 bytes of valid UTF-8.
//
// What "normalised" means here (libidn2 for domains, no PRECIS tables):
//  - localpart: must not contain " & ' / : < > @, spaces or controls. ASCII letters and the simple
//    one-to-one Latin-1/Greek/Cyrillic capitals are lowercased (see fold_case in jid.cpp); anything
//    else is kept byte for byte (no NFC, no full Unicode case mapping, no PRECIS class checks).
//  - domainpart: the canonical form is the one DNS and certificates use: IDNA, UTS 46
//    non-transitional processing (libidn2) to A-labels, then lowercase and one trailing '.'
//    stripped; forwarded stanzas carry it too (see canonicalize_address in proxy/xmpp/xmpp.h). So "ａ.test" (fullwidth a), "A.TEST." and "a.test" are one domain, and so are
//    "Bücher.example" and "xn--bcher-kva.example". The result must be an IPv4 dotted quad, an IPv6
//    literal in brackets (canonicalised: lowercase, compressed), or a name whose labels are 1..63
//    bytes of letters, digits and inner '-'. A name UTS 46 refuses (a disallowed code point such
//    as a bidirectional override, Punycode that does not decode, an "xn--" label that is no valid
//    A-label) is invalid (domain_idna), and so is a non-ASCII spelling of an IP literal.
//    All-ASCII names without an "xn--" label (nearly every name on the wire) are checked without
//    libidn2 and without allocating.
//  - resourcepart: any UTF-8 except controls; kept exactly (compared byte for byte).
//
// Errors are returned (nullopt + JidError), never thrown. Only the owning `Jid`,
// `normalize_domain` and `with_canonical_domain` allocate (one std::string each), so
// std::bad_alloc is the one exception that can leave them; everything on JidView and the domain
// checks is noexcept, and heap-free except inside libidn2 for a name that needs IDNA (a failed
// allocation there makes the name invalid).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace s2s {

/// Longest localpart, domainpart or resourcepart in bytes (RFC 7622 §3.2-3.4).
inline constexpr std::size_t kJidMaxPartBytes = 1023;

/// Why a string is not a valid JID (or domain). `ok` only as the "no error" value.
enum class JidError : std::uint8_t {
    ok,                  ///< valid
    local_empty,         ///< "@example.com": an '@' with nothing before it
    local_too_long,      ///< localpart over 1023 bytes
    local_bad_utf8,      ///< localpart is not valid UTF-8
    local_forbidden,     ///< localpart has one of " & ' / : < > @, a space or a control
    domain_empty,        ///< no domainpart ("juliet@", "/res", "." ...)
    domain_too_long,     ///< domainpart over 1023 bytes (after the trailing dot is stripped)
    domain_bad_utf8,     ///< domainpart is not valid UTF-8
    domain_empty_label,  ///< "a..b", ".a", or more than one trailing dot
    domain_label_too_long,  ///< an ASCII label over 63 bytes (a U-label too long for one is domain_idna)
    domain_bad_char,     ///< a character not allowed in a host name ('_', '@', space, ...)
    domain_bad_hyphen,   ///< a label starting or ending with '-'
    domain_bad_ip,       ///< bad IPv6 literal, all-numeric name that is not a dotted quad, or an IP
                         ///< literal spelled with non-ASCII characters
    domain_idna,         ///< refused by IDNA (UTS 46): disallowed code point, bad Punycode or A-label
    resource_empty,      ///< "example.com/": a '/' with nothing after it
    resource_too_long,   ///< resourcepart over 1023 bytes
    resource_bad_utf8,   ///< resourcepart is not valid UTF-8
    resource_forbidden,  ///< resourcepart has a control character
};

/// Short stable name of an error for logs and tests ("domain_empty_label").
[[nodiscard]] const char* jid_error_name(JidError e) noexcept;

/// The normalised form of a domainpart (see the file comment), or nullopt if it is not valid.
[[nodiscard]] std::optional<std::string> normalize_domain(std::string_view domain);

/// As normalize_domain, but only the verdict; allocation-free. `why` (if given) gets the reason.
[[nodiscard]] bool is_valid_domain(std::string_view domain, JidError* why = nullptr) noexcept;

/// True if both are valid domains with the same normalised form ("A.test." == "a.test" == "ａ.test").
/// Allocation-free: the routing code can compare a stanza's domain to a configured one.
[[nodiscard]] bool domains_equal(std::string_view a, std::string_view b) noexcept;

/// A validated JID whose parts are views into the parsed string (which must outlive it).
/// Parts are as written (not normalised: "A.Test." stays so); comparison normalises.
/// Cheap to copy; parse() neither allocates nor throws: the per-stanza hot path type.
class JidView {
public:
    /// Parses and validates; nullopt if `s` is not a valid JID. `why` (if given) gets the reason.
    [[nodiscard]] static std::optional<JidView> parse(std::string_view s, JidError* why = nullptr) noexcept;

    [[nodiscard]] std::string_view local() const noexcept { return local_; }        ///< "" if absent
    [[nodiscard]] std::string_view domain() const noexcept { return domain_; }      ///< never ""
    [[nodiscard]] std::string_view resource() const noexcept { return resource_; }  ///< "" if absent
    [[nodiscard]] bool has_local() const noexcept { return !local_.empty(); }
    [[nodiscard]] bool has_resource() const noexcept { return !resource_.empty(); }
    /// The same JID without its resource.
    [[nodiscard]] JidView bare() const noexcept { return JidView(local_, domain_, {}); }

    /// Equality of the normalised forms (RFC 7622 comparison, within the limits above).
    [[nodiscard]] bool equals(const JidView& other) const noexcept;
    friend bool operator==(const JidView& a, const JidView& b) noexcept { return a.equals(b); }
    friend bool operator!=(const JidView& a, const JidView& b) noexcept { return !a.equals(b); }

private:
    friend class Jid;
    JidView(std::string_view l, std::string_view d, std::string_view r) noexcept
        : local_(l), domain_(d), resource_(r) {}
    std::string_view local_;
    std::string_view domain_;
    std::string_view resource_;
};

/// The text of `v` with its domainpart in canonical form and its local and resource parts as
/// written, or nullopt when the domainpart already is canonical (the common case: nothing is
/// allocated). Used to forward a stanza with the addresses that were checked.
[[nodiscard]] std::optional<std::string> with_canonical_domain(const JidView& v);

/// An owning, normalised JID: one string "local@domain/resource" plus part lengths.
/// Equal JIDs have equal to_string(), so it works as a map key (operator<, std::hash).
class Jid {
public:
    /// Parses, validates and normalises; nullopt if `s` is not a valid JID.
    [[nodiscard]] static std::optional<Jid> parse(std::string_view s, JidError* why = nullptr);
    /// The normalised owning copy of a view (always succeeds: the view is valid).
    [[nodiscard]] static Jid from_view(const JidView& v);
    /// Builds from separate parts (local/resource may be ""); nullopt if any part is invalid.
    [[nodiscard]] static std::optional<Jid> from_parts(std::string_view local, std::string_view domain,
                                                      std::string_view resource, JidError* why = nullptr);

    [[nodiscard]] std::string_view local() const noexcept { return {str_.data(), local_len_}; }
    [[nodiscard]] std::string_view domain() const noexcept {
        return {str_.data() + domain_off(), domain_len_};
    }
    [[nodiscard]] std::string_view resource() const noexcept {
        std::size_t off = domain_off() + domain_len_;
        return off < str_.size() ? std::string_view(str_).substr(off + 1) : std::string_view();
    }
    [[nodiscard]] bool has_local() const noexcept { return local_len_ != 0; }
    [[nodiscard]] bool has_resource() const noexcept { return domain_off() + domain_len_ < str_.size(); }

    /// "local@domain" (or "domain"): a view into this Jid, no allocation.
    [[nodiscard]] std::string_view bare_string() const noexcept {
        return std::string_view(str_).substr(0, domain_off() + domain_len_);
    }
    /// The same JID without its resource, as an owning Jid.
    [[nodiscard]] Jid bare() const;
    /// The full normalised text "local@domain/resource".
    [[nodiscard]] const std::string& to_string() const noexcept { return str_; }
    /// A view of this Jid's parts (valid while this Jid is alive and unchanged).
    [[nodiscard]] JidView view() const noexcept;

    friend bool operator==(const Jid& a, const Jid& b) noexcept { return a.str_ == b.str_; }
    friend bool operator!=(const Jid& a, const Jid& b) noexcept { return a.str_ != b.str_; }
    friend bool operator<(const Jid& a, const Jid& b) noexcept { return a.str_ < b.str_; }

private:
    Jid() = default;
    // Assembles "local@domain/resource" from a valid localpart (case-folded here), an already
    // normalised domain and a valid resource ("" = absent).
    static Jid build(std::string_view local, std::string_view normalised_domain, std::string_view resource);
    [[nodiscard]] std::size_t domain_off() const noexcept { return local_len_ ? local_len_ + 1u : 0u; }
    std::string str_;
    std::uint16_t local_len_ = 0;
    std::uint16_t domain_len_ = 0;
};

}  // namespace s2s

/// Hash of the normalised text, so `std::unordered_map<s2s::Jid, ...>` works.
template <>
struct std::hash<s2s::Jid> {
    std::size_t operator()(const s2s::Jid& j) const noexcept {
        return std::hash<std::string>()(j.to_string());
    }
};
