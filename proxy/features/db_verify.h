// The authoritative server's role in dialback (XEP-0220 §2.3), the same on every public stream
// that a remote server asks on (inbound streams, and outbound links the remote verifies over):
// whether a key is one this process, or a replica sharing s2s.shared, issued.
#pragma once

#include <cstdint>
#include <string>

#include "common/xml/xml.h"
#include "proxy/xmpp/context.h"

namespace s2s {

// The answer to a db:verify request: valid only for a key this process (or a replica sharing
// s2s.shared) issued. Logged and counted; `conn_id` names the stream.
[[nodiscard]] std::string answer_db_verify(const ProxyContext& ctx, uint64_t conn_id, const xml::Element& verify);

}  // namespace s2s
