// MongooseIM-style access rules for listeners: `[access] NAME = [{acl = ..., value = ...}, ...]`,
// clauses tried in order; the first whose acl matches gives the value ("allow" lets the peer in).
// ACLs: "all", "none", or `[acl] NAME = [{match = "all"|"none"|"current_domain"}, {server = ...}]`.
#pragma once

#include <string>
#include <string_view>

#include "common/config/config.h"

namespace s2s {

// Whether `server` (the peer's domain, normalised) passes access rule `rule` ("all" passes all).
// A rule that matches nothing denies.
[[nodiscard]] bool access_allows(const Config& config, const std::string& rule, std::string_view server);

// Whether one of the [[listen.s2s]] access rules admits `server` (true when there is no such
// listener): what a remote must pass to send stanzas back on a link s2s-proxy opened (XEP-0288
// bidi), since it could send them on an inbound stream only through one of those listeners.
[[nodiscard]] bool some_listener_admits(const Config& config, std::string_view server);

// The value of the first clause of `rule` whose acl matches `server` ("" when no domain is known
// yet: only acls that need none match, such as "all"); "" when no clause matches.
[[nodiscard]] std::string access_value(const Config& config, const std::string& rule, std::string_view server);

}  // namespace s2s
