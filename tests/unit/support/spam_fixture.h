// [antispam] lists for unit tests, made from the text of their files (no file on disk): the
// domain list as spam_domains_file, the JID list as spam_jids_file, the whitelist as
// whitelist_domains_file, each with the source name "<key>.txt".
#pragma once

#include <memory>
#include <string>

#include "proxy/xmpp/spam_lists.h"

namespace s2s::test {

[[nodiscard]] std::shared_ptr<const SpamLists> spam_lists(const std::string& domains, const std::string& jids = "",
                                                          const std::string& whitelist = "");

}  // namespace s2s::test
