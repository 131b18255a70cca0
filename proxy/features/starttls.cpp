#include "proxy/features/starttls.h"

#include "common/xml/xml.h"
#include "proxy/ops/metrics.h"

namespace s2s::starttls {
namespace {

// Every TLS mode the config can name. Columns: name, direct, starttls, required, trusted,
// strict_handshake (Mode says what each means).
constexpr Mode kModes[] = {
    // s2s.use_starttls (MongooseIM 6.x), where no tls subsection says otherwise
    {"false", false, false, false, false, false},
    {"optional", false, true, false, false, false},
    {"required", false, true, true, false, false},
    {"required_trusted", false, true, true, true, false},
    // tls.mode
    {"tls", true, false, false, false, true},
    {"starttls", false, true, false, false, true},
    {"starttls_required", false, true, true, false, true},
};

}  // namespace

const Mode& mode(std::string_view name) {
    for (const Mode& m : kModes)
        if (m.name == name) return m;
    return plain();
}

const Mode& plain() { return kModes[0]; }

const Mode& configured(const TlsOptions& tls, const Mode& otherwise) {
    if (!tls.mode.empty()) return mode(tls.mode);
    if (!tls.present) return otherwise;
    return mode(otherwise.required ? "starttls_required" : "starttls");
}

std::string feature(const Mode& mode, const Stream& stream) {
    if (stream.tls_open() || !mode.starttls) return "";
    return mode.required ? "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                         : "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>";
}

bool required_first(const Mode& mode, const Stream& stream) { return mode.required && !stream.tls_open(); }

bool may_proceed(const Mode& mode, const Stream& stream, std::string* why) {
    if (stream.tls()) {
        *why = "STARTTLS asked twice";
        return false;
    }
    if (!mode.starttls) {
        *why = "STARTTLS asked but not offered";
        return false;
    }
    return true;
}

bool early_enough(bool authenticated, bool verifying, const LogContext& log, std::string* why) {
    if (!authenticated && !verifying) return true;
    *why = std::string("STARTTLS asked after ") +
           (!authenticated ? "a dialback verification was started" : "a domain was authenticated") +
           " on the plain stream";
    S2S_LOG_NOTICE(log, "starttls-refused", "%s", why->c_str());
    return false;
}

void refuse(Stream& stream, const std::string& why) {
    stream.end(why, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
}

void proceed(Stream& stream, std::shared_ptr<const tls::Context> context) {
    stream.send("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    stream.start_tls(std::move(context));
    stream.reset_parser();
}

std::string describe(const tls::Session& t) {
    const tls::PeerVerification& v = t.peer_verification();
    std::string s(t.protocol_version());
    s += " ";
    s += t.ciphersuite();
    if (t.resumed()) s += " (resumed session)";
    s += ", peer certificate: ";
    s += v.status == tls::PeerCertificate::Valid && !v.self_signed_only ? "valid"
         : v.status == tls::PeerCertificate::Missing                  ? "none"
                                                                       : v.reason;
    return s;
}

// ---- the initiating side -------------------------------------------------------------------------

ClientStep on_features(const Mode& mode, bool tls_open, bool must_secure, const xml::Element& f,
                       const std::string& remote, std::string* why) {
    xml::Element starttls = f.child("starttls", xml::ns::tls);
    if (!tls_open && starttls) {
        if (mode.starttls || must_secure) return ClientStep::Ask;
        if (starttls.child("required", xml::ns::tls)) {
            *why = remote + " requires TLS, but TLS is off here (s2s.use_starttls / s2s.outgoing.tls.mode)";
            return ClientStep::Fail;
        }
    }
    if (!tls_open && mode.required) {
        *why = remote + " does not offer STARTTLS, which is required here";
        return ClientStep::Fail;
    }
    return ClientStep::Continue;
}

bool pre_1_0_acceptable(const Mode& mode, bool tls_open, const std::string& remote, std::string* why) {
    bool tls_needed = mode.required || mode.direct;
    if (!tls_needed || tls_open) return true;
    *why = remote + " does not support STARTTLS, which is required";
    return false;
}

bool secure_enough(const ProxyContext& ctx, const tls::Session* tls, const std::string& remote, const LogContext& log,
                   std::string* why) {
    std::string rule = ctx.policy.certificate_rule(remote);
    if (rule.empty()) return true;
    const char* reason = "certificate";
    if (!tls) {
        *why = remote + " is a secure domain (" + rule + ") and offered no TLS";
        reason = "no_tls";
    } else if (tls::PeerAuth auth = tls->authenticate_peer(remote); auth != tls::PeerAuth::Authenticated) {
        *why = std::string("the certificate of ") + remote + " is not valid for it (" + tls->describe_peer_auth(auth) + ")";
    } else {
        return true;
    }
    S2S_LOG_NOTICE(log, "refused", "%s", why->c_str());
    metrics().secure_domain_refusals.add(std::string("outbound:") + reason);
    return false;
}

}  // namespace s2s::starttls
