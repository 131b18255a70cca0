#include "tests/unit/support/dns_packets.h"

namespace s2s::test::dns {

void put16(Bytes& b, uint16_t v) {
    b.push_back(static_cast<uint8_t>(v >> 8));
    b.push_back(static_cast<uint8_t>(v));
}

void put(Bytes& b, std::initializer_list<int> bytes) {
    for (int x : bytes) b.push_back(static_cast<uint8_t>(x));
}

Bytes wire_name(const std::string& name) {
    Bytes b;
    size_t start = 0;
    while (start < name.size()) {
        size_t dot = name.find('.', start);
        if (dot == std::string::npos) dot = name.size();
        b.push_back(static_cast<uint8_t>(dot - start));
        b.insert(b.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
        start = dot + 1;
    }
    b.push_back(0);
    return b;
}

Bytes question(const std::string& name, uint16_t type, uint16_t cls) {
    Bytes b = wire_name(name);
    put16(b, type);
    put16(b, cls);
    return b;
}

Bytes query(uint16_t id, const std::string& name, uint16_t type, uint16_t cls, const Bytes& extra,
            uint16_t arcount) {
    Bytes b;
    put16(b, id);
    put(b, {0x01, 0x00});  // RD
    put16(b, 1);
    put16(b, 0);
    put16(b, 0);
    put16(b, arcount);
    Bytes qs = question(name, type, cls);
    b.insert(b.end(), qs.begin(), qs.end());
    b.insert(b.end(), extra.begin(), extra.end());
    return b;
}

Bytes opt(uint16_t payload, uint8_t version, bool dnssec_ok) {
    Bytes b{0};
    put16(b, 41);
    put16(b, payload);
    put(b, {0, version, dnssec_ok ? 0x80 : 0, 0});
    put16(b, 0);
    return b;
}

Bytes header(uint16_t id, int rcode, uint16_t qd, uint16_t an, uint16_t ar) {
    Bytes b;
    put16(b, id);
    put(b, {0x85, 0x80 | (rcode & 0x0F)});
    put16(b, qd);
    put16(b, an);
    put16(b, 0);
    put16(b, ar);
    return b;
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

Bytes srv_record(uint16_t port) {
    Bytes b;
    put(b, {0xC0, 0x0C, 0x00, 33, 0x00, 0x01, 0, 0, 0, 60, 0x00, 17, 0, 0, 0, 0});
    put16(b, port);
    put(b, {9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0});
    return b;
}

Bytes a_record() { return Bytes{0xC0, 0x0C, 0x00, 1, 0x00, 0x01, 0, 0, 0, 60, 0x00, 4, 127, 0, 0, 1}; }

Bytes aaaa_record() {
    Bytes b{0xC0, 0x0C, 0x00, 28, 0x00, 0x01, 0, 0, 0, 60, 0x00, 16};
    for (int i = 0; i < 15; ++i) b.push_back(0);
    b.push_back(1);
    return b;
}

Bytes srv_record_own_target(uint16_t port) {
    Bytes b;
    put(b, {0xC0, 0x0C, 0x00, 33, 0x00, 0x01, 0, 0, 0, 60, 0x00, 27, 0, 0, 0, 0});
    put16(b, port);
    return cat({b, wire_name("s2s-proxy.localhost")});
}

Bytes own_target_a_record() {
    return cat({wire_name("s2s-proxy.localhost"), Bytes{0x00, 1, 0x00, 0x01, 0, 0, 0, 60, 0x00, 4, 127, 0, 0, 1}});
}

Bytes own_target_aaaa_record() {
    Bytes b{0x00, 28, 0x00, 0x01, 0, 0, 0, 60, 0x00, 16};
    for (int i = 0; i < 15; ++i) b.push_back(0);
    b.push_back(1);
    return cat({wire_name("s2s-proxy.localhost"), b});
}

Bytes opt_answer(uint8_t ext_rcode, bool dnssec_ok) {
    Bytes b{0, 0x00, 41, 0x04, 0xD0, ext_rcode, 0, static_cast<uint8_t>(dnssec_ok ? 0x80 : 0), 0, 0, 0};
    return b;
}

std::string hex(const Bytes& b) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < b.size(); ++i) {
        if (i) s += ' ';
        s += digits[b[i] >> 4];
        s += digits[b[i] & 15];
    }
    return s;
}

DnsResponderRules rules(bool ipv4, bool ipv6) {
    DnsResponderRules r;
    r.port = kLocalPort;
    r.ipv4 = ipv4;
    r.ipv6 = ipv6;
    r.set_own_domains({"c.test", "Other.Example."});
    return r;
}

}  // namespace s2s::test::dns
