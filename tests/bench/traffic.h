// What the generator sends: 300-byte headline messages whose id carries the send time, and
// markers (XMPP pings) that count the stanzas sent before them.
//
//   <message from='bench@gen.test/load' to='sink@local.test' type='headline'
//            id='t00000001234567890123'><body>...</body></message>        (300 bytes)
//   <iq type='get' from='bench@gen.test/load' to='local.test' id='m00000000000000040000'>
//            <ping xmlns='urn:xmpp:ping'/></iq>
//
// Headlines to a bare JID are dropped silently by a server when nobody is online (RFC 6121
// §8.5.2.1.1), so a real server (Prosody) does the work of receiving them without answering; its
// answer to a marker tells that everything before it has been processed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace s2s::bench {

inline constexpr std::size_t kStanzaSize = 300;

enum class IdKind { SendTime, Marker, Other };

// Reads an id written by StanzaTemplate / append_marker.
[[nodiscard]] IdKind parse_stanza_id(std::string_view id, uint64_t* value);

class StanzaTemplate {
public:
    StanzaTemplate(const std::string& from_jid, const std::string& to_jid, std::size_t size = kStanzaSize);
    // Appends one stanza stamped with `send_ns` (uv_hrtime()).
    void append(std::string& out, uint64_t send_ns) const;
    [[nodiscard]] std::size_t size() const noexcept { return text_.size(); }

private:
    std::string text_;
    std::size_t stamp_at_ = 0;  // offset of the 20 digits
};

// Appends a marker ping from `from_jid` to the domain `to_domain` carrying `value`.
void append_marker(std::string& out, const std::string& from_jid, const std::string& to_domain, uint64_t value);

}  // namespace s2s::bench
