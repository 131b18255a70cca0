// A throwaway PKI for TLS tests, made with `openssl` on first use (about a second) and removed
// at exit: two roots, leaves with every kind of identity, an expired, a revoked, a self-signed
// and a foreign leaf, and a CRL. All keys are EC P-256.
#pragma once

#include "tests/unit/support/test_support.h"

#include <string>

namespace s2s::test {

struct CertFiles {
    std::string cert;  ///< PEM certificate
    std::string key;   ///< PEM private key (unencrypted unless said otherwise)
};

class TestPki {
public:
    /// The shared instance; check ok() (error() says which openssl step failed).
    static const TestPki& get();

    [[nodiscard]] bool ok() const noexcept { return error_.empty(); }
    [[nodiscard]] const std::string& error() const noexcept { return error_; }
    [[nodiscard]] const std::string& dir() const noexcept { return tmp_.path(); }

    std::string ca;        ///< root certificate the tests trust ("S2S Test Root")
    std::string other_ca;  ///< another root, trusted by nobody
    std::string crl;       ///< CRL from `ca` listing `revoked`
    CertFiles a;           ///< DNS:a.test (CN a.test), serverAuth + clientAuth
    CertFiles c;           ///< DNS:c.test, a second server certificate (SNI)
    CertFiles srv;         ///< SRV-ID _xmpp-server.b.test + XmppAddr b.test, CN cn-ignored.test
    CertFiles wildcard;    ///< DNS:*.w.test
    CertFiles cn_only;     ///< CN cn.test, no subjectAltName
    CertFiles expired;     ///< DNS:expired.test, valid in January 2020 only
    CertFiles revoked;     ///< DNS:revoked.test, listed in `crl`
    CertFiles self_signed; ///< DNS:self.test, issued by itself
    CertFiles foreign;     ///< DNS:a.test, issued by `other_ca`
    CertFiles server_only; ///< DNS:a.test, extendedKeyUsage serverAuth only
    CertFiles encrypted;   ///< `a`'s certificate with its key encrypted (PEM, AES-256), password "secret"

private:
    TestPki();
    bool run(const std::string& what, const std::string& cmd);
    bool make_root(const std::string& name, const std::string& cn);
    bool make_leaf(const std::string& root, const std::string& name, const std::string& cn, const std::string& ext,
                   CertFiles& out, const std::string& dates = "");

    TempDir tmp_;
    std::string error_;
};

}  // namespace s2s::test
