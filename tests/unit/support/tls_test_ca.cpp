#include "tests/unit/support/tls_test_ca.h"

#include <cstdlib>
#include <filesystem>

namespace s2s::test {
namespace {

// `openssl req` needs a config; the extension sections for every certificate live here too.
const char kConfig[] = R"([req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[self_ext]
basicConstraints = CA:FALSE
subjectAltName = DNS:self.test
[leaf_a]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:a.test
[leaf_c]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = DNS:c.test
[leaf_srv]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.b.test,otherName:1.3.6.1.5.5.7.8.5;UTF8:b.test
[leaf_wild]
basicConstraints = CA:FALSE
subjectAltName = DNS:*.w.test
[leaf_cn]
basicConstraints = CA:FALSE
[leaf_expired]
basicConstraints = CA:FALSE
subjectAltName = DNS:expired.test
[leaf_revoked]
basicConstraints = CA:FALSE
subjectAltName = DNS:revoked.test
[leaf_server_only]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:a.test
)";

std::string ca_config(const std::string& dir, const std::string& name) {
    const std::string db = dir + "/" + name + "_db";
    return "[ca]\ndefault_ca = tca\n[tca]\ndatabase = " + db + "/index.txt\nnew_certs_dir = " + db +
           "\ncertificate = " + dir + "/" + name + ".crt\nprivate_key = " + dir + "/" + name + ".key\nserial = " + db +
           "/serial\ndefault_md = sha256\ndefault_days = 30\ndefault_crl_days = 30\npolicy = pol\n"
           "unique_subject = no\ncopy_extensions = none\n[pol]\ncommonName = optional\n";
}

}  // namespace

const TestPki& TestPki::get() {
    static const TestPki pki;
    return pki;
}

bool TestPki::run(const std::string& what, const std::string& cmd) {
    if (!error_.empty()) return false;
    std::string full = "cd '" + tmp_.path() + "' && " + cmd + " >>openssl.log 2>&1";
    if (std::system(full.c_str()) != 0) error_ = what + " failed (see " + tmp_.path() + "/openssl.log): " + cmd;
    return error_.empty();
}

bool TestPki::make_root(const std::string& name, const std::string& cn) {
    std::filesystem::create_directories(tmp_.path() + "/" + name + "_db");
    tmp_.write(name + "_db/index.txt", "");
    tmp_.write(name + "_db/serial", "1000\n");
    tmp_.write(name + ".cnf", ca_config(tmp_.path(), name));
    return run(name + " key", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + name + ".key") &&
           run(name + " certificate", "openssl req -x509 -new -key " + name + ".key -subj '/CN=" + cn +
                                          "' -days 30 -config req.cnf -extensions ca_ext -out " + name + ".crt");
}

bool TestPki::make_leaf(const std::string& root, const std::string& name, const std::string& cn,
                        const std::string& ext, CertFiles& out, const std::string& dates) {
    out.cert = tmp_.path() + "/" + name + ".crt";
    out.key = tmp_.path() + "/" + name + ".key";
    return run(name + " key", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + name + ".key") &&
           run(name + " request",
               "openssl req -new -key " + name + ".key -subj '/CN=" + cn + "' -config req.cnf -out " + name + ".csr") &&
           run(name + " signing", "openssl ca -batch -notext -config " + root + ".cnf -extfile req.cnf -extensions " +
                                      ext + " " + dates + " -in " + name + ".csr -out " + name + ".crt");
}

TestPki::TestPki() {
    tmp_.write("req.cnf", kConfig);
    ca = tmp_.path() + "/root.crt";
    other_ca = tmp_.path() + "/other.crt";
    crl = tmp_.path() + "/root.crl";
    make_root("root", "S2S Test Root");
    make_root("other", "S2S Other Root");
    make_leaf("root", "a", "a.test", "leaf_a", a);
    make_leaf("root", "c", "c.test", "leaf_c", c);
    make_leaf("root", "srv", "cn-ignored.test", "leaf_srv", srv);
    make_leaf("root", "wild", "wild", "leaf_wild", wildcard);
    make_leaf("root", "cn", "cn.test", "leaf_cn", cn_only);
    make_leaf("root", "expired", "expired.test", "leaf_expired", expired,
              "-startdate 20200101000000Z -enddate 20200201000000Z");
    make_leaf("root", "revoked", "revoked.test", "leaf_revoked", revoked);
    make_leaf("other", "foreign", "a.test", "leaf_a", foreign);
    make_leaf("root", "server_only", "a.test", "leaf_server_only", server_only);
    self_signed = {tmp_.path() + "/self.crt", tmp_.path() + "/self.key"};
    run("self-signed key", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out self.key");
    run("self-signed certificate", "openssl req -x509 -new -key self.key -subj '/CN=self.test' -days 30 "
                                   "-config req.cnf -extensions self_ext -out self.crt");
    run("revocation", "openssl ca -config root.cnf -revoke revoked.crt");
    run("CRL", "openssl ca -config root.cnf -gencrl -out root.crl");
    // Traditional PEM encryption: mbedTLS 2.28 cannot decrypt AES-encrypted PKCS#8.
    encrypted = {a.cert, tmp_.path() + "/a_enc.key"};
    run("encrypted key", "openssl pkey -in a.key -traditional -aes256 -passout pass:secret -out a_enc.key");
}

}  // namespace s2s::test
