#include "proxy/local/local_tls.h"

#include <arpa/inet.h>

namespace s2s {

// (s2s.use_starttls is about the public side: without a tls subsection a local listener is plain.)
const starttls::Mode& local_tls_mode(const Listener& l) { return starttls::configured(l.tls, starttls::plain()); }

const starttls::Mode& local_client_tls_mode(const Config& c) {
    return starttls::configured(c.local_tls, starttls::plain());
}

std::string host_name_of(const std::string& host_port) {
    if (host_port.empty() || host_port[0] == '[') return "";
    size_t colon = host_port.rfind(':');
    std::string host = host_port.substr(0, colon);
    unsigned char buf[16];
    if (host.empty() || inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1)
        return "";
    return host;
}

namespace local_tls {

std::string server_name(const LocalTlsSettings& s, const std::string& domain) {
    return s.server_name.empty() ? domain : s.server_name;
}

}  // namespace local_tls
}  // namespace s2s
