#include "proxy/features/db_verify.h"

#include "common/base/log.h"
#include "proxy/ops/metrics.h"
#include "proxy/xmpp/xmpp.h"

namespace s2s {

// Authoritative server role (XEP-0220 §2.3): was this key issued by us (or a replica)?
std::string answer_db_verify(const ProxyContext& ctx, uint64_t conn_id, const xml::Element& e) {
    std::string asker = attr_or_empty(e, "from"), ours = attr_or_empty(e, "to"), sid = attr_or_empty(e, "id");
    std::string ours_norm = domain_of(ours);
    bool valid = !ours_norm.empty() && ctx.is_local(ours_norm) && !sid.empty() &&
                 ctx.keys.verify(domain_of(asker), ours_norm, sid, e.text());
    S2S_LOG_INFO(LogContext{conn_id, ours_norm, domain_of(asker)}, "db-verify", "answered %s",
                 valid ? "valid" : "invalid");
    metrics().dialback.add(valid ? "authoritative:valid" : "authoritative:invalid");
    return dialback_answer("verify", ours, asker, sid, valid ? "valid" : "invalid");
}

}  // namespace s2s
