#include "proxy/local/local_tls.h"

#include <arpa/inet.h>

namespace s2s {

InboundTls local_tls_mode(const Listener& l) {
    if (!l.tls.mode) return l.tls.present ? InboundTls::Offer : InboundTls::None;
    switch (*l.tls.mode) {
        case TlsMode::Tls: return InboundTls::Direct;
        case TlsMode::StartTls: return InboundTls::Offer;
        case TlsMode::StartTlsRequired: return InboundTls::Require;
    }
    return InboundTls::None;
}

LocalTls local_client_tls_mode(const Config& c) {
    if (!c.local_tls.mode) return LocalTls::Plain;
    switch (*c.local_tls.mode) {
        case TlsMode::Tls: return LocalTls::Direct;
        case TlsMode::StartTls: return LocalTls::StartTls;
        case TlsMode::StartTlsRequired: return LocalTls::StartTlsRequired;
    }
    return LocalTls::Plain;
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
