#include "proxy/xmpp/policy.h"

#include "common/xmpp/jid.h"
#include "proxy/ops/metrics.h"

namespace s2s {
namespace {

// Configured domains are normalised by the config loader; peers' domains are normalised here.
std::string norm(std::string_view d) { return normalize_domain(d).value_or(std::string(d)); }

}  // namespace

PolicyRules::PolicyRules(const Config& c, bool trusted_only)
    : default_policy_(c.default_policy),
      secure_(c.secure_domains.begin(), c.secure_domains.end()),
      insecure_(c.insecure_domains.begin(), c.insecure_domains.end()),
      secure_auth_(c.secure_auth),
      trusted_rule_(trusted_only ? "s2s.use_starttls = " + c.use_starttls : "") {
    for (auto& hp : c.host_policy) (hp.policy == Policy::Allow ? allow_ : deny_).insert(hp.host);
}

bool PolicyRules::allowed(std::string_view remote) const {
    std::string d = norm(remote);
    if (deny_.count(d)) return false;
    if (allow_.count(d)) return true;
    if (const SpamList* l = spam_ ? spam_->blocking_canonical(d) : nullptr) {
        metrics().antispam_refusals.add(l->key + ":domain");
        return false;
    }
    return default_policy_ == Policy::Allow;
}

bool PolicyRules::listed_allow(std::string_view remote) const { return allow_.count(norm(remote)) != 0; }

bool PolicyRules::needs_valid_certificate(std::string_view remote) const {
    std::string d = norm(remote);
    if (!trusted_rule_.empty() || secure_.count(d)) return true;
    return secure_auth_ && !insecure_.count(d);
}

std::string PolicyRules::certificate_rule(std::string_view remote) const {
    std::string d = norm(remote);
    if (secure_.count(d)) return "s2s.secure_domains";
    if (secure_auth_ && !insecure_.count(d)) return "s2s.secure_auth";
    if (!trusted_rule_.empty()) return trusted_rule_;
    return "";
}

std::string PolicyRules::refusal(std::string_view remote) const {
    std::string d = norm(remote);
    if (deny_.count(d)) return d + " is denied by s2s.host_policy";
    if (allow_.count(d)) return "";
    if (const SpamList* l = spam_ ? spam_->blocking_canonical(d) : nullptr)
        return d + " is listed as a spam domain (antispam." + l->key + ")";  // no path: peers read it
    if (default_policy_ == Policy::Deny) return d + " is not in s2s.host_policy and s2s.default_policy is \"deny\"";
    return "";
}

std::string PolicyRules::jid_refusal(const JidView& from) const {
    if (!spam_ || spam_->jid_list().size() == 0 || !from.has_local()) return "";
    Jid bare = Jid::from_view(from.bare());  // the localpart case-folded, as the list has it
    const SpamList* l = spam_->blocking_jid(bare.bare_string());
    if (!l) return "";
    metrics().antispam_refusals.add(l->key + ":jid");
    return std::string(bare.bare_string()) + " is listed as a spammer (antispam." + l->key + ")";
}

}  // namespace s2s
