#include "proxy/resolve/dns_responder.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <uv.h>

#include <cstring>

#include "common/base/log.h"
#include "common/dns/dns.h"
#include "proxy/ops/metrics.h"

namespace s2s {

bool is_loopback_address(const sockaddr_storage& ss) noexcept {
    if (ss.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
        return (ntohl(in.sin_addr.s_addr) >> 24) == 127;
    }
    if (ss.ss_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
        return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
    }
    return false;
}

namespace {

std::string text_of(const sockaddr_storage& ss) {
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
        inet_ntop(AF_INET, &in.sin_addr, ip, sizeof ip);
        port = ntohs(in.sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
        inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof ip);
        port = ntohs(in6.sin6_port);
    }
    return std::string(ip) + " port " + std::to_string(port);
}

// "ip:port", "[v6]:port" or "localhost:port" (127.0.0.1), port 1..65535.
bool parse_address(const std::string& text, sockaddr_storage* out) {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon + 1 >= text.size() || text.size() - colon - 1 > 5) return false;
    int port = 0;
    for (size_t i = colon + 1; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        port = port * 10 + (text[i] - '0');
    }
    if (port < 1 || port > 65535) return false;
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host == "localhost") host = "127.0.0.1";
    *out = sockaddr_storage{};
    return uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(out)) == 0 ||
           uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(out)) == 0;
}

// Where a query to `upstream` would arrive: the same address and port as `bind` (port 0 is 53),
// or an unspecified address on the same port, which reaches this host.
bool reaches(const sockaddr_storage& upstream, const sockaddr_storage& bind) {
    const uint16_t bind_port = bind.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(bind).sin_port
                               : bind.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(bind).sin6_port
                                                            : 0;
    if (upstream.ss_family == AF_INET) {
        const auto& u = reinterpret_cast<const sockaddr_in&>(upstream);
        const uint16_t port = u.sin_port ? u.sin_port : htons(53);
        if (u.sin_addr.s_addr == htonl(INADDR_ANY)) return port == bind_port;
        const auto& b = reinterpret_cast<const sockaddr_in&>(bind);
        return bind.ss_family == AF_INET && u.sin_addr.s_addr == b.sin_addr.s_addr && port == bind_port;
    }
    if (upstream.ss_family == AF_INET6) {
        const auto& u = reinterpret_cast<const sockaddr_in6&>(upstream);
        const uint16_t port = u.sin6_port ? u.sin6_port : htons(53);
        if (IN6_IS_ADDR_UNSPECIFIED(&u.sin6_addr)) return port == bind_port;
        const auto& b = reinterpret_cast<const sockaddr_in6&>(bind);
        return bind.ss_family == AF_INET6 && IN6_ARE_ADDR_EQUAL(&u.sin6_addr, &b.sin6_addr) && port == bind_port;
    }
    return false;
}

}  // namespace

bool dns_responder_settings(const Config& config, sockaddr_storage* bind, DnsResponderRules* rules,
                            std::vector<sockaddr_storage>* upstreams, std::string* error) {
    const std::string& text = config.local_dns_responder;
    const std::string key = "local.dns_responder: ";
    if (!parse_address(text, bind)) {
        *error = key + "\"" + text + "\" is not \"ip:port\" on loopback (e.g. \"127.0.0.1:5353\" or \"[::1]:5353\")";
        return false;
    }
    if (!is_loopback_address(*bind)) {
        *error = key + "\"" + text +
                 "\" is not a loopback address; the responder sends every s2s lookup to s2s-proxy and must only "
                 "answer this host (use 127.0.0.1 or ::1)";
        return false;
    }
    if (config.listen_local.empty()) {
        *error = key + "needs a [[listen.local]]: its answers name that listener's port";
        return false;
    }
    const Listener& l = config.listen_local.front();
    in_addr v4{};
    in6_addr v6{};
    bool ipv4 = false, ipv6 = false;
    if (inet_pton(AF_INET, l.ip_address.c_str(), &v4) == 1) {
        ipv4 = ntohl(v4.s_addr) == INADDR_LOOPBACK || v4.s_addr == htonl(INADDR_ANY);
    } else if (inet_pton(AF_INET6, l.ip_address.c_str(), &v6) == 1) {
        ipv6 = IN6_IS_ADDR_LOOPBACK(&v6) || IN6_IS_ADDR_UNSPECIFIED(&v6);
        ipv4 = IN6_IS_ADDR_UNSPECIFIED(&v6);  // "::" takes IPv4 too (dual stack)
    }
    if (!ipv4 && !ipv6) {
        *error = key + "its SRV answers send the local server to localhost port " + std::to_string(l.port) +
                 ", but listen.local.0 listens on " + l.ip_address +
                 "; set listen.local.0.ip_address to 127.0.0.1 (or ::1)";
        return false;
    }
    rules->port = static_cast<uint16_t>(l.port);
    rules->ipv4 = ipv4;
    rules->ipv6 = ipv6;
    rules->set_own_domains(config.hosts);
    upstreams->clear();
    for (const std::string& server : config.local_dns_upstream) {
        sockaddr_storage u{};
        std::string why;
        if (!parse_nameserver(server, &u, &why)) {
            *error = "local.dns_upstream: " + why;
            return false;
        }
        if (reaches(u, *bind)) {
            *error = "local.dns_upstream: \"" + server + "\" is local.dns_responder itself (" + text_of(*bind) +
                     "): every forwarded query would come back to it; name the resolvers the responder stands in "
                     "for (e.g. the cluster DNS service, 10.96.0.10)";
            return false;
        }
        upstreams->push_back(u);
    }
    rules->forward = !upstreams->empty();
    return true;
}

struct DnsResponder::Socket {
    uv_udp_t udp{};
    DnsResponderRules rules;
    sockaddr_storage address{};
    uint64_t answered = 0, forwarded = 0, dropped = 0;
    std::unique_ptr<DnsForwarder> forwarder;  // with upstreams

    static void on_read(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                        unsigned flags) noexcept;
    void forward(const uint8_t* query, size_t len, const sockaddr_storage& client, const DnsReply& r,
                 bool describe) noexcept;
};

void DnsResponder::Socket::forward(const uint8_t* query, size_t len, const sockaddr_storage& client,
                                   const DnsReply& r, bool describe) noexcept {
    const DnsForwarder::Outcome o = forwarder->forward(query, len, client);
    const bool sent = o == DnsForwarder::Outcome::Sent;
    if (sent) ++forwarded;
    else ++dropped;
    metrics().dns_responder.add(sent ? "forwarded" : "dropped");
    if (o == DnsForwarder::Outcome::Full) metrics().limits_reached.add("dns_forwards");
    if (describe) try {
            const char* type = dns_type_name(r.qtype);
            const std::string type_text = type ? type : "TYPE" + std::to_string(r.qtype);
            const char* what = sent ? "forwarded"
                               : o == DnsForwarder::Outcome::Full
                                   ? "not forwarded: the table of pending forwards is full"
                               : o == DnsForwarder::Outcome::TooBig ? "not forwarded: too big"
                                                                    : "not forwarded: the send failed";
            S2S_LOG_DEBUG(LogContext{}, "dns-query", "%s %s%s from %s: %s (%s)", type_text.c_str(), r.qname.c_str(),
                          r.edns ? " (EDNS)" : "", text_of(client).c_str(), what, r.why);
        } catch (...) {  // (out of memory: only the log line is lost)
        }
}

void DnsResponder::Socket::on_read(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                                   unsigned flags) noexcept {
    auto* self = static_cast<Socket*>(handle->data);
    if (nread < 0) {
        S2S_LOG_WARNING(LogContext{}, "dns-responder", "receive failed: %s", uv_strerror(static_cast<int>(nread)));
        return;
    }
    if (!from) return;  // nothing more to read this time
    if (flags & UV_UDP_PARTIAL) {
        ++self->dropped;
        return;
    }
    uint8_t answer[kDnsResponderMaxAnswer];
    const bool describe = log_enabled(LogLevel::debug);
    DnsReply r;
    try {
        r = dns_respond(self->rules, reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread), answer,
                        sizeof answer, describe);
    } catch (...) {  // (describe allocates)
        r = DnsReply{};
    }
    sockaddr_storage peer{};
    std::memcpy(&peer, from, from->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    if (r.forward && self->forwarder) {
        self->forward(reinterpret_cast<const uint8_t*>(buf->base), static_cast<size_t>(nread), peer, r, describe);
        return;
    }
    int sent = 0;
    if (r.size) {
        uv_buf_t out = uv_buf_init(reinterpret_cast<char*>(answer), static_cast<unsigned>(r.size));
        sent = uv_udp_try_send(handle, &out, 1, from);
    }
    if (sent > 0) ++self->answered;
    else ++self->dropped;
    metrics().dns_responder.add(sent > 0 ? "answered" : "dropped");
    if (describe) try {
        const std::string who = text_of(peer);
        const char* type = dns_type_name(r.qtype);
        const std::string type_text = type ? type : "TYPE" + std::to_string(r.qtype);
        if (sent > 0 && !r.qname.empty())
            S2S_LOG_DEBUG(LogContext{}, "dns-query", "%s %s%s from %s: %s, %d record%s (%s)", type_text.c_str(),
                          r.qname.c_str(), r.edns ? " (EDNS)" : "", who.c_str(), dns_rcode_name(r.rcode), r.answers,
                          r.answers == 1 ? "" : "s", r.why);
        else if (sent > 0)
            S2S_LOG_DEBUG(LogContext{}, "dns-query", "%zd bytes from %s: %s (%s)", nread, who.c_str(),
                          dns_rcode_name(r.rcode), r.why);
        else
            S2S_LOG_DEBUG(LogContext{}, "dns-query", "%zd bytes from %s: not answered (%s)", nread, who.c_str(),
                          r.size ? uv_strerror(sent) : r.why);
    } catch (...) {  // (out of memory: only the log line is lost)
    }
}

std::unique_ptr<DnsResponder> DnsResponder::start(EventLoop& loop, const sockaddr_storage& bind,
                                                  DnsResponderRules rules, std::string* error,
                                                  std::vector<sockaddr_storage> upstreams) {
    if (!is_loopback_address(bind)) {
        *error = text_of(bind) + " is not a loopback address";
        return nullptr;
    }
    auto* s = new Socket;
    s->rules = std::move(rules);
    s->udp.data = s;
    int rc = uv_udp_init(loop.uv(), &s->udp);
    if (rc != 0) {
        delete s;
        *error = std::string("cannot make a UDP socket: ") + uv_strerror(rc);
        return nullptr;
    }
    auto close = [](Socket* sock) {
        uv_close(reinterpret_cast<uv_handle_t*>(&sock->udp), [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
    };
    rc = uv_udp_bind(&s->udp, reinterpret_cast<const sockaddr*>(&bind), 0);
    int len = sizeof s->address;
    if (rc == 0) rc = uv_udp_getsockname(&s->udp, reinterpret_cast<sockaddr*>(&s->address), &len);
    if (rc == 0) rc = uv_udp_recv_start(&s->udp, EventLoop::alloc_read_buffer, Socket::on_read);
    if (rc != 0) {
        *error = "cannot listen on " + text_of(bind) + " (udp): " + uv_strerror(rc);
        close(s);
        return nullptr;
    }
    if (!upstreams.empty()) {
        uv_udp_t* udp = &s->udp;
        s->forwarder = std::make_unique<DnsForwarder>(
            loop, std::move(upstreams), [udp](const sockaddr_storage& client, const uint8_t* answer, size_t size) {
                uv_buf_t out = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(answer)),
                                           static_cast<unsigned>(size));
                const int sent = uv_udp_try_send(udp, &out, 1, reinterpret_cast<const sockaddr*>(&client));
                if (sent < 0) S2S_LOG_DEBUG(LogContext{}, "dns-forward", "answer not relayed: %s", uv_strerror(sent));
            });
    }
    s->rules.forward = s->forwarder != nullptr;
    return std::unique_ptr<DnsResponder>(new DnsResponder(s));
}

std::unique_ptr<DnsResponder> DnsResponder::start(EventLoop& loop, const Config& config, std::string* error) {
    sockaddr_storage bind{};
    DnsResponderRules rules;
    std::vector<sockaddr_storage> upstreams;
    if (!dns_responder_settings(config, &bind, &rules, &upstreams, error)) return nullptr;
    const int port = rules.port;
    auto r = start(loop, bind, std::move(rules), error, std::move(upstreams));
    if (!r) {
        *error = "local.dns_responder: " + *error;
        return nullptr;
    }
    if (r->forwarder())
        S2S_LOG_NOTICE(LogContext{}, "listening",
                       "local.dns_responder on %s (udp): _xmpp-server._tcp SRV -> s2s-proxy.localhost port %d; every "
                       "other query forwarded to %s",
                       r->address_text().c_str(), port, r->forwarder()->upstreams_text().c_str());
    else
        S2S_LOG_NOTICE(LogContext{}, "listening",
                       "local.dns_responder on %s (udp): _xmpp-server._tcp SRV -> localhost port %d",
                       r->address_text().c_str(), port);
    return r;
}

DnsResponder::~DnsResponder() {
    socket_->forwarder.reset();  // nothing is relayed through a closing socket
    uv_close(reinterpret_cast<uv_handle_t*>(&socket_->udp), [](uv_handle_t* h) { delete static_cast<Socket*>(h->data); });
}

const sockaddr_storage& DnsResponder::address() const noexcept { return socket_->address; }
std::string DnsResponder::address_text() const { return text_of(socket_->address); }
uint64_t DnsResponder::answered() const noexcept { return socket_->answered; }
uint64_t DnsResponder::forwarded() const noexcept { return socket_->forwarded; }
uint64_t DnsResponder::dropped() const noexcept { return socket_->dropped; }
const DnsForwarder* DnsResponder::forwarder() const noexcept { return socket_->forwarder.get(); }

}  // namespace s2s
