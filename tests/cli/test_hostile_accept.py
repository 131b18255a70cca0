#!/usr/bin/python3
"""What one client address can cost a public listener before anything is negotiated: the PROXY
header stage counts against max_connections_per_host and has its own short deadline, new
connections per address are rate-limited before any crypto, TLS handshakes in progress at once
are capped, and a refusal on a direct-TLS port is never plaintext XML.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli as cli  # noqa: E402
from test_cli import PROXY, curl, parse_metrics  # noqa: E402

CONFIG = """
[general]
  hosts = ["a.test"]
[local]
  server = "127.0.0.1:{local_server_port}"
[admin]
  listen = "127.0.0.1:{admin_port}"
[[listen.s2s]]
  port = {s2s_port}
  ip_address = "127.0.0.1"
{listener}
[[listen.local]]
  port = {local_port}
"""


def make_cert(directory):
    """A self-signed certificate for a.test with its key, in one PEM file."""
    key, crt = os.path.join(directory, "k.pem"), os.path.join(directory, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=a.test",
                    "-addext", "subjectAltName=DNS:a.test"], check=True, capture_output=True, timeout=30)
    pem = os.path.join(directory, "a.pem")
    with open(pem, "w") as out, open(crt) as c, open(key) as k:
        out.write(c.read() + k.read())
    return pem


def connect(port, source, timeout=5):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s


def first_bytes(sock, seconds=2.0):
    """What the server sends first: bytes, or b"" when it closes at once, or None when it says
    nothing within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(4096)
    except (socket.timeout, TimeoutError):
        return None
    except ConnectionResetError:
        return b""


def client_hello():
    """The bytes of a TLS ClientHello, made without a socket."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="a.test")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls_handshake(port, source):
    """True when a TLS handshake with the listener completes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = connect(port, source)
    try:
        with ctx.wrap_socket(s, server_hostname="a.test"):
            return True
    except (ssl.SSLError, OSError):
        return False
    finally:
        s.close()


class Listener(unittest.TestCase):
    """s2s-proxy with one public listener whose extra settings each test gives."""

    def start(self, listener, tls=False):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        if tls:
            pem = make_cert(self.dir.name)
            listener += f'\n  tls.mode = "tls"\n  tls.certfile = "{pem}"\n  tls.verify_mode = "none"'
        socks = []
        for _ in range(4):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        self.ports = dict(zip(("s2s_port", "local_port", "admin_port", "local_server_port"),
                              [sock.getsockname()[1] for sock in socks]))
        for sock in socks:
            sock.close()
        path = os.path.join(self.dir.name, "proxy.toml")
        with open(path, "w") as f:
            f.write(CONFIG.format(listener=listener, **self.ports))
        self.log_path = os.path.join(self.dir.name, "proxy.log")
        self.log = open(self.log_path, "w")
        self.addCleanup(self.log.close)
        self.proc = subprocess.Popen([PROXY, "--config", path, "--general.loglevel=info"], stdout=self.log,
                                     stderr=subprocess.STDOUT, text=True)
        self.addCleanup(self.stop)
        for port in (self.ports["s2s_port"], self.ports["admin_port"]):
            if not cli.Process.wait_listening(port, self.proc, seconds=15):
                self.proc.kill()
                self.proc.wait(timeout=5)
                self.fail("s2s-proxy did not start: " + self.log_text()[-2000:])
        self.port = self.ports["s2s_port"]
        # The probe connection above must be gone before the tests count connections.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.open_streams():
            time.sleep(0.05)
        self.assertEqual(self.open_streams(), 0)

    def open_streams(self):
        return sum(v for k, v in self.metrics().items() if k.startswith('s2s_proxy_connections{kind="s2s_in"'))

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()

    def hold(self, count, source):
        socks = [connect(self.port, source) for _ in range(count)]
        for s in socks:
            self.addCleanup(s.close)
        return socks

    def metrics(self):
        return parse_metrics(curl(f"http://127.0.0.1:{self.ports['admin_port']}/metrics")[1])

    def refused(self, limit):
        return self.metrics().get(f's2s_proxy_connections_refused_total{{limit="{limit}"}}', 0)


class ProxyHeaderStage(Listener):
    def test_silent_untrusted_senders_count_against_their_address(self):
        self.start('  proxy_protocol = true\n  proxy_trusted = ["127.0.0.200"]\n  max_connections = 20\n'
                   '  max_connections_per_host = 4\n  state_timeout = 30_000')
        held = self.hold(20, "127.0.0.7")
        refused = [s for s in held if first_bytes(s, 0.5) is not None]
        self.assertGreaterEqual(len(refused), 16, "one address held more than max_connections_per_host")
        # Another client is still served: it gets a stream header back.
        with connect(self.port, "127.0.0.8") as c:
            c.sendall(cli.STREAM_HEADER)
            got = cli.read_until(c, lambda g: b"<stream:features" in g or b"</stream:stream>" in g)
        self.assertIn(b"<stream:features", got)
        self.assertGreaterEqual(self.refused("max_connections_per_host"), 16)

    def test_the_header_stage_has_its_own_short_deadline(self):
        self.start('  proxy_protocol = true\n  proxy_trusted = ["127.0.0.1"]\n  state_timeout = 30_000')
        [s] = self.hold(1, "127.0.0.1")
        start = time.monotonic()
        self.assertIsNotNone(first_bytes(s, 10), "a trusted sender that sends no header is held")
        self.assertLess(time.monotonic() - start, 5)


class HandshakeRate(Listener):
    def test_connections_past_the_rate_are_closed_before_any_crypto(self):
        self.start("", tls=True)  # the default max_connection_rate_per_host
        hello = client_hello()
        answered = closed = 0
        for _ in range(60):
            with connect(self.port, "127.0.0.9") as s:
                s.sendall(hello)
                got = first_bytes(s, 2)
                if got:
                    self.assertEqual(got[0], 0x16, f"not a TLS record: {got[:40]!r}")
                    answered += 1
                else:
                    closed += 1
        self.assertLessEqual(answered, 35, "the rate limit let most ClientHellos through to the key exchange")
        self.assertGreaterEqual(closed, 25)
        self.assertTrue(tls_handshake(self.port, "127.0.0.10"), "another address was refused too")
        self.assertEqual(self.refused("max_connection_rate_per_host"), closed)

    def test_handshakes_in_progress_are_capped(self):
        self.start("  max_tls_handshakes = 2", tls=True)
        hello = client_hello()
        stuck = self.hold(2, "127.0.0.11")
        for s in stuck:
            s.sendall(hello)
            self.assertEqual(first_bytes(s, 2)[0], 0x16)
        with connect(self.port, "127.0.0.12") as s:
            s.sendall(hello)
            self.assertEqual(first_bytes(s, 2), b"", "a third handshake went ahead")
        self.assertEqual(self.refused("max_tls_handshakes"), 1)
        for s in stuck:
            s.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not tls_handshake(self.port, "127.0.0.12"):
            time.sleep(0.1)
        self.assertLess(time.monotonic(), deadline, "handshakes that ended were not released")

    def test_a_refusal_on_a_direct_tls_port_is_not_plaintext(self):
        self.start("  max_connections = 1", tls=True)
        self.hold(1, "127.0.0.13")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.open_streams() < 1:
            time.sleep(0.05)
        with connect(self.port, "127.0.0.14") as s:
            s.sendall(client_hello())
            self.assertEqual(first_bytes(s, 2), b"", "the refusal was sent into the TLS handshake")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
