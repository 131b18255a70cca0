#!/usr/bin/python3
"""TLS semantics of the public side against the real binary, with real TLS peers on loopback and a
throwaway CA (tests/integration/kit/ca.py):

  ClientCertificates  two [[listen.s2s]] with their own tls subsection (no tls.mode: STARTTLS),
                      verify_mode "peer": the strict one (disconnect_on_failure at its default, true)
                      refuses `openssl s_client` without a certificate and with one from another CA
                      (counted in tls_failures_total{reason="certificate"}) and takes a valid one;
                      the lenient one (disconnect_on_failure = false) lets all three reach the stream.
  Sni                 s2s.outgoing.tls.server_name_indication.*: a Python TLS server behind an
                      s2s.outgoing.address override records the SNI name of the link the proxy opens
                      to check a dialback key: the remote domain by default, none with
                      enabled = false, the host setting instead when given.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import select
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from test_cli import free_port  # noqa: E402
from test_hostile_caps import Proxy, open_stream  # noqa: E402
from kit.ca import CA  # noqa: E402

HEADER = ("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
          "xmlns:db='jabber:server:dialback' to='a.test' from='b.test' version='1.0'>")


def s_client(port, ca, cert=None, timeout=20):
    """openssl s_client with STARTTLS (xmpp-server) to 127.0.0.1:port, presenting `cert` (an Issued)
    or none; after the handshake it opens a stream. Returns (reached the stream?, output)."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", "xmpp-server",
            "-xmpphost", "a.test", "-CAfile", ca, "-ign_eof"]
    if cert is not None:
        args += ["-cert", cert.cert, "-key", cert.key]
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    p.stdin.write(HEADER.encode() + b"\n")
    p.stdin.flush()
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], 0.2)
            if not ready:
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break   # s_client ended: the connection is gone
            out += chunk
            if b"</stream:features>" in out.split(b"-----END", 1)[-1]:
                return True, out.decode(errors="replace")
        return False, out.decode(errors="replace")
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        p.stdin.close()
        p.stdout.close()


def certificate_failures(proxy):
    return proxy.metrics().get('s2s_proxy_tls_failures_total{reason="certificate"}', 0)


class ClientCertificates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ca = CA(os.path.join(cls.tmp.name, "ca"))
        cls.other_ca = CA(os.path.join(cls.tmp.name, "other"), name="Unrelated CA")
        cls.a = cls.ca.issue("a.test")
        cls.b = cls.ca.issue("b.test")
        cls.foreign = cls.other_ca.issue("b.test")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def start(self, disconnect_line):
        return Proxy(self, extra=f"""
[[listen.s2s]]
  port = S2S_PORT
  ip_address = "127.0.0.1"
  tls.certfile = "{self.a.cert}"
  tls.keyfile = "{self.a.key}"
  tls.cacertfile = "{self.ca.cert}"
  {disconnect_line}
""")

    def test_strict_listener_refuses_missing_and_foreign_certificates(self):
        proxy = self.start("")
        before = certificate_failures(proxy)
        for name, cert in (("no certificate", None), ("another CA's", self.foreign)):
            with self.subTest(cert=name):
                reached, out = s_client(proxy.s2s_port, self.ca.cert, cert)
                self.assertFalse(reached, f"{name}: the strict listener let the stream go on:\n{out[-1500:]}")
        reached, out = s_client(proxy.s2s_port, self.ca.cert, self.b)
        self.assertTrue(reached, f"a valid certificate was refused:\n{out[-1500:]}")
        deadline = time.monotonic() + 10
        while certificate_failures(proxy) < before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(certificate_failures(proxy), before + 2)

    def test_lenient_listener_lets_every_client_reach_the_stream(self):
        proxy = self.start("tls.disconnect_on_failure = false")
        for name, cert in (("no certificate", None), ("another CA's", self.foreign), ("valid", self.b)):
            with self.subTest(cert=name):
                reached, out = s_client(proxy.s2s_port, self.ca.cert, cert)
                self.assertTrue(reached, f"{name}: the lenient listener refused it:\n{out[-1500:]}")
        self.assertEqual(certificate_failures(proxy), 0)


class SniServer:
    """A TLS server on 127.0.0.1 with `cert` that records the SNI name of each handshake (None for
    a ClientHello without one), until stopped."""

    def __init__(self, cert):
        self.names = []
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert.cert, cert.key)
        self.ctx.sni_callback = lambda sock, name, ctx: self.names.append(name)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass
            finally:
                conn.close()

    def wait_for_name(self, timeout=20):
        deadline = time.monotonic() + timeout
        while not self.names and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.names

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


class Sni(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ca = CA(os.path.join(cls.tmp.name, "ca"))
        cls.b = cls.ca.issue("b.test")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def sni_sent(self, settings):
        """The SNI names the proxy sends to b.test (direct TLS) with `settings` under [s2s]."""
        server = SniServer(self.b)
        self.addCleanup(server.stop)
        proxy = Proxy(self, extra=f"""
[s2s]
  outgoing.tls.mode = "tls"
  outgoing.address = [{{host = "b.test", ip_address = "127.0.0.1", port = {server.port}}}]
  {settings}
""")
        # A dialback claim for b.test makes the proxy open a link to b.test to check the key.
        with proxy.peer(timeout=30) as p:
            open_stream(p, from_="b.test")
            p.send("<db:result from='b.test' to='a.test'>key</db:result>")
            return list(server.wait_for_name())

    def test_default_sends_the_remote_domain(self):
        self.assertEqual(self.sni_sent("")[:1], ["b.test"])

    def test_enabled_false_sends_none(self):
        self.assertEqual(self.sni_sent("outgoing.tls.server_name_indication.enabled = false")[:1], [None])

    def test_host_is_sent_instead_of_the_remote_domain(self):
        self.assertEqual(self.sni_sent('outgoing.tls.server_name_indication.host = "sni.example"')[:1],
                         ["sni.example"])

    def test_https_protocol_still_sends_the_remote_domain(self):
        self.assertEqual(self.sni_sent('outgoing.tls.server_name_indication.protocol = "https"')[:1], ["b.test"])


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
