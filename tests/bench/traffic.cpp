#include "tests/bench/traffic.h"

namespace s2s::bench {

namespace {

constexpr std::size_t kDigits = 20;

void write_digits(char* at, uint64_t v) {
    for (std::size_t i = kDigits; i-- > 0;) {
        at[i] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
}

}  // namespace

IdKind parse_stanza_id(std::string_view id, uint64_t* value) {
    if (id.size() != kDigits + 1 || (id[0] != 't' && id[0] != 'm')) return IdKind::Other;
    uint64_t v = 0;
    for (std::size_t i = 1; i < id.size(); ++i) {
        char c = id[i];
        if (c < '0' || c > '9') return IdKind::Other;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    *value = v;
    return id[0] == 't' ? IdKind::SendTime : IdKind::Marker;
}

StanzaTemplate::StanzaTemplate(const std::string& from_jid, const std::string& to_jid, std::size_t size) {
    std::string head = "<message from='" + from_jid + "' to='" + to_jid + "' type='headline' id='t";
    stamp_at_ = head.size();
    head.append(kDigits, '0');
    head += "'><body>";
    const std::string tail = "</body></message>";
    std::size_t filler = size > head.size() + tail.size() ? size - head.size() - tail.size() : 1;
    static const char kWords[] = "federation traffic between servers, measured on loopback. ";
    std::string body;
    while (body.size() < filler) body += kWords;
    body.resize(filler);
    if (body.back() == ' ') body.back() = '.';
    text_ = head + body + tail;
}

void StanzaTemplate::append(std::string& out, uint64_t send_ns) const {
    std::size_t at = out.size();
    out += text_;
    write_digits(&out[at + stamp_at_], send_ns);
}

void append_marker(std::string& out, const std::string& from_jid, const std::string& to_domain, uint64_t value) {
    out += "<iq type='get' from='" + from_jid + "' to='" + to_domain + "' id='m";
    std::size_t at = out.size();
    out.append(kDigits, '0');
    write_digits(&out[at], value);
    out += "'><ping xmlns='urn:xmpp:ping'/></iq>";
}

}  // namespace s2s::bench
