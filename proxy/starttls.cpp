#include "proxy/starttls.h"

#include "common/xml.h"

namespace s2s::starttls {

std::string feature(InboundTls mode, const Stream& stream) {
    if (stream.tls_open() || (mode != InboundTls::Offer && mode != InboundTls::Require)) return "";
    return mode == InboundTls::Require ? "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                                       : "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>";
}

bool required_first(InboundTls mode, const Stream& stream) {
    return mode == InboundTls::Require && !stream.tls_open();
}

bool may_proceed(InboundTls mode, const Stream& stream, std::string* why) {
    if (stream.tls()) {
        *why = "STARTTLS asked twice";
        return false;
    }
    if (mode == InboundTls::None || mode == InboundTls::Direct) {
        *why = "STARTTLS asked but not offered";
        return false;
    }
    return true;
}

void refuse(Stream& stream) { stream.send("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"); }

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

}  // namespace s2s::starttls
