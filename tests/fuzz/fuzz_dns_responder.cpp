// libFuzzer target for the DNS responder's packet logic (dns_respond, proxy/resolve/dns_responder_wire).
// For any datagram:
//  - never a read or write out of bounds (ASan), whatever the output capacity;
//  - an answer is at most 512 bytes, has the query's ID, QR set, and the query's opcode;
//  - it parses back (an independent reader below): counts match the records, nothing left over,
//    and when it carries a question that question is the query's, byte for byte;
//  - records in the answer section only with NOERROR, and every one is SRV/A/AAAA class IN TTL 60;
//    with forwarding (local.dns_upstream) the SRV target is s2s-proxy.localhost and its A/AAAA
//    follow in the additional section, before the OPT record;
//  - a query handed to the upstreams (DnsReply::forward) has nothing written, and only a
//    well-formed QUERY (not a response, opcode 0) is ever handed on;
//  - the same datagram gives the same answer, with or without `describe`;
//  - an answer fed back in is never answered (QR set): two responders cannot loop;
//  - dns_same_question (what the forwarder matches upstream answers with) holds between a query
//    and the answer written to it, is symmetric, and never reads out of bounds on either input.
//
// The fuzz build compiles tests/fuzz/*.cpp with common/ only, so the packet logic's source comes
// in here (it needs nothing else from proxy/).
#include "proxy/resolve/dns_responder_wire.cpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// Skips a name (labels; a pointer ends it). false: runs past the end or is malformed.
bool skip(const uint8_t* p, size_t n, size_t* pos) {
    size_t i = *pos;
    for (int guard = 0; guard < 200; ++guard) {
        if (i >= n) return false;
        const uint8_t l = p[i];
        if (l == 0) {
            *pos = i + 1;
            return true;
        }
        if ((l & 0xC0) == 0xC0) {
            if (i + 2 > n) return false;
            *pos = i + 2;
            return true;
        }
        if (l & 0xC0) return false;
        if (i + 1 + l > n) return false;
        i += 1 + l;
    }
    return false;
}

s2s::DnsResponderRules rules_from(uint8_t b) {
    s2s::DnsResponderRules r;
    r.port = static_cast<uint16_t>(5269 + b);
    r.ipv4 = (b & 1) != 0;
    r.ipv6 = (b & 2) != 0;
    r.forward = (b & 4) != 0;
    r.set_own_domains({"c.test", "example.org"});
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const s2s::DnsResponderRules rules = rules_from(size ? data[size - 1] : 0);
    uint8_t out[s2s::kDnsResponderMaxAnswer];
    const s2s::DnsReply r = s2s::dns_respond(rules, data, size, out, sizeof out);
    require(r.size <= sizeof out);

    // Deterministic, and `describe` changes nothing but the description.
    uint8_t again[s2s::kDnsResponderMaxAnswer];
    const s2s::DnsReply d = s2s::dns_respond(rules, data, size, again, sizeof again, true);
    require(d.size == r.size && d.rcode == r.rcode && d.answers == r.answers);
    require(std::memcmp(out, again, r.size) == 0);

    // A smaller output buffer on the heap (ASan sees one byte too far): no answer rather than a cut one.
    if (r.size > 0) {
        const size_t cap = size ? data[0] % r.size : 0;
        std::vector<uint8_t> small(cap);
        require(s2s::dns_respond(rules, data, size, small.data(), cap).size == 0);
    }

    // The question matcher: symmetric, and reads within both inputs (the halves of the datagram).
    const size_t half = size / 2;
    std::vector<uint8_t> first(data, data + half), second(data + half, data + size);
    require(s2s::dns_same_question(first.data(), first.size(), second.data(), second.size()) ==
            s2s::dns_same_question(second.data(), second.size(), first.data(), first.size()));

    if (r.forward) {
        require(rules.forward && r.size == 0 && r.rcode == -1);
        require(size >= 12 && (data[2] & 0x80) == 0 && ((data[2] >> 3) & 0x0F) == 0);
        require(s2s::dns_same_question(data, size, data, size));
        return 0;
    }
    if (r.size == 0) {
        require(size < 12 || (data[2] & 0x80) != 0);  // too short, or a response
        return 0;
    }

    // The answer parses back.
    require(r.size >= 12 && size >= 12);
    require(out[0] == data[0] && out[1] == data[1]);
    require((out[2] & 0x80) != 0);                        // QR
    require(((out[2] >> 3) & 0x0F) == ((data[2] >> 3) & 0x0F));  // opcode
    require((out[2] & 0x01) == (data[2] & 0x01));          // RD
    const int rcode = out[3] & 0x0F;
    const uint16_t qd = get16(out + 4), an = get16(out + 6), ns = get16(out + 8), ar = get16(out + 10);
    require(qd <= 1 && ns == 0 && ar <= 3);
    require(an == r.answers);
    require(an == 0 || rcode == 0);
    require(ar == r.additional + (r.edns ? 1 : 0));
    require(r.additional == 0 || (rules.forward && an == 1));
    size_t pos = 12;
    if (qd == 1) {
        require(skip(out, r.size, &pos) && pos + 4 <= r.size);
        pos += 4;
        require(pos <= size && std::memcmp(out + 12, data + 12, pos - 12) == 0);  // the question echoed
        require(s2s::dns_same_question(data, size, out, r.size) || rcode == 1);
    }
    static const uint8_t kTarget[] = {9, 's', '2', 's', '-', 'p', 'r', 'o', 'x', 'y',
                                      9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0};
    for (uint16_t i = 0; i < an + r.additional; ++i) {
        const bool extra = i >= an;
        if (extra) {  // the SRV target's address, its name written out
            require(pos + sizeof kTarget <= r.size && std::memcmp(out + pos, kTarget, sizeof kTarget) == 0);
            pos += sizeof kTarget;
        } else {
            require(skip(out, r.size, &pos));
        }
        require(pos + 10 <= r.size);
        const uint16_t type = get16(out + pos), cls = get16(out + pos + 2), rdlength = get16(out + pos + 8);
        require(extra ? (type == 1 || type == 28) : (type == 33 || type == 1 || type == 28));
        require(cls == 1 && get16(out + pos + 4) == 0 && get16(out + pos + 6) == 60);
        require(pos + 10 + rdlength <= r.size);
        if (type == 33) {
            require(get16(out + pos + 14) == rules.port);
            if (rules.forward)
                require(rdlength == 6 + sizeof kTarget && std::memcmp(out + pos + 16, kTarget, sizeof kTarget) == 0);
            else
                require(rdlength == 17);
        }
        if (type == 1) require(rdlength == 4 && rules.ipv4);
        if (type == 28) require(rdlength == 16 && rules.ipv6);
        pos += 10 + rdlength;
    }
    if (r.edns) {
        require(pos + 11 <= r.size && out[pos] == 0 && get16(out + pos + 1) == 41 && get16(out + pos + 9) == 0);
        pos += 11;
    }
    require(pos == r.size);

    // Fed back in, an answer is never answered.
    uint8_t echo[s2s::kDnsResponderMaxAnswer];
    require(s2s::dns_respond(rules, out, r.size, echo, sizeof echo).size == 0);
    return 0;
}
