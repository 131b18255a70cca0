#!/usr/bin/python3
"""Hostile peers and TLS: a secure domain that offers no TLS or the wrong certificate, and a revoked
peer that tries to resume its TLS session after the operator's SIGHUP.

  SecureDomainOutbound  a.test is a real Prosody 0.12 behind s2s-proxy A (127.0.0.12), which has
                        s2s.secure_domains = ["b.test"] and s2s.use_starttls = "false", trusting
                        the test CA (an outgoing tls subsection: STARTTLS when offered). "b.test" is a scripted server in this file
                        (127.0.0.3, reached by s2s.outgoing.address) that answers every dialback
                        with type='valid' and records what it receives. (a) It offers no STARTTLS:
                        alice's message comes back with remote-server-not-found and a text saying
                        b.test is a secure domain and offered no TLS; the fake b.test receives no
                        stanza. (b) It offers STARTTLS with a certificate for c.test: the text says
                        the certificate is not valid for b.test; no stanza reaches it. (c) With a
                        certificate for b.test the message is delivered, over TLS. Each refusal is counted on /metrics.
  RevokedResumption     s2s-proxy A with a direct-TLS listener (test CA, a CRL from it). A client
                        with b.test's certificate connects, is offered SASL EXTERNAL for b.test and
                        saves its TLS session; a second connection resumes it (the control: the
                        listener does resume sessions). The CA revokes the certificate, the CRL file
                        is rewritten and the proxy gets SIGHUP; the client resumes with the saved
                        session: no session is resumed, EXTERNAL is not offered, and an <auth/>
                        for b.test is refused.

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_hostile_tls.py [Class[.test] ...]
    BUILD=build /usr/bin/python3 tests/integration/run_all.py test_hostile_tls
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.ca import _openssl  # noqa: E402
from kit.peer import stream_header  # noqa: E402
from kit.suite import start_all, token  # noqa: E402

IP_PROSODY_A, IP_PROXY_A = "127.0.0.2", "127.0.0.12"
IP_FAKE_B = "127.0.0.3"
T_MSG = 15

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "b.test", "c.test"))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class FakeRemote:
    """A scripted "b.test" on loopback: for each connection it answers our header with its own and
    features (STARTTLS when `cert` is given, then dialback), takes STARTTLS with `cert`, answers
    every db:result with type='valid', and records everything it receives, with whether TLS was
    on. A hostile server: it would take anything it is sent."""

    def __init__(self, host, *, cert=None, domain="b.test"):
        self.host = kit.procs.check_loopback(host)
        self.cert, self.domain = cert, domain
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.received = []             # (tls: bool, text)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()

    def text(self, tls=None):
        with self.lock:
            return "".join(t for on, t in self.received if tls is None or on == tls)

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _read(self, conn, buf, pattern, tls):
        """Read into buf[0] until `pattern` is in it (None: until one more chunk came); False on
        EOF, error, stop or a 10 s deadline."""
        deadline = time.monotonic() + 10
        before = len(buf[0])
        while not (re.search(pattern, buf[0], re.S) if pattern else len(buf[0]) > before):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return False
            conn.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
            try:
                data = conn.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except OSError:
                return False
            if not data:
                return False
            text = data.decode("utf-8", "replace")
            with self.lock:
                self.received.append((tls, text))
            buf[0] += text
        return True

    def _session(self, conn):
        try:
            tls, buf, headers, answered = False, [""], 0, 0
            features = "<dialback xmlns='urn:xmpp:features:dialback'/>"
            while not self.stopping.is_set():
                if headers == 0 and re.search(r"<stream:stream[^>]*>", buf[0]):
                    headers = 1
                    offer = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" if self.cert and not tls else ""
                    conn.sendall(self._header(1 + tls) +
                                 f"<stream:features>{offer}{features}</stream:features>".encode())
                if not tls and self.cert and "<starttls" in buf[0]:
                    conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(self.cert.chain, self.cert.key)
                    conn.settimeout(10)
                    conn = ctx.wrap_socket(conn, server_side=True)
                    tls, buf, headers, answered = True, [""], 0, 0
                    continue
                requests = re.findall(r"<db:result\b[^>]*\bfrom=['\"]([^'\"]+)['\"]", buf[0])
                for local in requests[answered:]:
                    conn.sendall(f"<db:result xmlns:db='jabber:server:dialback' from='{self.domain}' to='{local}' "
                                 f"type='valid'/>".encode())
                answered = len(requests)
                if not self._read(conn, buf, None, tls):
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def _header(self, n):
        return ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
                "xmlns:stream='http://etherx.jabber.org/streams' from='%s' to='a.test' id='fake-%d' "
                "version='1.0'>" % (self.domain, n)).encode()


class SecureDomainOutbound(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            cls.ca, cls.certs = MODULE["ca"], MODULE["certs"]
            cls.pa = kit.S2SProxy(cls.procs, "a", ip=IP_PROXY_A, hosts=["a.test"])
            cls.dns = kit.Dnsmasq(cls.procs, kit.Zone())
            cls.a = kit.Prosody(cls.procs, "a", ip=IP_PROSODY_A, dns=cls.dns, ca=cls.ca, mode="proxied",
                                proxy=cls.pa.local_addr)
            cls.a.add_host("a.test", users={"alice": "alice-pw"}, cert=cls.certs["a.test"])
            cls.pa.local_server = (cls.a.ip, cls.a.s2s_port)
            # use_starttls stays "false"; the outgoing tls subsection (cacertfile) means STARTTLS
            # when offered, and s2s.secure_domains makes it a must toward b.test
            cls.pa.set("s2s.secure_domains", ["b.test"])
            cls.pa.set("s2s.outgoing.tls.cacertfile", cls.ca.cert)
            cls.pa.set("s2s.outgoing.max_retry_delay", 1)
            cls.dns.start()
            start_all(cls.a, cls.pa)
            cls.alice = clients.Account.on(cls.a, "alice", "a.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def remote(self, cert=None):
        """A fake b.test (with `cert` it offers STARTTLS) that proxy A reaches: SIGHUP with the route."""
        fake = FakeRemote(IP_FAKE_B, cert=cert)
        self.addCleanup(fake.stop)
        self.pa.route("b.test", IP_FAKE_B, fake.port)
        mark = self.pa.log_mark()
        self.pa.write_config()
        self.pa.signal(signal.SIGHUP)
        self.pa.wait_log(r"reloaded: SIGHUP", 10, since=mark)
        # past the backoff of an earlier test's failure
        kit.procs.wait_until(lambda: self.pa.metrics().get("s2s_proxy_hosts_in_backoff", 1) == 0, 10,
                             "no host in backoff")
        return fake

    def refusals(self, reason):
        return self.pa.metrics().get(
            f's2s_proxy_secure_domain_refusals_total{{direction="outbound",reason="{reason}"}}', 0)

    def send_and_expect_bounce(self, fake, reason, text_re):
        before = self.refusals(reason)
        body = token("secure")
        r = clients.send(self.alice, "bob@b.test", [body], linger=10, timeout=T_MSG)
        bounced = r.data.get("bounced") or []
        self.assertEqual(len(bounced), 1, f"alice should get exactly one error back: {r.describe()}")
        b = bounced[0]
        self.assertEqual(b["error"]["condition"], "remote-server-not-found", r.describe())
        self.assertRegex(b["error"]["text"] or "", text_re, r.describe())
        self.assertNotIn(body, fake.text(), "the message reached the fake b.test")
        self.assertNotRegex(fake.text(), r"<message\b", "a stanza reached the fake b.test")
        self.assertEqual(self.refusals(reason), before + 1)

    def test_a_no_starttls_offered_bounces(self):
        fake = self.remote()
        self.send_and_expect_bounce(
            fake, "no_tls", r"^s2s to b\.test failed: b\.test is a secure domain \(s2s\.secure_domains\) "
                            r"and offered no TLS; next attempt in \d+ s$")
        self.assertRegex(fake.text(tls=False), r"<stream:stream\b", "proxy A never reached the fake b.test")
        self.assertNotIn("<db:result", fake.text(), "dialback was tried in plaintext")

    def test_b_certificate_for_another_name_bounces(self):
        fake = self.remote(cert=self.certs["c.test"])
        self.send_and_expect_bounce(
            fake, "certificate", r"^s2s to b\.test failed: the certificate of b\.test is not valid for it "
                                 r"\(certificate for another name: it is for c\.test\); next attempt in \d+ s$")
        self.assertIn("<starttls", fake.text(tls=False))
        self.assertNotIn("<db:result", fake.text(), "dialback was tried with a certificate for c.test")

    def test_c_valid_certificate_delivers_over_tls(self):
        fake = self.remote(cert=self.certs["b.test"])
        body = token("secure-ok")
        r = clients.send(self.alice, "bob@b.test", [body], linger=2, timeout=T_MSG)
        self.assertEqual(r.data.get("bounced") or [], [], r.describe())
        kit.procs.wait_until(lambda: body in fake.text(tls=True), 10, "the message at the fake b.test over TLS")
        self.assertNotIn(body, fake.text(tls=False))
        self.assertNotRegex(fake.text(tls=False), r"<db:result|<message\b")


class SecureDomainInbound(unittest.TestCase):
    """The inbound side of the same rule: s2s-proxy A (STARTTLS offered, test CA, a.test's
    certificate) with s2s.secure_domains = ["b.test"]. A raw peer claiming b.test by dialback, on a
    plain stream or over TLS with a certificate for c.test, is refused (not-authorized) without a
    verification being started, and counted; SASL EXTERNAL is not offered for b.test."""

    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            cls.ca, cls.certs = MODULE["ca"], MODULE["certs"]
            cls.pa = kit.S2SProxy(cls.procs, "in", ip=IP_PROXY_A, hosts=["a.test"])
            cls.pa.local_server = ("127.0.0.1", kit.procs.free_port())   # nothing is routed to it
            cls.pa.tls(cls.ca, mode="starttls", cert=cls.certs["a.test"])
            cls.pa.set("s2s.secure_domains", ["b.test"])
            cls.pa.start()
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def claim_b_by_dialback(self, peer):
        key = 'direction="inbound",reason="dialback_without_certificate"'
        before = self.pa.metrics().get(f"s2s_proxy_secure_domain_refusals_total{{{key}}}", 0)
        mark = self.pa.log_mark()
        peer.send("<db:result from='b.test' to='a.test'>0123456789abcdef</db:result>")
        peer.read_until(r"<db:result\b[^>]*type=['\"]error['\"].*?</db:result>")
        self.assertRegex(peer.received, r"<not-authorized\b")
        self.assertIn("b.test must present a certificate valid for its domain", peer.received)
        self.assertNotRegex(peer.received, r"type=['\"]valid['\"]")
        self.pa.wait_log(r"\[c\d+ a\.test->b\.test\] refused: dialback: a valid certificate is required "
                         r"\(s2s\.secure_domains\)", 5, since=mark)
        self.assertNotRegex(self.pa.log_text(mark), r"connecting: |authenticated: ")
        self.assertEqual(self.pa.metrics().get(f"s2s_proxy_secure_domain_refusals_total{{{key}}}", 0), before + 1)

    def test_plain_dialback_refused(self):
        with kit.RawPeer(*self.pa.public_addr) as p:
            p.open_stream(to="a.test", from_="b.test")
            self.claim_b_by_dialback(p)

    def test_dialback_over_tls_with_another_names_certificate_refused(self):
        c = self.certs["c.test"]
        with kit.RawPeer(*self.pa.public_addr) as p:
            p.open_stream(to="a.test", from_="b.test")
            p.starttls(server_hostname="a.test", ca=self.ca.cert, cert=c.chain, key=c.key)
            p.open_stream(to="a.test", from_="b.test")
            self.assertNotIn("EXTERNAL", p.received)
            self.claim_b_by_dialback(p)


def make_crl(ca, path, revoke=None):
    """Write the CA's CRL (PEM) to `path`, revoking the certificate file `revoke` first."""
    if revoke:
        _openssl("ca", "-config", ca.config, "-revoke", revoke, "-crl_reason", "keyCompromise")
    _openssl("ca", "-config", ca.config, "-gencrl", "-crldays", "2", "-out", path + ".new")
    os.chmod(path + ".new", 0o644)
    os.replace(path + ".new", path)


class RevokedResumption(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            cls.ca = MODULE["ca"]
            cls.client = cls.ca.issue("b.test", name="b.test-revoked")
            cls.crl = os.path.join(cls.procs.mkdir("crl"), "ca.crl")
            make_crl(cls.ca, cls.crl)
            cls.pa = kit.S2SProxy(cls.procs, "r", ip=IP_PROXY_A, hosts=["a.test"])
            cls.pa.local_server = ("127.0.0.1", kit.procs.free_port())   # not needed: nothing is routed
            cls.pa.tls(cls.ca, mode="tls", cert=MODULE["certs"]["a.test"])
            cls.pa.listener_tls["crl_files"] = [cls.crl]
            cls.pa.start()
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def connect(self, session=None):
        """Direct TLS as b.test with its certificate, resuming `session` if given; the stream is
        opened. Returns (ssl socket, features text)."""
        ctx = self.tls_context
        raw = socket.create_connection(self.pa.public_addr, timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="a.test", session=session)
        self.addCleanup(s.close)
        s.sendall(stream_header(to="a.test", from_="b.test").encode())
        got = ""
        deadline = time.monotonic() + 10
        while "</stream:features>" not in got and time.monotonic() < deadline:
            data = s.recv(65536)
            if not data:
                break
            got += data.decode("utf-8", "replace")
        self.assertIn("</stream:features>", got)
        return s, got

    def test_revoked_certificate_cannot_resume_into_trust(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cafile=self.ca.cert)
        ctx.load_cert_chain(self.client.chain, self.client.key)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2      # session tickets in the handshake
        self.tls_context = ctx
        first, features = self.connect()
        self.assertIn("<mechanism>EXTERNAL</mechanism>", features, "b.test's valid certificate was not taken")
        session = first.session
        self.assertIsNotNone(session)
        self.assertTrue(session.has_ticket, "the listener issued no session ticket")
        first.close()
        # the control: before the revocation the listener resumes the session, and trusts it
        mark = self.pa.log_mark()
        again, features = self.connect(session)
        self.assertTrue(again.session_reused, "the listener did not resume a session at all")
        self.assertIn("<mechanism>EXTERNAL</mechanism>", features)
        self.pa.wait_log(r"tls: TLSv1\.2 \S+ \(resumed session\), peer certificate: valid", 5, since=mark)
        again.close()

        mark = self.pa.log_mark()
        make_crl(self.ca, self.crl, revoke=self.client.cert)
        self.pa.signal(signal.SIGHUP)
        self.pa.wait_log(r"reloaded: SIGHUP", 10, since=mark)

        late, features = self.connect(session)
        self.assertFalse(late.session_reused, "a session from before the new CRL was resumed")
        self.assertNotIn("EXTERNAL", features, "the revoked certificate is still taken for b.test")
        late.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
        got = ""
        deadline = time.monotonic() + 10
        while "</failure>" not in got and "<success" not in got and time.monotonic() < deadline:
            data = late.recv(65536)
            if not data:
                break
            got += data.decode("utf-8", "replace")
        self.assertNotIn("<success", got)
        self.assertRegex(got, r"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>"
                              r"<text>the certificate is not valid for b\.test \(untrusted certificate: [^)]*revoked")
        self.assertRegex(self.pa.log_text(mark), r"tls: TLSv1\.2 \S+, peer certificate: [^\n]*revoked")


if __name__ == "__main__":
    sys.exit(kit.runner.main())
