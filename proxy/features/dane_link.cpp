#include "proxy/features/dane_link.h"

#include "proxy/features/starttls.h"
#include "proxy/ops/metrics.h"

namespace s2s {

void DaneLink::reset(const Candidate& c) {
    tlsa_ = c.dane == DaneState::Usable ? c.tlsa : nullptr;
    host_ = c.host;
    matched_ = false;
}

bool DaneLink::verify(const tls::Session& session, const std::string& remote, const LogContext& log, std::string* why) {
    if (!tlsa_) return true;
    const mbedtls_x509_crt* chain = session.peer_certificate();
    tls::DaneCheck c =
        chain ? tls::dane_verify(*tlsa_, *chain, {remote, host_}) : tls::DaneCheck{false, "no certificate"};
    metrics().dane.add(c.matched ? "match" : "mismatch");
    if (c.matched) {
        matched_ = true;
        S2S_LOG_INFO(log, "dane", "the certificate of %s (at %s) matches its TLSA records: %s", remote.c_str(),
                     host_.c_str(), c.detail.c_str());
        return true;
    }
    *why = "the certificate of " + remote + " (at " + host_ + ") does not match its DANE TLSA records: " + c.detail;
    S2S_LOG_WARNING(log, "dane", "%s", why->c_str());
    return false;
}

bool DaneLink::secure_enough(const ProxyContext& ctx, const tls::Session* tls, const std::string& remote,
                             const LogContext& log, std::string* why) const {
    if (tlsa_ && !tls) {
        *why = remote + " publishes DANE TLSA records for " + host_ +
               ", but the stream is not encrypted (it offered no TLS)";
        S2S_LOG_NOTICE(log, "refused", "%s", why->c_str());
        return false;
    }
    if (matched_) return true;
    return starttls::secure_enough(ctx, tls, remote, log, why);
}

}  // namespace s2s
