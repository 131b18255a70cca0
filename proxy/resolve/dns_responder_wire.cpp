#include "proxy/resolve/dns_responder_wire.h"

#include <cstdio>
#include <cstring>
#include <string_view>

// This file uses nothing from proxy/ but its own header, so that the fuzz target (built from
// tests/fuzz/*.cpp and common/ only) can compile it in.

namespace s2s {
namespace {

// RFC 1035 §3.2.2, RFC 2782, RFC 3596, RFC 6891.
constexpr uint16_t kTypeA = 1, kTypeAAAA = 28, kTypeSRV = 33, kTypeOPT = 41, kTypeANY = 255;
constexpr uint16_t kClassIN = 1, kClassANY = 255;
constexpr int kNoError = 0, kFormErr = 1, kNxDomain = 3, kNotImp = 4, kRefused = 5, kBadVers = 16;
constexpr size_t kHeader = 12;
constexpr size_t kMaxName = 255;         // wire bytes of a name, the final 0 included
constexpr size_t kMaxLabels = 128;       // 255 bytes hold at most 127 labels
constexpr uint16_t kEdnsPayload = 1232;  // what we say we take (every answer is < 512 anyway)
constexpr uint8_t kLocalhostWire[] = {9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0};
// The SRV target when forwarding (dns_responder_wire.h says why this name).
constexpr uint8_t kOwnTargetWire[] = {9, 's', '2', 's', '-', 'p', 'r', 'o', 'x', 'y',
                                      9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0};

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

char lower(uint8_t c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c); }

struct Label {
    size_t off = 0;
    size_t len = 0;
};

struct Question {
    Label labels[kMaxLabels];
    size_t count = 0;
    uint16_t qtype = 0, qclass = 0;
};

// The question's name: labels only, no compression (there is nothing before it to point at).
bool read_qname(const uint8_t* q, size_t len, size_t* pos, Question* out) {
    size_t p = *pos, wire = 1;
    for (;;) {
        if (p >= len) return false;
        const uint8_t l = q[p];
        if (l == 0) break;
        if (l & 0xC0) return false;  // a pointer, or the obsolete extended label types
        wire += 1 + l;
        if (wire > kMaxName || l > len - p - 1 || out->count == kMaxLabels) return false;
        out->labels[out->count++] = Label{p + 1, l};
        p += 1 + l;
    }
    *pos = p + 1;
    return true;
}

// Skips the owner name of a resource record: labels, ending in 0 or in a compression pointer
// (not followed: only its bytes are checked). *root: the name is the root.
bool skip_name(const uint8_t* q, size_t len, size_t* pos, bool* root) {
    size_t p = *pos, wire = 1;
    *root = true;
    for (;;) {
        if (p >= len) return false;
        const uint8_t l = q[p];
        if (l == 0) {
            *pos = p + 1;
            return true;
        }
        *root = false;
        if ((l & 0xC0) == 0xC0) {
            if (len - p < 2) return false;
            *pos = p + 2;
            return true;
        }
        if (l & 0xC0) return false;
        wire += 1 + l;
        if (wire > kMaxName || l > len - p - 1) return false;
        p += 1 + l;
    }
}

bool label_is(const uint8_t* q, const Label& l, std::string_view word) {
    if (l.len != word.size()) return false;
    for (size_t i = 0; i < l.len; ++i)
        if (lower(q[l.off + i]) != word[i]) return false;
    return true;
}

// Labels [from, count) spell `domain` (lowercase labels).
bool name_is(const uint8_t* q, const Question& qu, size_t from, const std::vector<std::string>& domain) {
    if (qu.count - from != domain.size()) return false;
    for (size_t i = 0; i < domain.size(); ++i)
        if (!label_is(q, qu.labels[from + i], domain[i])) return false;
    return true;
}

// Presentation form, every byte outside [A-Za-z0-9_-] as \DDD (RFC 1035 §5.1): safe to log.
std::string presentation(const uint8_t* q, const Question& qu) {
    if (qu.count == 0) return ".";
    std::string out;
    for (size_t i = 0; i < qu.count; ++i) {
        if (i) out += '.';
        for (size_t j = 0; j < qu.labels[i].len; ++j) {
            const uint8_t c = q[qu.labels[i].off + j];
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
                out += static_cast<char>(c);
            } else {
                char buf[5];
                std::snprintf(buf, sizeof buf, "\\%03u", c);
                out += buf;
            }
        }
    }
    return out;
}

struct Writer {
    uint8_t* p;
    size_t cap;
    size_t n = 0;
    bool ok = true;

    void bytes(const uint8_t* b, size_t k) {
        if (!ok || k > cap - n) {
            ok = false;
            return;
        }
        if (k) std::memcpy(p + n, b, k);
        n += k;
    }
    void u8(uint8_t v) { bytes(&v, 1); }
    void u16(uint16_t v) {
        const uint8_t b[2] = {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
        bytes(b, 2);
    }
    void u32(uint32_t v) {
        u16(static_cast<uint16_t>(v >> 16));
        u16(static_cast<uint16_t>(v));
    }
};

// Header flags of an answer: QR, the query's opcode, AA, the query's RD, RA.
void put_header(Writer& w, const uint8_t* q, int rcode, uint16_t qd, uint16_t an, uint16_t ar) {
    const uint8_t opcode = (q[2] >> 3) & 0x0F;
    w.bytes(q, 2);  // ID
    w.u8(static_cast<uint8_t>(0x80 | opcode << 3 | 0x04 | (q[2] & 0x01)));
    w.u8(static_cast<uint8_t>(0x80 | (rcode & 0x0F)));
    w.u16(qd);
    w.u16(an);
    w.u16(0);
    w.u16(ar);
}

}  // namespace

void DnsResponderRules::set_own_domains(const std::vector<std::string>& domains) {
    own.clear();
    for (const auto& d : domains) {
        std::vector<std::string> labels(1);
        for (char c : d) {
            if (c == '.') labels.emplace_back();
            else labels.back() += lower(static_cast<uint8_t>(c));
        }
        if (!labels.empty() && labels.back().empty()) labels.pop_back();  // "example.org."
        if (!labels.empty()) own.push_back(std::move(labels));
    }
}

DnsReply dns_respond(const DnsResponderRules& rules, const uint8_t* q, size_t len, uint8_t* out, size_t cap,
                     bool describe) {
    DnsReply r;
    if (!q || len < kHeader) {
        r.why = "short";
        return r;
    }
    if (q[2] & 0x80) {  // QR: a response; answering it could start a loop
        r.why = "response";
        return r;
    }
    Writer w{out, out ? cap : 0};
    auto header_only = [&](int rcode, const char* why) {
        put_header(w, q, rcode, 0, 0, 0);
        r.rcode = rcode;
        r.why = why;
        r.size = w.ok ? w.n : 0;
        return r;
    };
    if (((q[2] >> 3) & 0x0F) != 0) return header_only(kNotImp, "opcode");
    if (get16(q + 4) != 1 || get16(q + 6) != 0 || get16(q + 8) != 0) return header_only(kFormErr, "malformed");

    Question qu;
    size_t pos = kHeader;
    if (!read_qname(q, len, &pos, &qu) || len - pos < 4) return header_only(kFormErr, "malformed");
    qu.qtype = get16(q + pos);
    qu.qclass = get16(q + pos + 2);
    pos += 4;
    const size_t question_end = pos;

    // The additional section: nothing but at most one OPT (RFC 6891 §6.1.1) means anything to us,
    // but every record must be whole and nothing may follow the last one.
    bool edns = false, dnssec_ok = false;
    uint8_t edns_version = 0;
    for (uint16_t i = 0, ar = get16(q + 10); i < ar; ++i) {
        bool root = false;
        if (!skip_name(q, len, &pos, &root) || len - pos < 10) return header_only(kFormErr, "malformed");
        const uint16_t type = get16(q + pos);
        const uint16_t rdlength = get16(q + pos + 8);
        if (rdlength > len - pos - 10) return header_only(kFormErr, "malformed");
        if (type == kTypeOPT) {
            if (!root || edns) return header_only(kFormErr, "malformed");
            edns = true;
            edns_version = q[pos + 5];
            dnssec_ok = (q[pos + 6] & 0x80) != 0;
        }
        pos += 10 + rdlength;
    }
    if (pos != len) return header_only(kFormErr, "malformed");

    r.qtype = qu.qtype;
    r.edns = edns;
    if (describe) r.qname = presentation(q, qu);

    // The decision.
    const bool in_class = qu.qclass == kClassIN || qu.qclass == kClassANY;
    const bool any = qu.qtype == kTypeANY;
    const size_t n = qu.count;
    const bool xmpp_name = n >= 3 && label_is(q, qu.labels[1], "_tcp") &&
                           (label_is(q, qu.labels[0], "_xmpp-server") || label_is(q, qu.labels[0], "_xmpps-server"));
    const bool direct_tls = xmpp_name && qu.labels[0].len == sizeof "_xmpps-server" - 1;
    bool own = false;
    for (size_t i = 0; xmpp_name && i < rules.own.size(); ++i) own = own || name_is(q, qu, 2, rules.own[i]);
    const bool target = rules.forward ? n == 2 && label_is(q, qu.labels[0], "s2s-proxy") &&
                                            label_is(q, qu.labels[1], "localhost")
                                      : n == 1 && label_is(q, qu.labels[0], "localhost");
    if (rules.forward && !(in_class && ((xmpp_name && !own && (direct_tls || qu.qtype == kTypeSRV || any)) || target))) {
        r.forward = true;
        r.why = own ? "own-domain" : "forward";
        return r;
    }

    int rcode = kNoError;
    bool srv = false, a = false, aaaa = false;
    if (edns && edns_version > 0) {
        rcode = kBadVers;
        r.why = "edns-version";
    } else if (!in_class) {
        rcode = kRefused;
        r.why = "class";
    } else if (xmpp_name) {
        if (own) {
            rcode = kNxDomain;
            r.why = "own-domain";
        } else if (direct_tls) {
            r.why = "no-direct-tls";
        } else {
            srv = qu.qtype == kTypeSRV || any;
            r.why = srv ? "srv" : "srv-no-data";
        }
    } else if (target) {
        a = rules.ipv4 && (qu.qtype == kTypeA || any);
        aaaa = rules.ipv6 && (qu.qtype == kTypeAAAA || any);
        r.why = a || aaaa ? "localhost" : "localhost-no-data";
    } else {
        rcode = kNxDomain;
        r.why = "unknown";
    }

    // With forwarding, an SRV answer carries its target's addresses in the additional section.
    const bool glue = srv && rules.forward;
    const int extra = glue ? rules.ipv4 + rules.ipv6 : 0;
    const uint16_t answers = static_cast<uint16_t>(srv + a + aaaa);
    put_header(w, q, rcode, 1, answers, static_cast<uint16_t>(extra + (edns ? 1 : 0)));
    w.bytes(q + kHeader, question_end - kHeader);  // the question as asked (case kept: RFC 1035 §7.3)
    auto record = [&](uint16_t type, uint16_t rdlength, bool owner_is_target) {
        if (owner_is_target) w.bytes(kOwnTargetWire, sizeof kOwnTargetWire);
        else w.u16(static_cast<uint16_t>(0xC000 | kHeader));  // the question's name
        w.u16(type);
        w.u16(kClassIN);
        w.u32(rules.ttl);
        w.u16(rdlength);
    };
    static const uint8_t kLoop4[4] = {127, 0, 0, 1};
    static const uint8_t kLoop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    if (srv) {
        const uint8_t* name = rules.forward ? kOwnTargetWire : kLocalhostWire;
        const size_t name_len = rules.forward ? sizeof kOwnTargetWire : sizeof kLocalhostWire;
        record(kTypeSRV, static_cast<uint16_t>(6 + name_len), false);
        w.u16(0);  // priority
        w.u16(0);  // weight
        w.u16(rules.port);
        w.bytes(name, name_len);  // never compressed (RFC 2782)
    }
    if (a) {
        record(kTypeA, 4, false);
        w.bytes(kLoop4, 4);
    }
    if (aaaa) {
        record(kTypeAAAA, 16, false);
        w.bytes(kLoop6, 16);
    }
    if (glue && rules.ipv4) {
        record(kTypeA, 4, true);
        w.bytes(kLoop4, 4);
    }
    if (glue && rules.ipv6) {
        record(kTypeAAAA, 16, true);
        w.bytes(kLoop6, 16);
    }
    if (edns) {
        w.u8(0);  // root
        w.u16(kTypeOPT);
        w.u16(kEdnsPayload);
        w.u8(static_cast<uint8_t>(rcode >> 4));  // extended RCODE
        w.u8(0);                                 // version
        w.u8(dnssec_ok ? 0x80 : 0);              // DO copied (RFC 3225 §3)
        w.u8(0);
        w.u16(0);  // no options
    }
    r.rcode = rcode;
    r.answers = answers;
    r.additional = extra;
    r.size = w.ok ? w.n : 0;
    return r;
}

bool dns_same_question(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen) noexcept {
    if (!a || !b || alen < kHeader || blen < kHeader || get16(a + 4) != 1 || get16(b + 4) != 1) return false;
    Question qa, qb;
    size_t pa = kHeader, pb = kHeader;
    if (!read_qname(a, alen, &pa, &qa) || !read_qname(b, blen, &pb, &qb)) return false;
    if (alen - pa < 4 || blen - pb < 4 || qa.count != qb.count) return false;
    if (get16(a + pa) != get16(b + pb) || get16(a + pa + 2) != get16(b + pb + 2)) return false;
    for (size_t i = 0; i < qa.count; ++i) {
        if (qa.labels[i].len != qb.labels[i].len) return false;
        for (size_t j = 0; j < qa.labels[i].len; ++j)
            if (lower(a[qa.labels[i].off + j]) != lower(b[qb.labels[i].off + j])) return false;
    }
    return true;
}

const char* dns_type_name(uint16_t t) noexcept {
    switch (t) {
        case kTypeA: return "A";
        case kTypeAAAA: return "AAAA";
        case kTypeSRV: return "SRV";
        case kTypeANY: return "ANY";
        default: return nullptr;
    }
}

const char* dns_rcode_name(int rcode) noexcept {
    switch (rcode) {
        case kNoError: return "NOERROR";
        case kFormErr: return "FORMERR";
        case kNxDomain: return "NXDOMAIN";
        case kNotImp: return "NOTIMP";
        case kRefused: return "REFUSED";
        case kBadVers: return "BADVERS";
        default: return "?";
    }
}

}  // namespace s2s
