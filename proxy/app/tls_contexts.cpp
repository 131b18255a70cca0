#include "proxy/app/tls_contexts.h"

#include "proxy/local/local_tls.h"
#include "proxy/app/tls_setup.h"

namespace s2s {

bool build_tls_contexts(const Config& c, TlsContexts* out, std::string* error) {
    if (outgoing_tls_needed(c)) {
        out->outgoing = make_outgoing_context(c, "", &out->outgoing_has_certificate, error);
        if (!out->outgoing) return false;
        for (auto& d : c.domain_certs) {
            bool with_cert = false;
            auto ctx = make_outgoing_context(c, d.domain, &with_cert, error);
            if (!ctx) {
                *error += " (outgoing links from " + d.domain + ")";
                return false;
            }
            out->domains[d.domain] = ctx;
        }
    }
    for (size_t i = 0; i < c.listen_s2s.size(); ++i) {
        std::shared_ptr<const tls::Context> ctx;
        if (inbound_tls_mode(c, c.listen_s2s[i]).uses_tls()) {
            ctx = make_listener_context(c, c.listen_s2s[i], error);
            if (!ctx) return false;
        }
        out->listeners.push_back(std::move(ctx));
    }
    for (size_t i = 0; i < c.listen_local.size(); ++i) {
        std::shared_ptr<const tls::Context> ctx;
        if (local_tls_mode(c.listen_local[i]).uses_tls()) {
            ctx = make_local_listener_context(c, c.listen_local[i], error);
            if (!ctx) return false;
        }
        out->local_listeners.push_back(std::move(ctx));
    }
    if (local_client_tls_mode(c).uses_tls()) {
        out->local_client = make_local_client_context(c, error);
        if (!out->local_client) return false;
    }
    return true;
}

}  // namespace s2s
