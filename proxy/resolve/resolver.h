// Where a remote domain's XMPP servers are: the connection candidates for an outbound link.
//
// An `s2s.outgoing.address` entry answers for its host without DNS. Other domains go to DNS
// (SRV for _xmpps-server and _xmpp-server, then A/AAAA) through the DNS resolver.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/tls/dane.h"
#include "common/base/event_loop.h"

namespace s2s {

// What DANE (s2s.outgoing.dane) found for a candidate's server (proxy/resolve/tlsa_lookup).
enum class DaneState : uint8_t {
    Off,        // not looked up (DANE off, or an s2s.outgoing.address entry)
    Insecure,   // the SRV, address or TLSA answer was not authenticated (no AD): as without DANE
    NoRecords,  // authenticated: no TLSA record, or none usable: as without DANE
    Usable,     // usable TLSA records: TLS is mandatory and the certificate must match them
};

// One address to try, in order.
struct Candidate {
    sockaddr_storage addr{};
    bool direct_tls = false;   // XEP-0368: TLS from the first byte
    std::string host;          // the SRV target or the domain, for logs
    bool configured = false;   // from s2s.outgoing.address (the operator's word), not from DNS
    DaneState dane = DaneState::Off;
    std::shared_ptr<const std::vector<tls::TlsaRecord>> tlsa;  // Usable: the usable records
    [[nodiscard]] std::string describe() const;  // "host (ip port N)"
};

class Resolver {
public:
    // Candidates in order, or an empty list and a sentence saying why.
    using Done = std::function<void(std::vector<Candidate> candidates, const std::string& error)>;
    virtual ~Resolver() = default;
    // `done` runs exactly once, later (never inside this call), unless cancelled.
    virtual uint64_t resolve(const std::string& domain, Done done) = 0;
    virtual void cancel(uint64_t token) = 0;
};

// Answers from s2s.outgoing.address only; other domains get an error. DnsResolver asks it first.
class StaticResolver : public Resolver {
public:
    StaticResolver(EventLoop& loop, const Config& config);
    uint64_t resolve(const std::string& domain, Done done) override;
    void cancel(uint64_t token) override;

    // The candidates for `domain` from the config, if it has an override.
    [[nodiscard]] std::vector<Candidate> lookup(const std::string& domain) const;

private:
    EventLoop& loop_;
    const Config& config_;
    uint64_t next_ = 0;
    std::vector<uint64_t> cancelled_;
};

}  // namespace s2s
