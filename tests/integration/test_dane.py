#!/usr/bin/python3
"""DANE for outgoing links (s2s.outgoing.dane) against real DNSSEC: nsd serves a `test.` zone signed
at test time (ldns-signzone) and an unsigned child zone `insecure.test.` (delegated without DS), and a
validating unbound that holds the signed zone's trust anchor is proxy A's only nameserver
(kit.dnssec). alice@a.test is on a real Prosody 0.12 in proxied mode behind proxy A. Each remote
domain is a scripted XMPP server of this test on its own loopback address (TlsRemote): it offers
STARTTLS, does TLS with a self-signed certificate no CA vouches for, and records how far proxy A
gets on the encrypted stream (its new header, its dialback request).

    match.test     SRV -> xmpp.match.test; TLSA 3 1 1 = the key of the certificate it presents
    mismatch.test  SRV -> xmpp.mismatch.test; TLSA 3 1 1 = another key
    bogus.test     SRV -> xmpp.bogus.test; the TLSA RRset's signature is broken (unbound: SERVFAIL)
    insecure.test  (unsigned zone) SRV -> xmpp.insecure.test; TLSA 3 1 1 = another key
    plain.test     SRV -> xmpp.plain.test, a server that offers no STARTTLS; TLSA 3 1 1 = its key
    ta.test        SRV -> xmpp.ta.test, presenting a chain from the test's CA (which proxy A does not
                   trust) for the name xmpp.ta.test; TLSA 2 0 1 = that CA's certificate

  Dane.test_match         the link goes on after TLS to dialback although match.test is in
                          s2s.secure_domains and its certificate has no CA and names nobody: the
                          DANE-EE match authenticated it; counted match, logged.
  Dane.test_mismatch      the handshake happens, then proxy A sends nothing more (no fallback to
                          dialback or plaintext); alice's message comes back saying the certificate
                          does not match the TLSA records; counted mismatch.
  Dane.test_bogus         nothing connects to xmpp.bogus.test; the message comes back saying the TLSA
                          lookup failed; counted bogus.
  Dane.test_insecure      unsigned zone: the TLSA record is not used and the link goes on as without
                          DANE (TLS with an untrusted certificate, then dialback); counted insecure.
  Dane.test_trust_anchor  DANE-TA: the chain verifies up to the published CA and names the SRV
                          target (RFC 7673 §4), so the link goes on to dialback although ta.test is
                          in s2s.secure_domains; counted match.
  Dane.test_no_plaintext  usable records and a server that offers no TLS: no dialback over the plain
                          stream; the message comes back saying the stream is not encrypted.

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_dane.py [Class[.test] ...]
    BUILD=build /usr/bin/python3 tests/integration/run_all.py test_dane
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import socket
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.dnssec import SignedDns, tlsa_digest  # noqa: E402
from kit.suite import token  # noqa: E402

IP_PROSODY_A, IP_PROXY_A = "127.0.0.150", "127.0.0.151"
IP_NS, IP_RESOLVER = "127.0.0.152", "127.0.0.153"
REMOTES = {"match": "127.0.0.154", "mismatch": "127.0.0.155", "bogus": "127.0.0.156", "insecure": "127.0.0.157",
           "plain": "127.0.0.158", "ta": "127.0.0.159"}

T_STEP = 10                      # s: one link's progress or one bounce

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test",))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class TlsRemote:
    """A remote XMPP server of the test on `host`: per connection, answers the stream header with
    features offering STARTTLS, answers <starttls/> with <proceed/>, does TLS with `cert`, then
    answers the new header with dialback features; with starttls=False it offers dialback on the
    plain stream instead. `.stages()`: for each connection so far, the stages reached: tcp, header,
    starttls, tls, tls-header, db-result."""

    def __init__(self, host, domain, cert, *, starttls=True):
        self.domain = domain
        self.starttls = starttls
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.chain, cert.key)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((kit.procs.check_loopback(host), 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = []
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stages(self):
        with self.lock:
            return [list(c) for c in self.connections]

    def reached(self, stage):
        return any(stage in c for c in self.stages())

    def _run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            stages = ["tcp"]
            with self.lock:
                self.connections.append(stages)
            threading.Thread(target=self._serve, args=(conn, stages), daemon=True).start()

    def _header(self, n):
        return (f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                f"xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
                f"from='{self.domain}' to='a.test' id='dane-{n}' version='1.0'>").encode()

    @staticmethod
    def _read_until(conn, pattern, deadline):
        data = b""
        while time.monotonic() < deadline:
            if re.search(pattern, data):
                return True
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                return False
            if not chunk:
                return False
            data += chunk
        return False

    def _serve(self, conn, stages):
        deadline = time.monotonic() + 3 * T_STEP
        conn.settimeout(0.5)
        try:
            if not self._read_until(conn, rb"<stream:stream[^>]*>", deadline):
                return
            stages.append("header")
            if not self.starttls:
                conn.sendall(self._header(1) + b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/>"
                                               b"</stream:features>")
                if self._read_until(conn, rb"<db:result", deadline):
                    stages.append("db-result")
                return
            conn.sendall(self._header(1) + b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                                           b"</stream:features>")
            if not self._read_until(conn, rb"<starttls", deadline):
                return
            stages.append("starttls")
            conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            conn.settimeout(T_STEP)
            try:
                conn = self.ctx.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                return
            conn.settimeout(0.5)
            stages.append("tls")
            if not self._read_until(conn, rb"<stream:stream[^>]*>", deadline):
                return
            stages.append("tls-header")
            conn.sendall(self._header(2) + b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'/>"
                                           b"</stream:features>")
            if self._read_until(conn, rb"<db:result", deadline):
                stages.append("db-result")
        finally:
            conn.close()

    def close(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)


class Dane(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            ca, certs = MODULE["ca"], MODULE["certs"]
            certdir = cls.procs.mkdir("dane-certs")
            # Certificates no CA vouches for, for names that are nobody's: only DANE-EE can accept them.
            cls.key_m = kit.self_signed(certdir, "nobody.example", name="presented")
            cls.key_x = kit.self_signed(certdir, "other.example", name="other")
            issued = ca.issue("xmpp.ta.test")        # for the SRV target's name only
            cls.remotes = {}
            for name, ip in REMOTES.items():
                cert = cls.key_m if name in ("match", "bogus") else issued if name == "ta" else cls.key_x
                cls.remotes[name] = TlsRemote(ip, f"{name}.test", cert, starttls=name != "plain")
                cls.procs.callback(cls.remotes[name].close)
            cls.dns = SignedDns(cls.procs, ns_ip=IP_NS, resolver_ip=IP_RESOLVER)
            good = tlsa_digest(cls.key_m.cert)      # match and bogus present key_m; the others key_x
            signed = cls.dns.zone("test", signed=True)
            for name in ("match", "mismatch", "bogus", "plain"):
                r = cls.remotes[name]
                (signed.add(f"_xmpp-server._tcp.{name}", "SRV", f"0 0 {r.port} xmpp.{name}")
                       .add(f"xmpp.{name}", "A", REMOTES[name])
                       .add(f"_{r.port}._tcp.xmpp.{name}", "TLSA", f"3 1 1 {good}"))
            rt = cls.remotes["ta"]
            (signed.add("_xmpp-server._tcp.ta", "SRV", f"0 0 {rt.port} xmpp.ta")
                   .add("xmpp.ta", "A", REMOTES["ta"])
                   .add(f"_{rt.port}._tcp.xmpp.ta", "TLSA", f"2 0 1 {tlsa_digest(ca.cert, selector=0)}"))
            ri = cls.remotes["insecure"]
            (cls.dns.zone("insecure.test", signed=False)
                .add("_xmpp-server._tcp", "SRV", f"0 0 {ri.port} xmpp")
                .add("xmpp", "A", REMOTES["insecure"])
                .add(f"_{ri.port}._tcp.xmpp", "TLSA", f"3 1 1 {good}"))
            cls.dns.break_signature(f"_{cls.remotes['bogus'].port}._tcp.xmpp.bogus.test", "TLSA")
            cls.dns.start()

            cls.prosody_dns = kit.Dnsmasq(cls.procs, kit.Zone())    # Prosody A's resolver: nothing in it
            cls.pa = kit.S2SProxy(cls.procs, "a", ip=IP_PROXY_A, hosts=["a.test"])
            cls.a = kit.Prosody(cls.procs, "a", ip=IP_PROSODY_A, dns=cls.prosody_dns, ca=ca, mode="proxied",
                                proxy=cls.pa.local_addr)
            cls.a.add_host("a.test", users={"alice": "alice-pw"}, cert=certs["a.test"])
            cls.pa.local_server = (cls.a.ip, cls.a.s2s_port)
            cls.pa.outgoing_tls = {"mode": "starttls"}
            cls.pa.set("s2s.outgoing.dane", True)
            cls.pa.set("s2s.secure_domains", ["match.test", "ta.test"])
            cls.pa.set("s2s.outgoing.dns.nameservers", [cls.dns.resolver])
            cls.pa.set("s2s.outgoing.dns.timeout", 2)
            cls.pa.set("s2s.outgoing.dns.retries", 1)
            cls.pa.set("s2s.outgoing.ip_versions", [4])
            cls.pa.set("s2s.outgoing.denied_networks", [])        # the remotes are on loopback
            cls.pa.set("s2s.outgoing.state_timeout", 3000)
            cls.pa.set("s2s.outgoing.max_retry_delay", 1)
            cls.prosody_dns.start()
            kit.suite.start_all(cls.a, cls.pa)
            cls.alice = clients.Account.on(cls.a, "alice", "a.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def dane_count(self, outcome):
        return self.pa.metrics().get(f's2s_proxy_dane_total{{outcome="{outcome}"}}', 0)

    def send(self, domain, linger=1.0):
        return clients.send(self.alice, f"bob@{domain}", [token(domain.split(".")[0])], linger=linger,
                            timeout=T_STEP + 20)

    def assertBounced(self, domain, text_pattern):
        r = self.send(domain, linger=T_STEP)
        bounced = r.data.get("bounced") or []
        self.assertEqual(len(bounced), 1, f"the message must come back once: {r.describe()}")
        e = bounced[0]["error"] or {}
        self.assertEqual(e.get("condition"), "remote-server-not-found", r.describe())
        self.assertRegex(e.get("text") or "", text_pattern, r.describe())

    def assertLinkAuthenticated(self, name):
        remote = self.remotes[name]
        kit.wait_until(lambda: remote.reached("db-result"), T_STEP,
                       f"proxy A's dialback request to {name}.test on the encrypted stream", proc=self.pa.proc)

    def assertGoesOn(self, name, outcome, log_pattern):
        """alice writes to bob@NAME.test: proxy A's link reaches dialback on the encrypted stream,
        one `outcome` is counted and the log says why."""
        before = self.dane_count(outcome)
        mark = self.pa.log_mark()
        self.send(f"{name}.test")
        self.assertLinkAuthenticated(name)
        self.assertEqual(self.dane_count(outcome), before + 1)
        self.assertRegex(self.pa.log_text(mark), log_pattern)

    def assertRefused(self, name, outcome, bounce_pattern, log_pattern):
        """alice writes to bob@NAME.test: the message comes back saying why, `outcome` is counted
        and the log says why."""
        before = self.dane_count(outcome)
        mark = self.pa.log_mark()
        self.assertBounced(f"{name}.test", bounce_pattern)
        self.assertGreaterEqual(self.dane_count(outcome), before + 1)
        self.assertRegex(self.pa.log_text(mark), log_pattern)

    def test_match(self):
        self.assertGoesOn("match", "match", r"a\.test->match\.test\] dane: the certificate of match\.test \(at "
                                            r"xmpp\.match\.test\) matches its TLSA records: DANE-EE 3 1 1 ")

    def test_trust_anchor(self):
        self.assertGoesOn("ta", "match", r"a\.test->ta\.test\] dane: the certificate of ta\.test \(at xmpp\.ta\.test\) "
                                         r"matches its TLSA records: DANE-TA 2 0 1 ")

    def test_mismatch(self):
        self.assertRefused("mismatch", "mismatch",
                           r"the certificate of mismatch\.test \(at xmpp\.mismatch\.test\) does not match its DANE "
                           r"TLSA records", r"a\.test->mismatch\.test\] dane: the certificate of mismatch\.test")
        stages = self.remotes["mismatch"].stages()
        self.assertTrue(stages and all("tls" in s for s in stages), stages)
        self.assertFalse(any("tls-header" in s for s in stages), f"nothing may follow the handshake: {stages}")

    def test_bogus(self):
        self.assertRefused("bogus", "bogus", r"not connecting to the XMPP servers of bogus\.test: TLSA lookup failed",
                           r"bogus\.test\] dane: _\d+\._tcp\.xmpp\.bogus\.test: TLSA lookup failed")
        self.assertEqual(self.remotes["bogus"].stages(), [], "nothing may connect to xmpp.bogus.test")

    def test_insecure(self):
        self.assertGoesOn("insecure", "insecure", r"insecure\.test\] dane: _\d+\._tcp\.xmpp\.insecure\.test: the SRV "
                                                  r"or address answers were not authenticated")

    def test_no_plaintext(self):
        self.assertBounced("plain.test", r"plain\.test publishes DANE TLSA records for xmpp\.plain\.test, but the "
                                         r"stream is not encrypted")
        stages = self.remotes["plain"].stages()
        self.assertTrue(stages and all("header" in s for s in stages), stages)
        self.assertFalse(any("db-result" in s for s in stages), f"no dialback over the plain stream: {stages}")


if __name__ == "__main__":
    sys.exit(kit.runner.main())
