#include "proxy/app/certificate_expiry.h"

#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

#include <algorithm>
#include <cstring>

#include "proxy/local/local_tls.h"
#include "proxy/app/tls_setup.h"

namespace s2s {
namespace {

class Collector {
public:
    void add(const std::string& key, const std::string& path) {
        if (path.empty()) return;
        auto same = [&key](const PresentedCertificate& p) { return p.key == key; };
        if (std::find_if(out.begin(), out.end(), same) == out.end()) out.push_back({key, path});
    }
    // A context made from `t` (keys under `prefix`) presents t.certfile, else s2s.certfile.
    void own_or_shared(const Config& c, const std::string& prefix, const TlsOptions& t) {
        if (!t.certfile.empty()) add(prefix + ".certfile", t.certfile);
        else add("s2s.certfile", c.certfile);
    }
    void domains(const Config& c) {
        for (size_t i = 0; i < c.domain_certs.size(); ++i)
            add("s2s.domain_certfile." + std::to_string(i) + ".certfile", c.domain_certs[i].certfile);
    }
    std::vector<PresentedCertificate> out;
};

// The subject's CN, else the whole subject name ("O=x, C=y").
std::string subject_of(const mbedtls_x509_crt& crt) {
    for (const mbedtls_x509_name* n = &crt.subject; n != nullptr; n = n->next) {
        if (n->oid.p != nullptr && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0)
            return std::string(reinterpret_cast<const char*>(n->val.p), n->val.len);
    }
    char buf[512];
    int n = mbedtls_x509_dn_gets(buf, sizeof buf, &crt.subject);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Days from 1970-01-01 to a civil date (proleptic Gregorian).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

}  // namespace

std::vector<PresentedCertificate> presented_certificates(const Config& c) {
    Collector got;
    for (size_t i = 0; i < c.listen_s2s.size(); ++i) {
        if (!inbound_tls_mode(c, c.listen_s2s[i]).uses_tls()) continue;
        got.own_or_shared(c, "listen.s2s." + std::to_string(i) + ".tls", c.listen_s2s[i].tls);
        got.domains(c);  // chosen by SNI
    }
    if (outgoing_tls_needed(c)) {
        got.own_or_shared(c, "s2s.outgoing.tls", c.outgoing.tls);
        got.domains(c);  // the client certificate of links from that domain
    }
    for (size_t i = 0; i < c.listen_local.size(); ++i) {
        if (!local_tls_mode(c.listen_local[i]).uses_tls()) continue;
        got.own_or_shared(c, "listen.local." + std::to_string(i) + ".tls", c.listen_local[i].tls);
    }
    if (local_client_tls_mode(c).uses_tls()) got.own_or_shared(c, "local.tls", c.local_tls);
    return std::move(got.out);
}

int64_t unix_time(const mbedtls_x509_time& t) {
    return days_from_civil(t.year, t.mon, t.day) * 86400 + int64_t{t.hour} * 3600 + int64_t{t.min} * 60 + t.sec;
}

std::vector<CertificateExpiry> read_certificate_expiry(const std::vector<PresentedCertificate>& files,
                                                       std::vector<std::string>* errors) {
    std::vector<CertificateExpiry> out;
    for (const PresentedCertificate& f : files) {
        mbedtls_x509_crt crt;
        mbedtls_x509_crt_init(&crt);
        int rc = mbedtls_x509_crt_parse_file(&crt, f.path.c_str());
        // A positive rc: some PEM blocks were not certificates (the key beside them is fine).
        if (rc >= 0 && crt.version != 0) {
            out.push_back({f.key, subject_of(crt), unix_time(crt.valid_to)});
        } else if (errors != nullptr) {
            errors->push_back(f.key + ": cannot read a certificate from '" + f.path + "'");
        }
        mbedtls_x509_crt_free(&crt);
    }
    return out;
}

}  // namespace s2s
