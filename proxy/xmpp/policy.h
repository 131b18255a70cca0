// Who may federate with us, and how they must prove who they are.
//
// - s2s.default_policy / s2s.host_policy: allow or deny a remote domain, both directions
//   (MongooseIM's semantics: an exact host entry wins over the default).
// - [antispam] lists (spam_lists.h): a domain a spam list blocks is refused like a denied one,
//   unless s2s.host_policy names it with "allow"; a listed JID's stanzas are refused one by one.
// - How a remote domain must authenticate (Prosody's semantics): secure_auth demands a valid
//   certificate from every domain except those in insecure_domains; secure_domains always need
//   one; a use_starttls mode such as "required_trusted" demands one from everybody. Otherwise a valid
//   certificate (SASL EXTERNAL) or dialback both do.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "common/config/config.h"
#include "common/xmpp/jid.h"
#include "proxy/xmpp/spam_lists.h"

namespace s2s {

class PolicyRules {
public:
    // `trusted_only`: the s2s.use_starttls mode demands a valid certificate from every remote
    // domain (its table, starttls.h, says which modes do).
    PolicyRules(const Config& config, bool trusted_only);

    // Whether links to and from `remote` are allowed at all.
    [[nodiscard]] bool allowed(std::string_view remote) const;
    // Whether s2s.host_policy names `remote` with policy = "allow" (not merely the default).
    [[nodiscard]] bool listed_allow(std::string_view remote) const;
    // Whether `remote` must present a certificate valid for its domain (dialback is not enough).
    [[nodiscard]] bool needs_valid_certificate(std::string_view remote) const;
    // The option that makes `remote` need a valid certificate, for logs and bounces
    // ("s2s.secure_domains", "s2s.secure_auth", "s2s.use_starttls = required_trusted"); "" if none does.
    [[nodiscard]] std::string certificate_rule(std::string_view remote) const;
    // Whether dialback may authenticate `remote` (the negation of needs_valid_certificate).
    [[nodiscard]] bool dialback_allowed(std::string_view remote) const { return !needs_valid_certificate(remote); }
    // A sentence for logs and bounces saying why `remote` is refused ("" when allowed).
    [[nodiscard]] std::string refusal(std::string_view remote) const;
    // A sentence saying which list refuses stanzas from `from` (its bare JID; "" when none does,
    // at once when no JID list is loaded); counted in antispam_refusals_total.
    [[nodiscard]] std::string jid_refusal(const JidView& from) const;

    // The [antispam] lists in force (null: none). Kept across a reload of the rules.
    void set_spam_lists(std::shared_ptr<const SpamLists> lists) { spam_ = std::move(lists); }
    [[nodiscard]] const std::shared_ptr<const SpamLists>& spam_lists() const noexcept { return spam_; }

private:
    Policy default_policy_;
    std::set<std::string, std::less<>> allow_, deny_;
    std::set<std::string, std::less<>> secure_, insecure_;
    bool secure_auth_;
    std::string trusted_rule_;  // "s2s.use_starttls = required_trusted" when trusted_only; else ""
    std::shared_ptr<const SpamLists> spam_;
};

}  // namespace s2s
