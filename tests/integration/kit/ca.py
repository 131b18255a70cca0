"""Throwaway certificate authorities made with the openssl command line at test time.

    ca = CA(procs.mkdir("ca"))                       # a root CA (EC P-256 by default)
    b = ca.issue("b.test")                           # SAN DNS:b.test, serverAuth+clientAuth
    b.cert, b.key, b.chain, b.pem, b.ca              # paths: leaf, key, leaf+CA, key+leaf+CA, CA cert
    ca.issue("b.test", sans=[], srv_ids=["_xmpp-server.b.test"], xmpp_addrs=["b.test"])
    ca.issue("b.test", expired=True)                 # valid in the past only
    other = CA(procs.mkdir("ca2"), name="Unrelated CA")   # for wrong-CA cases
    self_signed(procs.mkdir("ss"), "b.test")

Names follow RFC 6125 / RFC 7590: `sans` become DNS-IDs, `srv_ids` SRV-IDs (otherName
1.3.6.1.5.5.7.8.7, IA5String, e.g. "_xmpp-server.b.test") and `xmpp_addrs` XmppAddr identifiers
(otherName 1.3.6.1.5.5.7.8.5, UTF8String). The subject CN is `cn` (default: the domain).
"""
import datetime
import os
import shutil
import subprocess

from .procs import KitError

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

ID_ON_XMPPADDR = "1.3.6.1.5.5.7.8.5"
ID_ON_DNSSRV = "1.3.6.1.5.5.7.8.7"


def _openssl(*args, cwd=None, timeout=30):
    try:
        cp = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                            stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise KitError(f"openssl {' '.join(args)}: no result after {timeout}s") from None
    if cp.returncode != 0:
        raise KitError(f"openssl {' '.join(args)} failed ({cp.returncode}):\n{cp.stdout}{cp.stderr}")
    return cp.stdout


def _genkey(path, key):
    if key == "ec":
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
    elif key == "rsa":
        _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
    else:
        raise ValueError(f"key must be 'ec' or 'rsa', not {key!r}")
    os.chmod(path, 0o644)   # throwaway keys, readable by the server users (prosody, ejabberd)


def _asn1_time(dt):
    return dt.strftime("%Y%m%d%H%M%SZ")


def _san_line(sans, srv_ids, xmpp_addrs, ips):
    items = [f"DNS:{d}" for d in sans]
    items += [f"IP:{ip}" for ip in ips]
    items += [f"otherName:{ID_ON_DNSSRV};IA5STRING:{s}" for s in srv_ids]
    items += [f"otherName:{ID_ON_XMPPADDR};UTF8:{x}" for x in xmpp_addrs]
    return ",".join(items)


def _cat(out, *paths):
    with open(out, "w") as o:
        for p in paths:
            with open(p) as f:
                data = f.read()
            o.write(data if data.endswith("\n") else data + "\n")
    os.chmod(out, 0o644)
    return out


class Issued:
    """Paths of one issued certificate: cert (leaf), key, chain (leaf then issuer), pem (key, leaf,
    issuer in one file: what ejabberd's `certfiles` likes), ca (the issuing CA's certificate, or the
    cert itself when self-signed)."""

    def __init__(self, domain, cert, key, chain, pem, ca):
        self.domain, self.cert, self.key, self.chain, self.pem, self.ca = domain, cert, key, chain, pem, ca

    def text(self):
        """openssl's human-readable dump of the leaf (for debugging)."""
        return _openssl("x509", "-in", self.cert, "-noout", "-text")

    def __repr__(self):
        return f"<Issued {self.domain} {self.cert}>"


class CA:
    """A root CA in `directory` (created if missing). Issues leaf certificates with `openssl ca`."""

    def __init__(self, directory, *, name="s2s-proxy Test CA", key="ec", days=30):
        self.dir = directory
        self.name = name
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, 0o755)
        self.key = os.path.join(directory, "ca.key")
        self.cert = os.path.join(directory, "ca.crt")
        self._n = 0
        for f, text in (("index.txt", ""), ("index.txt.attr", "unique_subject = no\n"), ("serial", "1000\n")):
            with open(os.path.join(directory, f), "w") as fh:
                fh.write(text)
        os.makedirs(os.path.join(directory, "newcerts"), exist_ok=True)
        self.config = os.path.join(directory, "ca.cnf")
        with open(self.config, "w") as f:
            f.write(f"""[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {directory}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = {self.cert}
private_key = {self.key}
default_md = sha256
policy = policy_any
preserve = no
copy_extensions = none
email_in_dn = no
unique_subject = no
[ policy_any ]
commonName = optional
organizationName = optional
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = {name}
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
""")
        _genkey(self.key, key)
        # Self-signed with `openssl ca -selfsign` so the CA's validity can start a year back: an
        # expired leaf (valid in the past) must still be inside its issuer's validity.
        csr = os.path.join(directory, "ca.csr")
        _openssl("req", "-new", "-config", self.config, "-key", self.key, "-out", csr,
                 "-subj", f"/CN={name}/O=s2s-proxy tests")
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        _openssl("ca", "-batch", "-notext", "-selfsign", "-config", self.config, "-keyfile", self.key,
                 "-extensions", "v3_ca", "-in", csr, "-out", self.cert,
                 "-startdate", _asn1_time(now - datetime.timedelta(days=365)),
                 "-enddate", _asn1_time(now + datetime.timedelta(days=days)))
        os.chmod(self.cert, 0o644)

    def issue(self, domain, *, sans=None, srv_ids=(), xmpp_addrs=(), ips=(), cn=None, days=30,
              expired=False, not_yet_valid=False, key="ec", server_auth=True, client_auth=True, name=None):
        """Issue a leaf for `domain`. `sans`: DNS names (default [domain]; [] for none). `expired`:
        valid from days+2 days ago until yesterday. `not_yet_valid`: valid from tomorrow. `name`:
        file basename (default: domain, made unique if reused)."""
        sans = [domain] if sans is None else list(sans)
        self._n += 1
        base = name or f"{domain}-{self._n}"
        d = self.dir
        keyp = os.path.join(d, base + ".key")
        csr = os.path.join(d, base + ".csr")
        cert = os.path.join(d, base + ".crt")
        ext = os.path.join(d, base + ".ext")
        eku = ",".join(x for x, on in (("serverAuth", server_auth), ("clientAuth", client_auth)) if on)
        lines = ["[ leaf ]", "basicConstraints = critical,CA:FALSE",
                 "keyUsage = critical,digitalSignature" + (",keyEncipherment" if key == "rsa" else ""),
                 "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"]
        if eku:
            lines.append(f"extendedKeyUsage = {eku}")
        san = _san_line(sans, srv_ids, xmpp_addrs, ips)
        if san:
            lines.append(f"subjectAltName = {san}")
        with open(ext, "w") as f:
            f.write("\n".join(lines) + "\n")
        _genkey(keyp, key)
        subject = f"/CN={cn if cn is not None else domain}" if (cn is None or cn) else "/O=no common name"
        _openssl("req", "-new", "-key", keyp, "-out", csr, "-subj", subject, "-config", self.config)
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        if expired:
            start, end = now - datetime.timedelta(days=days + 2), now - datetime.timedelta(days=1)
        elif not_yet_valid:
            start, end = now + datetime.timedelta(days=1), now + datetime.timedelta(days=days + 1)
        else:
            start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days)
        _openssl("ca", "-batch", "-notext", "-config", self.config, "-extfile", ext, "-extensions", "leaf",
                 "-in", csr, "-out", cert, "-startdate", _asn1_time(start), "-enddate", _asn1_time(end))
        os.chmod(cert, 0o644)
        chain = _cat(os.path.join(d, base + ".chain.crt"), cert, self.cert)
        pem = _cat(os.path.join(d, base + ".pem"), keyp, cert, self.cert)
        return Issued(domain, cert, keyp, chain, pem, self.cert)


def self_signed(directory, domain, *, sans=None, key="ec", days=30, name=None):
    """A self-signed leaf for `domain` (SAN DNS names `sans`, default [domain])."""
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    sans = [domain] if sans is None else list(sans)
    base = os.path.join(directory, name or f"{domain}-selfsigned")
    keyp, cert = base + ".key", base + ".crt"
    _genkey(keyp, key)
    args = ["req", "-new", "-x509", "-key", keyp, "-out", cert, "-days", str(days), "-subj", f"/CN={domain}",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "extendedKeyUsage=serverAuth,clientAuth"]
    if sans:
        args += ["-addext", "subjectAltName=" + ",".join(f"DNS:{s}" for s in sans)]
    _openssl(*args)
    os.chmod(cert, 0o644)
    pem = _cat(base + ".pem", keyp, cert)
    return Issued(domain, cert, keyp, cert, pem, cert)
