#include "proxy/xmpp/context.h"

#include <algorithm>

namespace s2s {

bool ProxyContext::is_local(std::string_view domain) const {
    return std::find(config.hosts.begin(), config.hosts.end(), domain) != config.hosts.end();
}

}  // namespace s2s
