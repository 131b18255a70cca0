#include "common/dns/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <udns.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "common/base/log.h"
#include "common/dns/tlsa_wire.h"

namespace s2s {

const char* dns_type_name(DnsType t) noexcept {
    switch (t) {
        case DnsType::SRV: return "SRV";
        case DnsType::A: return "A";
        case DnsType::AAAA: return "AAAA";
        case DnsType::TLSA: return "TLSA";
    }
    return "?";
}

const char* dns_status_name(DnsStatus s) noexcept {
    switch (s) {
        case DnsStatus::Ok: return "ok";
        case DnsStatus::NoData: return "no-data";
        case DnsStatus::NoSuchDomain: return "no-such-domain";
        case DnsStatus::Timeout: return "timeout";
        case DnsStatus::ServerFailure: return "server-failure";
        case DnsStatus::BadName: return "bad-name";
        case DnsStatus::Error: return "error";
    }
    return "?";
}

DnsOptions dns_options(const Outgoing& outgoing) {
    DnsOptions o;
    o.nameservers = outgoing.dns_nameservers;
    o.timeout_s = outgoing.dns_timeout;
    o.retries = outgoing.dns_retries;
    o.dnssec = outgoing.dane;
    return o;
}

namespace {

constexpr const char* kNameserverForms = "expected \"ip\", \"ip:port\" or \"[ipv6]:port\", e.g. \"127.0.0.1:5353\"";

bool parse_port(const std::string& text, int* port) {
    if (text.empty() || text.size() > 5) return false;
    int p = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) return false;
    *port = p;
    return true;
}

// "ip:port", "[v6]:port" for messages; v4-mapped IPv6 (udns's form when families are mixed) as IPv4.
std::string format_server(const sockaddr* sa) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(sa);
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        return std::string(ip) + ":" + std::to_string(ntohs(a->sin_port) ? ntohs(a->sin_port) : DNS_PORT);
    }
    if (sa->sa_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(sa);
        int port = ntohs(a->sin6_port) ? ntohs(a->sin6_port) : DNS_PORT;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
            inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, ip, sizeof ip);
            return std::string(ip) + ":" + std::to_string(port);
        }
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        return "[" + std::string(ip) + "]:" + std::to_string(port);
    }
    return "?";
}

const char* rcode_name(int rcode) {
    switch (rcode) {
        case DNS_R_FORMERR: return "FORMERR";
        case DNS_R_SERVFAIL: return "SERVFAIL";
        case DNS_R_NXDOMAIN: return "NXDOMAIN";
        case DNS_R_NOTIMPL: return "NOTIMP";
        case DNS_R_REFUSED: return "REFUSED";
        default: return nullptr;
    }
}

std::string plural(int n, const char* one, const char* many) { return std::to_string(n) + " " + (n == 1 ? one : many); }

// udns 0.4 copies new contexts from its default one and asserts that it is initialized: reset it
// once (no system files read). It is only a template; no query ever goes through it.
dns_ctx* new_context() {
    static const bool template_ready = [] {
        dns_reset(nullptr);
        return true;
    }();
    (void)template_ready;
    return dns_new(nullptr);
}

}  // namespace

bool parse_nameserver(const std::string& text, sockaddr_storage* out, std::string* error) {
    std::string host = text;
    int port = 0;
    auto fail = [&](const std::string& why) {
        *error = "nameserver \"" + text + "\": " + why + " (" + kNameserverForms + ")";
        return false;
    };
    if (!text.empty() && text[0] == '[') {
        size_t close = text.find(']');
        if (close == std::string::npos) return fail("missing ']'");
        host = text.substr(1, close - 1);
        std::string rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':' || !parse_port(rest.substr(1), &port)) return fail("bad port");
        }
        if (host.find(':') == std::string::npos) return fail("brackets are for IPv6 addresses");
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        size_t colon = text.find(':');
        host = text.substr(0, colon);
        if (!parse_port(text.substr(colon + 1), &port)) return fail("bad port");
    }
    std::memset(out, 0, sizeof *out);
    auto* v4 = reinterpret_cast<sockaddr_in*>(out);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        return true;
    }
    if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        return true;
    }
    return fail("not an IP address");
}

// One query, from query() until its callback has run or it was cancelled.
struct DnsClient::Query {
    DnsClient* owner = nullptr;
    Token token = 0;
    Done done;
    dns_query* udns = nullptr;      // set while udns has it
    uint64_t deadline = 0;          // loop time (ms) when it times out
    std::vector<std::string> round; // nameservers asked in the current round
    int replies = 0;                // answers that came back (SERVFAIL included)
    int last_rcode = -1;
    bool truncated = false;
    bool authenticated = false;     // the last answer carried AD
    std::string last_server;
    DnsAnswer answer;
};

// The libuv handles: heap-held so they outlive the client until their close callbacks ran.
struct DnsClient::Handles {
    uv_poll_t poll{};
    uv_timer_t udns_timer{};      // the one timer udns asks for (dns_set_tmcbck)
    uv_timer_t deadline_timer{};  // the per-query deadlines (timeout x retries)
    bool poll_open = false;
    int open = 0;

    static void on_close(uv_handle_t* h) noexcept {
        auto* self = static_cast<Handles*>(h->data);
        if (--self->open == 0) delete self;
    }
    void close(uv_handle_t* h) noexcept {
        h->data = this;
        uv_close(h, on_close);
    }
};

std::unique_ptr<DnsClient> DnsClient::create(EventLoop& loop, const DnsOptions& options, std::string* error) {
    static_assert(kDnsMaxNameservers == DNS_MAXSERV, "the config's bound is udns's");
    if (options.timeout_s < 1 || options.timeout_s > kDnsMaxTimeoutS) {
        *error = "s2s.outgoing.dns.timeout must be between 1 and " + std::to_string(kDnsMaxTimeoutS) + " seconds (it is " +
                 std::to_string(options.timeout_s) + ")";
        return nullptr;
    }
    if (options.retries < 1 || options.retries > kDnsMaxRetries) {
        *error = "s2s.outgoing.dns.retries must be between 1 and " + std::to_string(kDnsMaxRetries) + " (it is " +
                 std::to_string(options.retries) + ")";
        return nullptr;
    }
    if (options.nameservers.size() > DNS_MAXSERV) {
        *error = "s2s.outgoing.dns.nameservers lists " + std::to_string(options.nameservers.size()) +
                 " servers; at most " + std::to_string(DNS_MAXSERV) + " are supported";
        return nullptr;
    }
    std::vector<sockaddr_storage> servers;
    std::string names;
    for (auto& text : options.nameservers) {
        sockaddr_storage sa{};
        std::string why;
        if (!parse_nameserver(text, &sa, &why)) {
            *error = "s2s.outgoing.dns.nameservers: " + why;
            return nullptr;
        }
        servers.push_back(sa);
        names += (names.empty() ? "" : ", ") + format_server(reinterpret_cast<const sockaddr*>(&sa));
    }

    dns_ctx* ctx = new_context();
    if (!ctx) {
        *error = "cannot create a DNS resolver: out of memory";
        return nullptr;
    }
    if (servers.empty()) {
        dns_init(ctx, 0);  // /etc/resolv.conf (and udns's environment variables)
        names = "the system's nameservers (/etc/resolv.conf)";
    } else {
        dns_reset(ctx);  // nothing from the system: only the configured servers
        for (auto& sa : servers) {
            if (dns_add_serv_s(ctx, reinterpret_cast<const sockaddr*>(&sa)) < 0) {
                *error = std::string("cannot use DNS server ") + format_server(reinterpret_cast<const sockaddr*>(&sa)) +
                         ": " + std::strerror(errno);
                dns_free(ctx);
                return nullptr;
            }
        }
    }
    dns_set_opt(ctx, DNS_OPT_TIMEOUT, static_cast<int>(options.timeout_s));
    dns_set_opt(ctx, DNS_OPT_NTRIES, options.retries);

    uint64_t deadline = static_cast<uint64_t>(options.timeout_s) * 1000u * static_cast<uint64_t>(options.retries);
    std::unique_ptr<DnsClient> client(new DnsClient(loop, ctx, names, deadline, options.dnssec));
    if (!client->start(error)) return nullptr;
    return client;
}

DnsClient::DnsClient(EventLoop& loop, dns_ctx* ctx, std::string servers, uint64_t deadline_ms, bool dnssec)
    : loop_(loop), ctx_(ctx), servers_(std::move(servers)), deadline_ms_(deadline_ms), dnssec_(dnssec) {}

bool DnsClient::start(std::string* error) {
    dns_set_dbgfn(ctx_, on_udns_debug);
    int fd = dns_open(ctx_);
    if (fd < 0) {
        *error = std::string("cannot open the DNS socket: ") + std::strerror(errno);
        return false;
    }
    handles_ = new Handles;
    uv_loop_t* uv = loop_.uv();
    uv_timer_init(uv, &handles_->udns_timer);
    uv_timer_init(uv, &handles_->deadline_timer);
    handles_->open = 2;
    handles_->udns_timer.data = this;
    handles_->deadline_timer.data = this;
    int rc = uv_poll_init(uv, &handles_->poll, fd);
    if (rc != 0) {
        *error = std::string("cannot watch the DNS socket: ") + uv_strerror(rc);
        return false;
    }
    handles_->poll_open = true;
    handles_->open = 3;
    handles_->poll.data = this;
    uv_poll_start(&handles_->poll, UV_READABLE, [](uv_poll_t* h, int status, int) {
        auto* self = static_cast<DnsClient*>(h->data);
        if (status < 0) S2S_LOG_WARNING(LogContext{}, "dns", "DNS socket error: %s", uv_strerror(status));
        self->io_event();
    });
    // The socket is always watched; only pending queries (their timers) keep the loop running.
    uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->poll));
    dns_set_tmcbck(ctx_, on_udns_timer_request, this);
    return true;
}

DnsClient::~DnsClient() {
    alive_.reset();
    if (handles_ && handles_->poll_open) uv_poll_stop(&handles_->poll);  // before udns closes the fd
    if (ctx_) {
        dns_set_tmcbck(ctx_, nullptr, nullptr);
        dns_free(ctx_);  // closes the socket and drops every query without calling back
    }
    if (handles_) {
        if (handles_->poll_open) handles_->close(reinterpret_cast<uv_handle_t*>(&handles_->poll));
        handles_->close(reinterpret_cast<uv_handle_t*>(&handles_->udns_timer));
        handles_->close(reinterpret_cast<uv_handle_t*>(&handles_->deadline_timer));
    }
}

DnsClient::Token DnsClient::query(DnsType type, const std::string& name, Done done) {
    Token token = ++next_;
    auto owned = std::make_unique<Query>();
    Query& q = *owned;
    q.owner = this;
    q.token = token;
    q.done = std::move(done);
    q.answer.type = type;
    q.answer.name = name;
    queries_.emplace(token, std::move(owned));

    int qtype = DNS_T_AAAA;
    dns_parse_fn* parse = dns_parse_a6;
    switch (type) {
        case DnsType::SRV: qtype = DNS_T_SRV, parse = dns_parse_srv; break;
        case DnsType::A: qtype = DNS_T_A, parse = dns_parse_a4; break;
        case DnsType::AAAA: break;
        case DnsType::TLSA: qtype = kDnsTypeTlsa, parse = parse_tlsa; break;
    }
    int flags = DNS_NOSRCH | (dnssec_ ? DNS_SET_DO : 0);
    if (!name.empty() && name.size() <= DNS_MAXDN && name.find('\0') == std::string::npos)
        q.udns = dns_submit_p(ctx_, name.c_str(), DNS_C_IN, qtype, flags, parse, on_udns_result, &q);
    if (!q.udns) {
        int status = name.empty() ? DNS_E_BADQUERY : dns_status(ctx_);
        finish(q, status == DNS_E_NOMEM ? DnsStatus::Error : DnsStatus::BadName);
        loop_.defer([this, alive = std::weak_ptr<bool>(alive_)] {
            if (!alive.expired()) dispatch();
        });
        return token;
    }
    S2S_LOG_DEBUG(LogContext{}, "dns", "query %s %s", dns_type_name(type), name.c_str());
    q.deadline = uv_now(loop_.uv()) + deadline_ms_;
    deadlines_.emplace(q.deadline, token);
    arm_deadline_timer();
    return token;
}

void DnsClient::cancel(Token token) noexcept {
    auto it = queries_.find(token);
    if (it == queries_.end()) return;
    Query& q = *it->second;
    if (q.udns) {
        dns_cancel(ctx_, q.udns);
        std::free(q.udns);  // udns 0.4's dns_cancel unlinks the query but leaves freeing it to us
        q.udns = nullptr;
        deadlines_.erase({q.deadline, token});
        arm_deadline_timer();
    }
    queries_.erase(it);  // a token already in ready_ is skipped by dispatch()
}

void DnsClient::on_udns_result(dns_ctx* ctx, void* result, void* data) noexcept {
    auto* q = static_cast<Query*>(data);
    int status = dns_status(ctx);
    DnsClient* self = q->owner;
    q->udns = nullptr;  // udns freed it before calling us
    self->deadlines_.erase({q->deadline, q->token});
    self->arm_deadline_timer();  // an armed timer for a finished query would keep the loop alive

    DnsAnswer& a = q->answer;
    a.authenticated = q->authenticated;
    DnsStatus s = DnsStatus::Error;
    if (status >= 0 && result) {
        try {
            if (a.type == DnsType::TLSA) {
                a.tlsa = tlsa_records(result);
            } else if (a.type == DnsType::SRV) {
                auto* rr = static_cast<dns_rr_srv*>(result);
                for (int i = 0; i < rr->dnssrv_nrr; ++i) {
                    const dns_srv& r = rr->dnssrv_srv[i];
                    std::string target = r.name ? r.name : "";
                    if (target.size() > 1 && target.back() == '.') target.pop_back();
                    if (target.empty()) target = ".";
                    a.srv.push_back({r.priority, r.weight, r.port, target});
                }
            } else if (a.type == DnsType::A) {
                auto* rr = static_cast<dns_rr_a4*>(result);
                for (int i = 0; i < rr->dnsa4_nrr; ++i) {
                    sockaddr_storage ss{};
                    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
                    sin->sin_family = AF_INET;
                    sin->sin_addr = rr->dnsa4_addr[i];
                    a.addresses.push_back(ss);
                }
            } else {
                auto* rr = static_cast<dns_rr_a6*>(result);
                for (int i = 0; i < rr->dnsa6_nrr; ++i) {
                    sockaddr_storage ss{};
                    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
                    sin6->sin6_family = AF_INET6;
                    sin6->sin6_addr = rr->dnsa6_addr[i];
                    a.addresses.push_back(ss);
                }
            }
            s = a.srv.empty() && a.addresses.empty() && a.tlsa.empty() ? DnsStatus::NoData : DnsStatus::Ok;
        } catch (const std::exception&) {
            s = DnsStatus::Error;  // out of memory while copying
        }
    } else {
        switch (status) {
            case DNS_E_NXDOMAIN: s = DnsStatus::NoSuchDomain; break;
            case DNS_E_NODATA: s = DnsStatus::NoData; break;
            case DNS_E_TEMPFAIL:  // udns gave up: all unanswered, all failed, or nothing could be sent
                s = q->replies > 0 ? DnsStatus::ServerFailure
                    : q->answer.tries > 0 ? DnsStatus::Timeout
                                          : DnsStatus::Error;
                break;
            case DNS_E_PROTOCOL: s = DnsStatus::ServerFailure; break;
            case DNS_E_BADQUERY: s = DnsStatus::BadName; break;
            default: s = DnsStatus::Error; break;
        }
    }
    std::free(result);
    self->finish(*q, s);
}

void DnsClient::describe(Query& q) const {
    DnsAnswer& a = q.answer;
    DnsStatus status = a.status;
    std::string subject = a.type == DnsType::SRV ? a.name : a.name + " (" + dns_type_name(a.type) + ")";
    switch (status) {
        case DnsStatus::Ok: break;
        case DnsStatus::NoData: a.error = a.name + " has no " + dns_type_name(a.type) + " record"; break;
        case DnsStatus::NoSuchDomain: a.error = "no such domain: " + a.name + " (DNS answered NXDOMAIN)"; break;
        case DnsStatus::Timeout:
            a.error = "DNS timeout for " + subject + " after " + plural(a.tries, "try", "tries") + " (no answer from " +
                      servers_ + " within " + std::to_string(deadline_ms_ / 1000) + " s)";
            break;
        case DnsStatus::ServerFailure: {
            const char* rc = rcode_name(q.last_rcode);
            std::string what = q.truncated ? std::string("a truncated answer (DNS over TCP is not supported)")
                               : rc        ? std::string(rc)
                                           : std::string("an answer that could not be parsed");
            a.error = "DNS failure for " + subject + ": " + (q.last_server.empty() ? "the nameserver" : q.last_server) +
                      " answered " + what + " (after " + plural(a.tries, "try", "tries") + ")";
            break;
        }
        case DnsStatus::BadName: a.error = "cannot look up \"" + a.name + "\" in DNS: not a valid domain name"; break;
        case DnsStatus::Error:
            a.error = "DNS lookup of " + subject + " failed: " +
                      (a.tries == 0 ? "no query could be sent to " + servers_ : std::string("out of memory"));
            break;
    }
}

void DnsClient::finish(Query& q, DnsStatus status) noexcept {
    DnsAnswer& a = q.answer;
    a.status = status;
    try {
        describe(q);
    } catch (...) {
        // Out of memory: the status alone says what happened.
    }
    S2S_LOG_DEBUG(LogContext{}, "dns", "answer %s %s: %s, %zu records, %d tries%s", dns_type_name(a.type), a.name.c_str(),
                  dns_status_name(status), a.srv.size() + a.addresses.size() + a.tlsa.size(), a.tries,
                  a.authenticated ? ", authenticated (AD)" : "");
    ready(q);
}

void DnsClient::ready(Query& q) noexcept {
    try {
        ready_.push_back(q.token);
    } catch (...) {
        // Out of memory: the query stays pending until its owner cancels it or the client goes.
    }
}

void DnsClient::on_udns_timer_request(dns_ctx* ctx, int timeout, void* data) noexcept {
    auto* self = static_cast<DnsClient*>(data);
    if (!self || !self->handles_) return;
    uv_timer_t* t = &self->handles_->udns_timer;
    if (!ctx || timeout < 0) {
        uv_timer_stop(t);
        return;
    }
    // udns counts whole seconds of time(): wake up a little after the second it names, never before.
    uv_update_time(self->loop_.uv());
    uv_timer_start(t, [](uv_timer_t* h) { static_cast<DnsClient*>(h->data)->udns_timer(); },
                   timeout == 0 ? 0 : static_cast<uint64_t>(timeout) * 1000 + 5, 0);
}

void DnsClient::on_udns_debug(int code, const sockaddr* sa, unsigned, const unsigned char* pkt, int plen,
                              const dns_query*, void* data) noexcept {
    if (!data || !sa) return;  // not about one of our queries
    auto* q = static_cast<Query*>(data);
    try {
        std::string server = format_server(sa);
        if (code == 1) {  // a query was sent to `sa`
            if (q->round.empty() || std::find(q->round.begin(), q->round.end(), server) != q->round.end()) {
                ++q->answer.tries;  // a new round over the nameservers: one more try
                q->round.clear();
            }
            q->round.push_back(server);
        } else if (code == 0 && pkt && plen >= DNS_HSIZE) {  // an answer to it came from `sa`
            ++q->replies;
            q->last_rcode = dns_rcode(pkt);
            q->truncated = dns_tc(pkt) != 0;
            q->authenticated = dns_ad(pkt) != 0;
            q->last_server = server;
        }
    } catch (...) {
        // Only bookkeeping for messages is lost.
    }
}

void DnsClient::io_event() noexcept {
    dns_ioevent(ctx_, 0);
    dispatch();  // last: a callback may free this client
}

void DnsClient::udns_timer() noexcept {
    int wait = dns_timeouts(ctx_, -1, 0);
    // If the timer fired a moment before udns's second turned, udns asks for nothing new: re-arm.
    if (wait >= 0 && !uv_is_active(reinterpret_cast<uv_handle_t*>(&handles_->udns_timer)))
        uv_timer_start(&handles_->udns_timer, [](uv_timer_t* h) { static_cast<DnsClient*>(h->data)->udns_timer(); },
                       static_cast<uint64_t>(wait) * 1000 + 5, 0);
    dispatch();
}

void DnsClient::arm_deadline_timer() noexcept {
    uv_timer_t* t = &handles_->deadline_timer;
    if (deadlines_.empty()) {
        uv_timer_stop(t);
        return;
    }
    uint64_t now = uv_now(loop_.uv());
    uint64_t first = deadlines_.begin()->first;
    uv_timer_start(t, [](uv_timer_t* h) { static_cast<DnsClient*>(h->data)->deadline_timer(); },
                   first > now ? first - now : 0, 0);
}

void DnsClient::deadline_timer() noexcept {
    uint64_t now = uv_now(loop_.uv());
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        Token token = deadlines_.begin()->second;
        deadlines_.erase(deadlines_.begin());
        auto it = queries_.find(token);
        if (it == queries_.end() || !it->second->udns) continue;
        Query& q = *it->second;
        dns_cancel(ctx_, q.udns);
        std::free(q.udns);  // see cancel()
        q.udns = nullptr;
        finish(q, q.replies > 0 ? DnsStatus::ServerFailure : DnsStatus::Timeout);
    }
    arm_deadline_timer();
    dispatch();
}

void DnsClient::dispatch() noexcept {
    std::weak_ptr<bool> alive = alive_;
    while (!ready_.empty()) {
        Token token = ready_.front();
        ready_.pop_front();
        auto it = queries_.find(token);
        if (it == queries_.end()) continue;  // cancelled after it was answered
        std::unique_ptr<Query> q = std::move(it->second);
        queries_.erase(it);
        try {
            q->done(q->answer);
        } catch (const std::exception& e) {
            S2S_LOG_ERROR(LogContext{}, "internal-error", "DNS callback threw: %s", e.what());
        } catch (...) {
            S2S_LOG_ERROR(LogContext{}, "internal-error", "DNS callback threw");
        }
        if (alive.expired()) return;  // the callback freed the client
    }
}

}  // namespace s2s
