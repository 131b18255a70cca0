"""DNSSEC for the tests, with real parts only: nsd (authoritative) serving zones signed at test time
with ldns-keygen / ldns-signzone (ldnsutils), and a validating unbound that holds the signed zone's
trust anchor and resolves nothing but those zones (stub-zones to nsd; no root, no network).

    dns = SignedDns(procs)
    dns.zone("test", signed=True).add("xmpp.b", "A", "127.0.0.3") \\
                                  .add("_5269._tcp.xmpp.b", "TLSA", "3 1 1 " + digest)
    dns.zone("insecure.test", signed=False).add("xmpp", "A", "127.0.0.4")   # delegated, no DS
    dns.break_signature("_5269._tcp.xmpp.bogus.test", "TLSA")               # bogus on purpose
    dns.start()
    dns.resolver                      # "127.0.0.70:PORT": unbound, for s2s.outgoing.dns.nameservers
    query_flags(name, "TLSA", dns.resolver_addr)   # -> (rcode, ad) with the DO bit set

A signed zone's child zone is delegated with NS and no DS (provably insecure, RFC 4035 §5.2); a
broken signature makes unbound answer SERVFAIL for that RRset (bogus). Both processes run in the
foreground on 127.0.0.x with high ports, are waited for with a deadline and stopped by PID (Procs).
"""
import base64
import os
import random
import shutil
import socket
import struct
import time

from .dns import _encode_name
from .procs import KitError, ProcessDied, Timeout, check_loopback, free_port, run

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
LDNS_KEYGEN = shutil.which("ldns-keygen") or "/usr/bin/ldns-keygen"
LDNS_SIGNZONE = shutil.which("ldns-signzone") or "/usr/bin/ldns-signzone"

TYPES = {"A": 1, "NS": 2, "SOA": 6, "AAAA": 28, "SRV": 33, "DS": 43, "DNSKEY": 48, "TLSA": 52}
RCODES = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}


class SignedZone:
    def __init__(self, origin, signed):
        self.origin = origin.rstrip(".")
        self.signed = signed
        self.records = []                    # (owner relative to origin or "@", type, rdata)

    def add(self, owner, rtype, rdata):
        self.records.append((owner, rtype, rdata))
        return self

    def text(self, ns_name, ns_ip, children):
        o = self.origin + "."
        lines = [f"$ORIGIN {o}", "$TTL 60",
                 f"@ IN SOA {ns_name}. hostmaster.{o} 1 3600 600 86400 60",
                 f"@ IN NS {ns_name}."]
        if ns_name.endswith("." + self.origin) or ns_name == self.origin:
            lines.append(f"{ns_name}. IN A {ns_ip}")
        for child in children:                # delegations: NS only, no DS (insecure children)
            lines.append(f"{child}. IN NS {ns_name}.")
        lines += [f"{owner} IN {rtype} {rdata}" for owner, rtype, rdata in self.records]
        return "\n".join(lines) + "\n"


class SignedDns:
    def __init__(self, procs, *, ns_ip="127.0.0.71", resolver_ip="127.0.0.70", name="dnssec"):
        for tool in (NSD, UNBOUND, LDNS_KEYGEN, LDNS_SIGNZONE):
            if not os.path.exists(tool):
                raise KitError(f"{tool} not found: install nsd, unbound and ldnsutils")
        self.procs = procs
        self.ns_ip = check_loopback(ns_ip)
        self.resolver_ip = check_loopback(resolver_ip)
        self.name = name
        self.dir = procs.mkdir(name)
        self.zones = {}
        self.broken = []                      # (owner fqdn, covered type)
        self.ns_port = self.resolver_port = None
        self.nsd = self.unbound = None
        self.anchors = []

    def zone(self, origin, *, signed=True):
        z = SignedZone(origin, signed)
        self.zones[z.origin] = z
        return z

    def break_signature(self, owner, rtype):
        self.broken.append((owner.rstrip(".") + ".", rtype))
        return self

    @property
    def resolver_addr(self):
        return (self.resolver_ip, self.resolver_port)

    @property
    def resolver(self):
        return f"{self.resolver_ip}:{self.resolver_port}"

    # -- zone files ---------------------------------------------------------------------------
    def _children(self, origin):
        return [o for o in self.zones if o.endswith("." + origin)]

    def _write_zones(self):
        ns_name = "ns." + min(self.zones, key=len)
        files = {}
        for origin, z in self.zones.items():
            path = os.path.join(self.dir, origin + ".zone")
            with open(path, "w") as f:
                f.write(z.text(ns_name, self.ns_ip, self._children(origin)))
            if z.signed:
                path = self._sign(origin, path)
            files[origin] = path
        return files

    def _sign(self, origin, path):
        keydir = self.procs.mkdir(self.name, "keys-" + origin)
        ksk = run([LDNS_KEYGEN, "-a", "ECDSAP256SHA256", "-k", origin + "."], cwd=keydir, timeout=30,
                  what="ldns-keygen (KSK)").stdout.strip()
        zsk = run([LDNS_KEYGEN, "-a", "ECDSAP256SHA256", origin + "."], cwd=keydir, timeout=30,
                  what="ldns-keygen (ZSK)").stdout.strip()
        run([LDNS_SIGNZONE, "-f", path + ".signed", path, os.path.join(keydir, zsk), os.path.join(keydir, ksk)],
            cwd=keydir, timeout=30, what="ldns-signzone")
        with open(os.path.join(keydir, ksk + ".ds")) as f:
            self.anchors.append(f.read().strip())
        self._corrupt(path + ".signed")
        return path + ".signed"

    def _corrupt(self, path):
        """Flips one byte in the signature of each broken RRset (the RRSIG stays well-formed)."""
        with open(path) as f:
            lines = f.read().splitlines()
        for owner, rtype in self.broken:
            for i, line in enumerate(lines):
                fields = line.split()
                if len(fields) > 5 and fields[0].lower() == owner.lower() and fields[3] == "RRSIG" and \
                        fields[4] == rtype:
                    sig = bytearray(base64.b64decode("".join(fields[12:])))
                    sig[len(sig) // 2] ^= 0x55
                    lines[i] = "\t".join(fields[:12] + [base64.b64encode(bytes(sig)).decode()])
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- processes ----------------------------------------------------------------------------
    def _nsd_conf(self, files):
        conf = os.path.join(self.dir, "nsd.conf")
        zones = "".join(f'zone:\n  name: "{o}."\n  zonefile: "{p}"\n' for o, p in files.items())
        with open(conf, "w") as f:
            f.write(f"""server:
  ip-address: {self.ns_ip}@{self.ns_port}
  port: {self.ns_port}
  username: ""
  chroot: ""
  zonesdir: "{self.dir}"
  database: ""
  zonelistfile: "{self.dir}/zone.list"
  xfrdfile: "{self.dir}/xfrd.state"
  xfrdir: "{self.dir}"
  pidfile: ""
  server-count: 1
  verbosity: 1
  do-ip6: no
remote-control:
  control-enable: no
{zones}""")
        return conf

    def _unbound_conf(self):
        conf = os.path.join(self.dir, "unbound.conf")
        anchors = os.path.join(self.dir, "anchors.ds")
        with open(anchors, "w") as f:
            f.write("\n".join(self.anchors) + "\n")
        stubs = "".join(f'stub-zone:\n  name: "{o}."\n  stub-addr: {self.ns_ip}@{self.ns_port}\n'
                        for o in self.zones)
        nodefault = "".join(f'  local-zone: "{o}." nodefault\n' for o in self.zones if "." not in o)
        with open(conf, "w") as f:
            f.write(f"""server:
  interface: {self.resolver_ip}
  port: {self.resolver_port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{self.dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  do-ip6: no
  do-not-query-localhost: no
  qname-minimisation: no
  module-config: "validator iterator"
  trust-anchor-file: "{anchors}"
  access-control: 127.0.0.0/8 allow
{nodefault}remote-control:
  control-enable: no
{stubs}""")
        return conf

    def start(self, timeout=15.0):
        files = self._write_zones()
        self.ns_port = free_port(self.ns_ip, udp=True)
        conf = self._nsd_conf(files)
        run([shutil.which("nsd-checkconf") or "/usr/sbin/nsd-checkconf", conf], timeout=15, what="nsd-checkconf")
        self.nsd = self.procs.start(self.name + "-nsd", [NSD, "-d", "-c", conf])
        self._wait(self.nsd, (self.ns_ip, self.ns_port), min(self.zones, key=len), timeout)
        self.resolver_port = free_port(self.resolver_ip, udp=True)
        conf = self._unbound_conf()
        run([shutil.which("unbound-checkconf") or "/usr/sbin/unbound-checkconf", conf], timeout=15,
            what="unbound-checkconf")
        self.unbound = self.procs.start(self.name + "-unbound", [UNBOUND, "-d", "-c", conf])
        self._wait(self.unbound, self.resolver_addr, min(self.zones, key=len), timeout)
        return self

    def _wait(self, proc, server, name, timeout):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if not proc.alive():
                raise ProcessDied(f"{proc.name} exited with {proc.returncode}\n{proc.tail()}")
            try:
                rcode, _ = query_flags(name, "SOA", server, timeout=0.5)
                if rcode == "NOERROR":
                    return
                last = rcode
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise Timeout(f"{proc.name} on {server[0]}:{server[1]} did not answer within {timeout}s ({last})\n"
                      f"{proc.tail()}")


def query_flags(name, qtype, server, timeout=2.0):
    """One UDP query with EDNS0 and the DO bit; returns (rcode name, AD set)."""
    host, port = server
    check_loopback(host)
    qid = random.randrange(65536)
    opt = b"\x00" + struct.pack(">HHIH", 41, 4096, 0x8000, 0)      # root, OPT, 4096, DO, no rdata
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1) + _encode_name(name) + \
        struct.pack(">HH", TYPES[qtype], 1) + opt
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        while True:
            msg, _ = s.recvfrom(65535)
            if len(msg) >= 12 and struct.unpack(">H", msg[:2])[0] == qid:
                flags = struct.unpack(">H", msg[2:4])[0]
                return RCODES.get(flags & 0xF, str(flags & 0xF)), bool(flags & 0x20)


def tlsa_digest(cert_path, selector=1):
    """The SHA-256 association data (hex) of a PEM certificate: its SubjectPublicKeyInfo
    (selector 1) or the whole certificate (selector 0), computed with openssl."""
    if selector == 1:
        der = run(["sh", "-c", f"openssl x509 -in {cert_path} -noout -pubkey | openssl pkey -pubin -outform DER "
                               "| openssl dgst -sha256 -r"], timeout=15, what="openssl (SPKI digest)").stdout
    else:
        der = run(["sh", "-c", f"openssl x509 -in {cert_path} -outform DER | openssl dgst -sha256 -r"], timeout=15,
                  what="openssl (certificate digest)").stdout
    return der.split()[0]

