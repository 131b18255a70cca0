// Every TLS context one config asks for, built together before anything is changed: the server
// builds them at start, and on SIGHUP builds the new config's set first, so that a certificate
// that cannot be loaded refuses the reload and leaves the running contexts in place. The settings
// objects the streams read then take their contexts from the set (stream_settings.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config/config.h"
#include "common/tls/tls_context.h"

namespace s2s {

struct TlsContexts {
    std::shared_ptr<const tls::Context> outgoing;
    bool outgoing_has_certificate = false;
    std::map<std::string, std::shared_ptr<const tls::Context>> domains;   // s2s.domain_certfile
    std::vector<std::shared_ptr<const tls::Context>> listeners;          // per listen.s2s entry
    std::vector<std::shared_ptr<const tls::Context>> local_listeners;    // per listen.local entry
    std::shared_ptr<const tls::Context> local_client;                    // local.tls
};

// Fills *out for `config` (a null context where a side has no TLS); false with *error naming
// the key (tls_setup.h) when one cannot be made.
[[nodiscard]] bool build_tls_contexts(const Config& config, TlsContexts* out, std::string* error);

}  // namespace s2s
