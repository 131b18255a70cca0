#include "proxy/app/preflight.h"

#include "common/config/config_load.h"
#include "proxy/resolve/dns_responder.h"
#include "proxy/resolve/nameservers.h"
#include "proxy/local/local_tls.h"
#include "proxy/app/spam_files.h"
#include "proxy/app/tls_setup.h"

namespace s2s {

std::vector<std::string> preflight(const Config& config) {
    std::vector<std::string> problems;
    std::string error;
    for (size_t i = 0; i < config.listen_s2s.size(); ++i) {
        const Listener& l = config.listen_s2s[i];
        if (!inbound_tls_mode(config, l).uses_tls()) continue;
        if (!make_listener_context(config, l, &error)) problems.push_back(error);
    }
    for (size_t i = 0; i < config.listen_local.size(); ++i) {
        const Listener& l = config.listen_local[i];
        if (!local_tls_mode(l).uses_tls()) continue;
        if (!make_local_listener_context(config, l, &error)) problems.push_back(error);
    }
    if (local_client_tls_mode(config).uses_tls() && !make_local_client_context(config, &error))
        problems.push_back(error);
    if (outgoing_tls_needed(config)) {
        bool with_cert = false;
        if (!make_outgoing_context(config, "", &with_cert, &error)) problems.push_back(error);
        for (auto& d : config.domain_certs)
            if (!make_outgoing_context(config, d.domain, &with_cert, &error))
                problems.push_back(error + " (outgoing links from " + d.domain + ")");
    }
    if (!config.local_dns_responder.empty()) {
        sockaddr_storage bind{};
        DnsResponderRules rules;
        std::vector<sockaddr_storage> upstreams;
        if (!dns_responder_settings(config, &bind, &rules, &upstreams, &error)) {
            std::string key = "local.dns_upstream";
            if (error.compare(0, key.size() + 2, key + ": ") != 0) key = "local.dns_responder";
            if (error.compare(0, key.size() + 2, key + ": ") == 0) error.erase(0, key.size() + 2);
            problems.push_back(config::locate(config, key) + ": " + error);
        }
        DnsOptions options;
        if (!resolver_dns_options(config, "/etc/resolv.conf", &options, &error))
            problems.push_back(config::locate(config, "local.dns_responder") + ": " + error);
    }
    SpamFilesLoad spam = load_spam_files(spam_files(config));
    problems.insert(problems.end(), spam.problems.begin(), spam.problems.end());
    return problems;
}

std::vector<std::string> preflight_notes(const Config& config) {
    return load_spam_files(spam_files(config)).summary;
}

}  // namespace s2s
