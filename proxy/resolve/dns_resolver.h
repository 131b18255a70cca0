// The Resolver for outbound links: s2s.outgoing.address overrides first, then DNS.
//
// For a domain D without an override (RFC 6120 §3.2, XEP-0368, RFC 2782):
// 1. _xmpps-server._tcp.D and _xmpp-server._tcp.D SRV, asked in parallel. Both sets are merged
//    into one list ordered by priority; within a priority, by RFC 2782's weighted random choice
//    across both sets (XEP-0368: "all priorities and weights are mixed"). xmpps targets are
//    direct TLS.
// 2. A/AAAA of every target, in s2s.outgoing.ip_versions order (only the listed families); the
//    candidates come target by target, address by address, each on its SRV port.
// 3. No SRV record at all (NXDOMAIN or no data for both names): A/AAAA of D on
//    s2s.outgoing.port. A "." target (the service is decidedly not available) never falls back:
//    if nothing else is left, the resolution fails and says so.
// 4. With s2s.outgoing.dane: TLSA for each server reached through authenticated answers, and
//    each candidate's DaneState from it (proxy/resolve/tlsa_lookup.h); servers whose TLSA lookup
//    failed are left out.
// 5. DNS timeouts and server failures end the resolution with a sentence naming the query and
//    the number of tries, e.g. "DNS timeout for _xmpp-server._tcp.example.org after 2 tries
//    (...)". Every error is fit for a bounce's <text>.
//
// main:
//     std::string error;
//     auto resolver = s2s::DnsResolver::create(loop, config, &error);   // nullptr: error says why
//     S2SOut ... (..., *resolver, ...)   // resolve(domain, done) / cancel(token)
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/dns/dns.h"
#include "proxy/resolve/resolver.h"

namespace s2s {

// One SRV record with the service it came from.
struct SrvTarget {
    int priority = 0;
    int weight = 0;
    int port = 0;
    std::string target;
    bool direct_tls = false;  // from _xmpps-server
    bool secure = false;      // the SRV answer (or, without SRV, both denials) carried AD
};

class DnsResolver : public Resolver {
public:
    // A uniform random number in [0, max] (inclusive).
    using Random = std::function<uint32_t(uint32_t max)>;

    // Builds the DNS client from config.outgoing (nameservers, timeout, retries); nullptr and *error
    // when an option is unusable.
    [[nodiscard]] static std::unique_ptr<DnsResolver> create(EventLoop& loop, const Config& config,
                                                             std::string* error);
    // `random` defaults to a generator seeded from the system's entropy.
    DnsResolver(EventLoop& loop, const Config& config, std::unique_ptr<DnsClient> dns, Random random = {});
    // Cancels every resolution (no callback runs) and closes the DNS client.
    ~DnsResolver() override;
    DnsResolver(const DnsResolver&) = delete;
    DnsResolver& operator=(const DnsResolver&) = delete;

    uint64_t resolve(const std::string& domain, Done done) override;
    void cancel(uint64_t token) override;

    [[nodiscard]] size_t pending() const noexcept { return jobs_.size(); }
    // The nameservers asked, for the log: "10.96.0.10:53" or "the system's nameservers (...)".
    [[nodiscard]] std::string servers() const { return dns_ ? dns_->servers() : std::string(); }

    // RFC 2782 order: ascending priority; within one priority, repeatedly pick by running sum of
    // weights (weight-0 records placed first, each pick uniform in [0, sum]).
    [[nodiscard]] static std::vector<SrvTarget> order(std::vector<SrvTarget> records, const Random& random);

private:
    struct Job;
    struct Host;

    void start_srv(Job& job);
    void on_srv(uint64_t token, bool direct_tls, const DnsAnswer& answer);
    void after_srv(Job& job);
    void start_addresses(Job& job, std::vector<SrvTarget> targets, bool fallback);
    void on_address(uint64_t token, const std::string& host, int family, const DnsAnswer& answer);
    void after_addresses(Job& job);
    // DANE: TLSA for every server of `candidates` reached securely, then finish (tlsa_lookup.h).
    void start_tlsa(Job& job, std::vector<Candidate> candidates);
    void on_tlsa(uint64_t token, const std::string& name, const DnsAnswer& answer);
    // Ends a job: forgets it, cancels its queries, then calls its callback (the last thing done).
    void finish(uint64_t token, std::vector<Candidate> candidates, std::string error);
    // Ends a job on a later loop turn (answers known at resolve() time).
    void finish_later(uint64_t token, std::vector<Candidate> candidates, std::string error);

    EventLoop& loop_;
    const Config& config_;
    StaticResolver static_;
    std::unique_ptr<DnsClient> dns_;
    Random random_;
    uint64_t next_ = 0;
    std::map<uint64_t, std::unique_ptr<Job>> jobs_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace s2s
