#include "proxy/resolve/tlsa_lookup.h"

#include <netinet/in.h>

#include <memory>

#include "proxy/ops/metrics.h"

namespace s2s {

namespace {

// The dane_total outcome a lookup counts (Usable counts later, as match or mismatch).
const char* outcome_label(TlsaVerdict::Kind k) noexcept {
    switch (k) {
        case TlsaVerdict::Kind::Insecure: return "insecure";
        case TlsaVerdict::Kind::NoRecords: return "none";
        case TlsaVerdict::Kind::Bogus: return "bogus";
        case TlsaVerdict::Kind::Usable: return nullptr;
    }
    return nullptr;
}

}  // namespace

std::string tlsa_name(const std::string& host, int port) {
    return "_" + std::to_string(port) + "._tcp." + host;
}

std::string tlsa_name(const Candidate& c) {
    int port = c.addr.ss_family == AF_INET ? ntohs(reinterpret_cast<const sockaddr_in&>(c.addr).sin_port)
                                           : ntohs(reinterpret_cast<const sockaddr_in6&>(c.addr).sin6_port);
    return tlsa_name(c.host, port);
}

TlsaVerdict judge_tlsa(const DnsAnswer& a) {
    using Kind = TlsaVerdict::Kind;
    TlsaVerdict v;
    switch (a.status) {
        case DnsStatus::Ok:
            if (!a.authenticated) {
                v.why = "TLSA records without DNSSEC authentication (no AD bit): not used";
                return v;
            }
            v.usable = tls::usable_tlsa(a.tlsa);
            v.kind = v.usable.empty() ? Kind::NoRecords : Kind::Usable;
            v.why = v.usable.empty()
                        ? std::to_string(a.tlsa.size()) + " TLSA record(s), none usable (DANE-TA or DANE-EE)"
                        : std::to_string(v.usable.size()) + " usable TLSA record(s)";
            return v;
        case DnsStatus::NoData:
        case DnsStatus::NoSuchDomain:
            v.kind = a.authenticated ? Kind::NoRecords : Kind::Insecure;
            v.why = a.authenticated ? "no TLSA record (authenticated denial)" : "no TLSA record, not authenticated";
            return v;
        default:
            v.kind = Kind::Bogus;
            v.why = "TLSA lookup failed (DNSSEC-bogus or unreachable): " + a.error;
            return v;
    }
}

std::vector<Candidate> apply_tlsa(std::vector<Candidate> candidates, const std::map<std::string, TlsaVerdict>& verdicts,
                                  const LogContext& log, std::string* error) {
    using Kind = TlsaVerdict::Kind;
    static const TlsaVerdict kInsecure{Kind::Insecure, {},
                                       "the SRV or address answers were not authenticated (no AD bit)"};
    std::vector<Candidate> out;
    std::map<std::string, std::shared_ptr<const std::vector<tls::TlsaRecord>>> seen;  // one copy per server
    std::string bogus;
    for (auto& c : candidates) {
        std::string name = tlsa_name(c);
        auto it = verdicts.find(name);
        const TlsaVerdict& v = it == verdicts.end() ? kInsecure : it->second;
        auto [records, first] = seen.emplace(name, nullptr);
        if (first) {
            if (const char* label = outcome_label(v.kind)) metrics().dane.add(label);
            if (v.kind == Kind::Bogus)
                S2S_LOG_WARNING(log, "dane", "%s: %s; not connecting to %s", name.c_str(), v.why.c_str(),
                                c.host.c_str());
            else
                S2S_LOG_INFO(log, "dane", "%s: %s", name.c_str(), v.why.c_str());
        }
        switch (v.kind) {
            case Kind::Bogus: bogus = v.why; continue;
            case Kind::Insecure: c.dane = DaneState::Insecure; break;
            case Kind::NoRecords: c.dane = DaneState::NoRecords; break;
            case Kind::Usable:
                c.dane = DaneState::Usable;
                if (!records->second) records->second = std::make_shared<const std::vector<tls::TlsaRecord>>(v.usable);
                c.tlsa = records->second;
                break;
        }
        out.push_back(std::move(c));
    }
    if (out.empty() && !bogus.empty())
        *error = "not connecting to the XMPP servers of " + std::string(log.remote) + ": " + bogus;
    return out;
}

}  // namespace s2s
