#include "proxy/preflight.h"

#include "proxy/dns_responder.h"
#include "proxy/local_tls.h"
#include "proxy/tls_setup.h"

namespace s2s {

std::vector<std::string> preflight(const Config& config) {
    std::vector<std::string> problems;
    std::string error;
    for (size_t i = 0; i < config.listen_s2s.size(); ++i) {
        const Listener& l = config.listen_s2s[i];
        if (inbound_tls_mode(config, l) == InboundTls::None) continue;
        if (!make_listener_context(config, l, &error))
            problems.push_back("listen.s2s." + std::to_string(i) + ".tls: " + error);
    }
    for (size_t i = 0; i < config.listen_local.size(); ++i) {
        const Listener& l = config.listen_local[i];
        if (local_tls_mode(l) == InboundTls::None) continue;
        if (!make_local_listener_context(config, l, &error))
            problems.push_back("listen.local." + std::to_string(i) + ".tls: " + error);
    }
    if (local_client_tls_mode(config) != LocalTls::Plain && !make_local_client_context(config, &error))
        problems.push_back("local.tls: " + error);
    if (outgoing_tls_needed(config)) {
        bool with_cert = false;
        if (!make_outgoing_context(config, "", &with_cert, &error)) problems.push_back("s2s.outgoing.tls: " + error);
        for (auto& d : config.domain_certs)
            if (!make_outgoing_context(config, d.domain, &with_cert, &error))
                problems.push_back("s2s.domain_certfile (" + d.domain + "): " + error);
    }
    if (!config.local_dns_responder.empty()) {
        sockaddr_storage bind{};
        DnsResponderRules rules;
        if (!dns_responder_settings(config, &bind, &rules, &error)) problems.push_back(error);
    }
    return problems;
}

}  // namespace s2s
