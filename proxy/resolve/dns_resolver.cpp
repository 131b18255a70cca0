#include "proxy/resolve/dns_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "common/base/log.h"
#include "proxy/ops/metrics.h"
#include "proxy/resolve/nameservers.h"
#include "common/base/random.h"
#include "proxy/resolve/tlsa_lookup.h"

namespace s2s {

namespace {

// More SRV targets than this are ignored (the lowest-ranked ones): it bounds one resolution's queries.
constexpr size_t kMaxTargets = 16;

DnsResolver::Random default_random() {
    uint32_t seed[8] = {};
    if (!random_bytes(reinterpret_cast<uint8_t*>(seed), sizeof seed)) {
        std::random_device device;
        for (auto& s : seed) s = device();
    }
    std::seed_seq seq(std::begin(seed), std::end(seed));
    auto gen = std::make_shared<std::mt19937>(seq);
    return [gen](uint32_t max) { return std::uniform_int_distribution<uint32_t>(0, max)(*gen); };
}

// An IP-literal domain ("127.0.0.2", "[::1]" or "::1") as an address, port 0.
bool ip_literal(const std::string& domain, sockaddr_storage* out) {
    std::string text = domain;
    if (text.size() > 2 && text.front() == '[' && text.back() == ']') text = text.substr(1, text.size() - 2);
    std::memset(out, 0, sizeof *out);
    auto* v4 = reinterpret_cast<sockaddr_in*>(out);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
    if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

void set_port(sockaddr_storage* addr, int port) {
    if (addr->ss_family == AF_INET) reinterpret_cast<sockaddr_in*>(addr)->sin_port = htons(static_cast<uint16_t>(port));
    else reinterpret_cast<sockaddr_in6*>(addr)->sin6_port = htons(static_cast<uint16_t>(port));
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
    if (a.ss_family != b.ss_family) return false;
    if (a.ss_family == AF_INET) {
        auto& x = reinterpret_cast<const sockaddr_in&>(a);
        auto& y = reinterpret_cast<const sockaddr_in&>(b);
        return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
    }
    auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    return x.sin6_port == y.sin6_port && std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
}

// A temporary or local failure: the answer says nothing about whether records exist.
bool failed(const DnsAnswer& a) {
    return a.status != DnsStatus::Ok && a.status != DnsStatus::NoData && a.status != DnsStatus::NoSuchDomain;
}

// A failed answer as a metrics label.
const char* failure_kind(const DnsAnswer& a) {
    switch (a.status) {
        case DnsStatus::Timeout: return "timeout";
        case DnsStatus::ServerFailure: return "servfail";
        case DnsStatus::NoSuchDomain: return "nxdomain";
        default: return "error";
    }
}

// The families of ip_versions in order (4 → AF_INET, 6 → AF_INET6), without repeats.
std::vector<int> families(const std::vector<int>& ip_versions) {
    std::vector<int> out;
    for (int v : ip_versions) {
        int f = v == 4 ? AF_INET : v == 6 ? AF_INET6 : 0;
        if (f && std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
    }
    return out;
}

std::string family_records(const std::vector<int>& fams) {
    std::string out;
    for (int f : fams) out += std::string(out.empty() ? "" : " or ") + (f == AF_INET ? "A (IPv4)" : "AAAA (IPv6)");
    return out.empty() ? "address" : out;
}

}  // namespace

struct DnsResolver::Host {
    std::vector<sockaddr_storage> v4, v6;
    bool secure = true;               // every address answer carried AD
    std::vector<DnsAnswer> failures;  // answers that gave no address
};

struct DnsResolver::Job {
    uint64_t token = 0;
    std::string domain;
    Done done;
    std::vector<DnsClient::Token> queries;  // every query started (cancelling a finished one is harmless)
    int srv_waiting = 0;
    DnsAnswer xmpps, xmpp;
    bool fallback = false;  // no SRV: the domain's own A/AAAA on s2s.outgoing.port
    std::vector<SrvTarget> targets;
    std::map<std::string, Host> hosts;
    int addr_waiting = 0;
    uint64_t started_ms = 0;         // loop time the DNS queries began (0: answered without DNS)
    const char* failure = "no_address";  // the kind of failure, for metrics
    std::vector<Candidate> found;         // DANE: the candidates while their TLSA lookups run
    std::map<std::string, TlsaVerdict> tlsa;  // by TLSA name
    int tlsa_waiting = 0;
};

std::unique_ptr<DnsResolver> DnsResolver::create(EventLoop& loop, const Config& config, std::string* error) {
    DnsOptions options;
    if (!resolver_dns_options(config, "/etc/resolv.conf", &options, error)) return nullptr;
    auto dns = DnsClient::create(loop, options, error);
    if (!dns) return nullptr;
    return std::make_unique<DnsResolver>(loop, config, std::move(dns));
}

DnsResolver::DnsResolver(EventLoop& loop, const Config& config, std::unique_ptr<DnsClient> dns, Random random)
    : loop_(loop), config_(config), static_(loop, config), dns_(std::move(dns)),
      random_(random ? std::move(random) : default_random()) {}

DnsResolver::~DnsResolver() {
    alive_.reset();
    if (dns_)
        for (auto& [token, job] : jobs_)
            for (auto q : job->queries) dns_->cancel(q);
    jobs_.clear();
    dns_.reset();  // closes the socket and the loop handles
}

std::vector<SrvTarget> DnsResolver::order(std::vector<SrvTarget> records, const Random& random) {
    std::stable_sort(records.begin(), records.end(),
                     [](const SrvTarget& a, const SrvTarget& b) { return a.priority < b.priority; });
    std::vector<SrvTarget> out;
    out.reserve(records.size());
    for (size_t i = 0; i < records.size();) {
        size_t j = i;
        while (j < records.size() && records[j].priority == records[i].priority) ++j;
        std::vector<SrvTarget> group(std::make_move_iterator(records.begin() + static_cast<std::ptrdiff_t>(i)),
                                     std::make_move_iterator(records.begin() + static_cast<std::ptrdiff_t>(j)));
        std::stable_partition(group.begin(), group.end(), [](const SrvTarget& t) { return t.weight == 0; });
        while (!group.empty()) {
            uint32_t sum = 0;
            for (auto& t : group) sum += static_cast<uint32_t>(std::max(t.weight, 0));
            uint32_t pick = std::min(random(sum), sum);
            size_t k = 0;
            uint32_t running = 0;
            for (; k < group.size(); ++k) {
                running += static_cast<uint32_t>(std::max(group[k].weight, 0));
                if (running >= pick) break;
            }
            if (k == group.size()) k = group.size() - 1;
            out.push_back(std::move(group[k]));
            group.erase(group.begin() + static_cast<std::ptrdiff_t>(k));
        }
        i = j;
    }
    return out;
}

uint64_t DnsResolver::resolve(const std::string& domain, Done done) {
    uint64_t token = ++next_;
    auto owned = std::make_unique<Job>();
    Job& job = *owned;
    job.token = token;
    job.domain = domain;
    if (job.domain.size() > 1 && job.domain.back() == '.') job.domain.pop_back();
    job.done = std::move(done);
    jobs_.emplace(token, std::move(owned));

    std::vector<Candidate> configured = static_.lookup(domain);
    if (!configured.empty()) {
        finish_later(token, std::move(configured), "");
        return token;
    }
    sockaddr_storage literal{};
    if (ip_literal(job.domain, &literal)) {
        auto fams = families(config_.outgoing.ip_versions);
        if (std::find(fams.begin(), fams.end(), literal.ss_family) == fams.end()) {
            finish_later(token, {},
                         "cannot connect to " + domain + ": IPv" + (literal.ss_family == AF_INET ? "4" : "6") +
                             " is not enabled in s2s.outgoing.ip_versions");
            return token;
        }
        Candidate c;
        c.addr = literal;
        set_port(&c.addr, config_.outgoing.port);
        c.host = domain;
        finish_later(token, {c}, "");
        return token;
    }
    if (job.domain.empty() || job.domain == ".") {
        finish_later(token, {}, "cannot resolve an empty domain name");
        return token;
    }
    if (!dns_) {
        finish_later(token, {},
                     "no address for " + domain + ": it has no s2s.outgoing.address entry and DNS is not available");
        return token;
    }
    start_srv(job);
    return token;
}

void DnsResolver::cancel(uint64_t token) {
    auto it = jobs_.find(token);
    if (it == jobs_.end()) return;
    if (dns_)
        for (auto q : it->second->queries) dns_->cancel(q);
    jobs_.erase(it);
}

void DnsResolver::start_srv(Job& job) {
    uint64_t token = job.token;
    job.srv_waiting = 2;
    job.started_ms = loop_.now_ms();
    ++metrics().dns_queries;
    job.queries.push_back(dns_->query(DnsType::SRV, "_xmpps-server._tcp." + job.domain,
                                      [this, token](const DnsAnswer& a) { on_srv(token, true, a); }));
    job.queries.push_back(dns_->query(DnsType::SRV, "_xmpp-server._tcp." + job.domain,
                                      [this, token](const DnsAnswer& a) { on_srv(token, false, a); }));
}

void DnsResolver::on_srv(uint64_t token, bool direct_tls, const DnsAnswer& answer) {
    auto it = jobs_.find(token);
    if (it == jobs_.end()) return;
    Job& job = *it->second;
    (direct_tls ? job.xmpps : job.xmpp) = answer;
    if (--job.srv_waiting == 0) after_srv(job);
}

void DnsResolver::after_srv(Job& job) {
    LogContext ctx{std::nullopt, {}, job.domain};
    std::vector<SrvTarget> records;
    bool xmpps_dot = false, xmpp_dot = false;
    size_t port_zero = 0;  // records naming port 0: nothing can be reached there, so never a candidate
    auto take = [&records, &port_zero](const DnsAnswer& a, bool tls, bool* dot) {
        if (a.status != DnsStatus::Ok) return;
        if (a.srv.size() == 1 && a.srv[0].target == ".") {
            *dot = true;  // RFC 2782: this service is decidedly not available at this domain
            return;
        }
        for (auto& r : a.srv) {
            if (r.target == ".") continue;
            if (r.port == 0) {
                ++port_zero;
                continue;
            }
            records.push_back({r.priority, r.weight, r.port, r.target, tls, a.authenticated});
        }
    };
    take(job.xmpps, true, &xmpps_dot);
    take(job.xmpp, false, &xmpp_dot);

    if (!records.empty()) {
        for (const DnsAnswer* a : {&job.xmpps, &job.xmpp})
            if (failed(*a)) S2S_LOG_NOTICE(ctx, "dns", "using the other SRV records: %s", a->error.c_str());
        if (port_zero > 0) S2S_LOG_NOTICE(ctx, "dns", "skipped %zu SRV record(s) with port 0", port_zero);
        std::vector<SrvTarget> ordered = order(std::move(records), random_);
        start_addresses(job, std::move(ordered), false);
        return;
    }
    // Nothing usable. A failed lookup might have hidden records: say so rather than guess.
    for (const DnsAnswer* a : {&job.xmpp, &job.xmpps}) {
        if (failed(*a)) {
            job.failure = failure_kind(*a);
            finish(job.token, {}, a->error);
            return;
        }
    }
    if (xmpp_dot || xmpps_dot) {
        std::string why;
        if (xmpp_dot && xmpps_dot)
            why = "its _xmpp-server._tcp and _xmpps-server._tcp SRV records have the target \".\"";
        else if (xmpp_dot)
            why = "its _xmpp-server._tcp SRV record has the target \".\"";
        else
            why = "its _xmpps-server._tcp SRV record has the target \".\" and _xmpp-server._tcp." + job.domain +
                  " has no SRV record";
        job.failure = "no_service";
        finish(job.token, {}, job.domain + " does not accept XMPP server-to-server connections: " + why);
        return;
    }
    if (port_zero > 0) {
        // The domain publishes SRV records, so its own addresses are no fallback (RFC 6120 3.2.1).
        job.failure = "no_service";
        finish(job.token, {},
               job.domain + " has no reachable XMPP server: its SRV records name port 0, where nothing can be reached");
        return;
    }
    S2S_LOG_DEBUG(ctx, "dns", "no SRV records: trying the domain's addresses on port %d", config_.outgoing.port);
    bool denied_securely = job.xmpp.authenticated && job.xmpps.authenticated;  // RFC 7673: no SRV, securely
    start_addresses(job, {{0, 0, config_.outgoing.port, job.domain, false, denied_securely}}, true);
}

void DnsResolver::start_addresses(Job& job, std::vector<SrvTarget> targets, bool fallback) {
    auto fams = families(config_.outgoing.ip_versions);
    if (fams.empty()) {
        finish(job.token, {}, "cannot resolve " + job.domain + ": s2s.outgoing.ip_versions lists neither 4 nor 6");
        return;
    }
    if (targets.size() > kMaxTargets) targets.resize(kMaxTargets);
    job.fallback = fallback;
    job.targets = std::move(targets);
    uint64_t token = job.token;
    for (auto& t : job.targets) {
        if (job.hosts.count(t.target)) continue;
        job.hosts[t.target];
        for (int f : fams) {
            ++job.addr_waiting;
            std::string name = t.target;
            job.queries.push_back(dns_->query(f == AF_INET ? DnsType::A : DnsType::AAAA, name,
                                              [this, token, name, f](const DnsAnswer& a) { on_address(token, name, f, a); }));
        }
    }
}

void DnsResolver::on_address(uint64_t token, const std::string& host, int family, const DnsAnswer& answer) {
    auto it = jobs_.find(token);
    if (it == jobs_.end()) return;
    Job& job = *it->second;
    Host& h = job.hosts[host];
    if (answer.status == DnsStatus::Ok) {
        h.secure = h.secure && answer.authenticated;
        auto& list = family == AF_INET ? h.v4 : h.v6;
        for (auto& a : answer.addresses)
            if (a.ss_family == family) list.push_back(a);
    } else {
        h.failures.push_back(answer);
    }
    if (--job.addr_waiting == 0) after_addresses(job);
}

void DnsResolver::after_addresses(Job& job) {
    auto fams = families(config_.outgoing.ip_versions);
    std::vector<Candidate> candidates;
    for (auto& t : job.targets) {
        Host& h = job.hosts[t.target];
        for (int f : fams) {
            for (auto& addr : f == AF_INET ? h.v4 : h.v6) {
                Candidate c;
                c.addr = addr;
                set_port(&c.addr, t.port);
                c.direct_tls = t.direct_tls;
                c.host = t.target;
                bool seen = std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& o) {
                    return o.direct_tls == c.direct_tls && same_address(o.addr, c.addr);
                });
                if (!seen) candidates.push_back(std::move(c));
            }
        }
    }
    if (!candidates.empty()) {
        if (config_.outgoing.dane) start_tlsa(job, std::move(candidates));
        else finish(job.token, std::move(candidates), "");
        return;
    }

    std::string wanted = family_records(fams);
    if (job.fallback) {
        Host& h = job.hosts[job.domain];
        for (auto& a : h.failures)
            if (failed(a)) {
                job.failure = failure_kind(a);
                finish(job.token, {}, a.error);
                return;
            }
        bool nxdomain = !h.failures.empty() && std::all_of(h.failures.begin(), h.failures.end(), [](const DnsAnswer& a) {
            return a.status == DnsStatus::NoSuchDomain;
        });
        if (nxdomain) {
            job.failure = "nxdomain";
            finish(job.token, {}, "no such domain: " + job.domain + " does not exist in DNS (NXDOMAIN)");
        } else {
            finish(job.token, {},
                   job.domain + " has no XMPP server: no _xmpp-server._tcp or _xmpps-server._tcp SRV record and no " +
                       wanted + " record");
        }
        return;
    }
    std::string why;
    for (auto& [name, h] : job.hosts) {
        std::string reason = "no " + wanted + " record";
        for (auto& a : h.failures)
            if (failed(a)) {
                reason = a.error;
                break;
            }
        if (std::all_of(h.failures.begin(), h.failures.end(),
                        [](const DnsAnswer& a) { return a.status == DnsStatus::NoSuchDomain; }) &&
            !h.failures.empty())
            reason = "no such domain";
        why += (why.empty() ? "" : "; ") + name + ": " + reason;
    }
    finish(job.token, {}, "no address for the XMPP servers of " + job.domain + " (" + why + ")");
}

void DnsResolver::start_tlsa(Job& job, std::vector<Candidate> candidates) {
    uint64_t token = job.token;
    for (auto& t : job.targets) {
        std::string name = tlsa_name(t.target, t.port);
        if (job.tlsa.count(name) || !t.secure || !job.hosts[t.target].secure) continue;  // unasked: Insecure
        job.tlsa.emplace(name, TlsaVerdict{});  // asked: judge_tlsa fills it in
        ++job.tlsa_waiting;
        job.queries.push_back(
            dns_->query(DnsType::TLSA, name, [this, token, name](const DnsAnswer& a) { on_tlsa(token, name, a); }));
    }
    job.found = std::move(candidates);
    if (job.tlsa_waiting == 0) on_tlsa(token, "", {});
}

void DnsResolver::on_tlsa(uint64_t token, const std::string& name, const DnsAnswer& answer) {
    auto it = jobs_.find(token);
    if (it == jobs_.end()) return;
    Job& job = *it->second;
    if (!name.empty()) {
        job.tlsa[name] = judge_tlsa(answer);
        if (--job.tlsa_waiting > 0) return;
    }
    std::string error;
    LogContext log{std::nullopt, {}, job.domain};
    std::vector<Candidate> candidates = apply_tlsa(std::move(job.found), job.tlsa, log, &error);
    if (candidates.empty()) job.failure = "dane_bogus";
    finish(job.token, std::move(candidates), error);
}

void DnsResolver::finish(uint64_t token, std::vector<Candidate> candidates, std::string error) {
    // `error` is a copy: it may have come from the job freed below.
    auto it = jobs_.find(token);
    if (it == jobs_.end()) return;
    std::unique_ptr<Job> job = std::move(it->second);
    jobs_.erase(it);
    if (dns_)
        for (auto q : job->queries) dns_->cancel(q);
    if (job->started_ms != 0) {
        metrics().dns_latency.observe(static_cast<double>(loop_.now_ms() - job->started_ms) / 1000.0);
        if (!error.empty()) metrics().dns_failures.add(job->failure);
    }
    LogContext ctx{std::nullopt, {}, job->domain};
    if (error.empty()) S2S_LOG_DEBUG(ctx, "dns", "%zu candidates, first %s", candidates.size(),
                                     candidates.empty() ? "-" : candidates.front().describe().c_str());
    else S2S_LOG_INFO(ctx, "dns", "%s", error.c_str());
    Done done = std::move(job->done);
    job.reset();
    done(std::move(candidates), error);  // last: it may free this resolver
}

void DnsResolver::finish_later(uint64_t token, std::vector<Candidate> candidates, std::string error) {
    loop_.defer([this, alive = std::weak_ptr<bool>(alive_), token, candidates = std::move(candidates),
                 error = std::move(error)]() mutable {
        if (!alive.expired()) finish(token, std::move(candidates), std::move(error));
    });
}

}  // namespace s2s
