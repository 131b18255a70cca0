#!/usr/bin/python3
"""Hostile peers against the real binary: what a peer that has not authenticated can make the proxy
hold (domain pairs per stream, dialback verifications, the backoff table, time) and what it learns
from our errors. Raw sockets on loopback; a throwaway CA (tests/integration/kit/ca.py) for the
wildcard certificate; a tiny DNS responder that answers NXDOMAIN to everything.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from test_cli import PROXY, curl, free_port, parse_metrics  # noqa: E402
from kit.ca import CA  # noqa: E402
from kit.peer import RawPeer, stream_header  # noqa: E402

NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
DB_RESULT = re.compile(r"<db:result\b[^>]*\bto='([^']*)'[^>]*\btype='(valid|invalid|error)'[^>]*?(?:/>|>(.*?)</db:result>)",
                       re.S)


def db_answers(text):
    """{claimed domain: (type, inner xml)} of every db:result answer in `text`."""
    return {m.group(1): (m.group(2), m.group(3) or "") for m in DB_RESULT.finditer(text)}


class NxDomain:
    """A UDP DNS server on 127.0.0.1 that answers every query with NXDOMAIN, until stopped."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                q, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) < 12:
                continue
            self.queries += 1
            qid, flags = struct.unpack("!HH", q[:4])
            rd = flags & 0x0100
            # QR, the question's RD, RA, rcode 3 (NXDOMAIN); the question echoed, no answers.
            header = struct.pack("!HHHHHH", qid, 0x8000 | rd | 0x0080 | 3, 1, 0, 0, 0)
            self.sock.sendto(header + q[12:], addr)

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


class Proxy:
    """s2s-proxy with a config of `extra` TOML on top of a minimal one; its log in a file."""

    def __init__(self, test, extra_general="", extra=""):
        self.dir = tempfile.TemporaryDirectory()
        test.addCleanup(self.dir.cleanup)
        self.s2s_port, self.local_port, self.admin_port, self.local_server_port = (free_port() for _ in range(4))
        text = f"""
[general]
  hosts = ["a.test"]
  loglevel = "notice"
  shutdown_timeout = 0
{extra_general}
[local]
  server = "127.0.0.1:{self.local_server_port}"
[admin]
  listen = "127.0.0.1:{self.admin_port}"
[[listen.local]]
  port = {self.local_port}
{extra}
"""
        if "[[listen.s2s]]" not in extra:
            text += f"""
[[listen.s2s]]
  port = {self.s2s_port}
  ip_address = "127.0.0.1"
"""
        text = text.replace("S2S_PORT", str(self.s2s_port))
        self.path = os.path.join(self.dir.name, "s2s.toml")
        with open(self.path, "w") as f:
            f.write(text)
        self.log_path = os.path.join(self.dir.name, "s2s.log")
        self.log = open(self.log_path, "w")
        test.addCleanup(self.log.close)
        self.proc = subprocess.Popen([PROXY, "--config", self.path], stdout=self.log, stderr=subprocess.STDOUT)
        test.addCleanup(self.stop)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.admin_port), timeout=0.5).close()
                socket.create_connection(("127.0.0.1", self.s2s_port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        with open(self.log_path) as f:
            test.fail("s2s-proxy did not start: " + f.read()[-2000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def metrics(self):
        code, text = curl(f"http://127.0.0.1:{self.admin_port}/metrics")
        assert code == 200, code
        return parse_metrics(text)

    def log_text(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def peer(self, **kw):
        return RawPeer("127.0.0.1", self.s2s_port, **kw)


def open_stream(p, from_="b.test"):
    p.send(stream_header(to="a.test", from_=from_))
    p.read_until(r"</stream:features>")


def features_within(proxy, seconds):
    """Seconds a new plain stream takes to get its features (fails past `seconds`)."""
    start = time.monotonic()
    with proxy.peer(timeout=seconds) as q:
        open_stream(q)
    return time.monotonic() - start


class DomainPairs(unittest.TestCase):
    """(a) One stream with a wildcard certificate claims 1,500 domains: past s2s.max_domain_pairs
    the claims are refused, and the process keeps serving others meanwhile."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.ca = CA(os.path.join(cls.tmp.name, "ca"))
        cls.a = cls.ca.issue("a.test")
        cls.wild = cls.ca.issue("*.b.test", sans=["*.b.test"], name="wild")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_claims_past_max_domain_pairs_are_refused_and_others_are_served(self):
        n = 1500
        proxy = Proxy(self, extra=f"""
[[listen.s2s]]
  port = S2S_PORT
  ip_address = "127.0.0.1"
  tls.mode = "starttls"
  tls.certfile = "{self.a.cert}"
  tls.keyfile = "{self.a.key}"
  tls.cacertfile = "{self.ca.cert}"
""")
        with proxy.peer(timeout=60) as p:
            open_stream(p, from_="x0.b.test")
            p.starttls(server_hostname="a.test", ca=self.ca.cert, cert=self.wild.cert, key=self.wild.key)
            p.send(stream_header(to="a.test", from_="x0.b.test"))
            p.read_until(r"</stream:features>")
            self.assertIn("urn:xmpp:features:bidi", p.received)
            p.send("<bidi xmlns='urn:xmpp:bidi'/>")  # each certified pair becomes a reverse route too
            p.send("".join(f"<db:result from='x{i}.b.test' to='a.test'>k</db:result>" for i in range(n)))
            # Meanwhile another peer is served at once.
            self.assertLess(features_within(proxy, 3), 3)
            deadline = time.monotonic() + 30
            while len(db_answers(p.received)) < n and time.monotonic() < deadline:
                p.read_for(0.2)
            answers = db_answers(p.received)
            self.assertEqual(len(answers), n, f"only {len(answers)} of {n} claims answered")
            valid = [d for d, (t, _) in answers.items() if t == "valid"]
            refused = [inner for d, (t, inner) in answers.items() if t == "error"]
            self.assertEqual(len(valid), 256)
            self.assertEqual(len(refused), n - 256)
            self.assertIn("<policy-violation", refused[0])
            self.assertIn("this stream may authenticate at most 256 domain pairs", refused[0])
            # The authenticated pairs work; the stream is still open.
            p.send("<message from='u@x255.b.test' to='v@a.test' id='m1'/>")
            p.read_for(0.3)
            self.assertFalse(p.closed_by_peer)
        m = proxy.metrics()
        self.assertEqual(m['s2s_proxy_limits_reached_total{limit="max_domain_pairs"}'], n - 256)


class Verifications(unittest.TestCase):
    def setUp(self):
        self.dns = NxDomain()
        self.addCleanup(self.dns.stop)

    def test_backoff_table_stays_bounded_under_many_unresolvable_domains(self):
        """(b) 600 distinct unresolvable claimed domains: the backoff table holds at most
        s2s.outgoing.max_hosts_in_backoff hosts; the rest are counted as evicted."""
        proxy = Proxy(self, extra=f"""
[s2s]
  outgoing.dns.nameservers = ["127.0.0.1:{self.dns.port}"]
  outgoing.max_hosts_in_backoff = 100
""")
        total, streams = 600, 4
        peers = [proxy.peer(timeout=20) for _ in range(streams)]
        for p in peers:
            self.addCleanup(p.close)
            open_stream(p)
        # Each stream keeps up to 8 claims under way (s2s.max_verifications_per_stream).
        next_domain = 0
        sent = {id(p): 0 for p in peers}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = sum(len(db_answers(p.received)) for p in peers)
            if done >= total:
                break
            for p in peers:
                while sent[id(p)] - len(db_answers(p.received)) < 8 and next_domain < total:
                    p.send(f"<db:result from='nx{next_domain}.test' to='a.test'>k</db:result>")
                    next_domain += 1
                    sent[id(p)] += 1
                p.read_for(0.02)
        answers = {}
        for p in peers:
            answers.update(db_answers(p.received))
        self.assertEqual(len(answers), total)
        self.assertTrue(all(t == "error" for t, _ in answers.values()))
        m = proxy.metrics()
        self.assertLessEqual(m["s2s_proxy_backoff_entries"], 100)
        self.assertGreaterEqual(m["s2s_proxy_backoff_entries"], 90)
        self.assertLessEqual(m["s2s_proxy_hosts_in_backoff"], 100)
        self.assertGreaterEqual(m['s2s_proxy_limits_reached_total{limit="max_hosts_in_backoff"}'], total - 100)
        self.assertEqual(m["s2s_proxy_dialback_verifications"], 0)

    def test_verifications_are_bounded_per_client_address(self):
        """Streams from one address share s2s.max_verifications_per_host (default 32): five streams
        of 8 claims each start 32 verifications; the other 8 claims are refused and counted."""
        # A DNS server that never answers keeps the verifications under way.
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        self.addCleanup(silent.close)
        proxy = Proxy(self, extra=f"""
[s2s]
  outgoing.dns.nameservers = ["127.0.0.1:{silent.getsockname()[1]}"]
""")
        peers = [proxy.peer(timeout=10) for _ in range(5)]
        for k, p in enumerate(peers):
            self.addCleanup(p.close)
            open_stream(p)
            p.send("".join(f"<db:result from='s{k}-{i}.test' to='a.test'>k</db:result>" for i in range(8)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(len(db_answers(p.received)) for p in peers) < 8:
            for p in peers:
                p.read_for(0.05)
        answers = {}
        for p in peers:
            answers.update(db_answers(p.received))
        self.assertEqual(len(answers), 8, answers)
        for t, inner in answers.values():
            self.assertEqual(t, "error")
            self.assertIn("<resource-constraint", inner)
            self.assertNotIn("127.0.0.1", inner)
        m = proxy.metrics()
        self.assertEqual(m["s2s_proxy_dialback_verifications"], 32)
        self.assertEqual(m['s2s_proxy_limits_reached_total{limit="max_verifications_per_host"}'], 8)
        self.assertIn("max_verifications_per_host reached", proxy.log_text())

    def test_a_verification_toward_a_closed_port_tells_the_peer_no_address(self):
        """(d) The authoritative server of the claimed domain is a closed port on loopback: the
        peer gets remote-server-not-found and a fixed sentence; address, port and errno go to the log."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]  # closed once the with block ends
        proxy = Proxy(self, extra=f"""
[s2s]
  outgoing.dns.nameservers = ["127.0.0.1:{self.dns.port}"]
  outgoing.address = [{{host = "closed.test", ip_address = "127.0.0.1", port = {closed_port}}}]
""")
        with proxy.peer() as p:
            open_stream(p, from_="closed.test")
            p.send("<db:result from='closed.test' to='a.test'>k</db:result>")
            p.read_until(r"<db:result\b[^>]*type='error'.*?</db:result>")
            answer = p.received
            # A second claim of the same domain now meets the backoff: also generic.
            p.send("<db:result from='closed.test' to='a2.test'>k</db:result><db:result from='closed.test' to='a.test'>k</db:result>")
            p.read_until(r"(<db:result\b[^>]*type='error'.*?</db:result>.*){3}")
            later = p.received
        for text in (answer, later):
            self.assertIn("remote-server-not-found", text)
            self.assertNotIn(str(closed_port), text)
            self.assertNotIn("127.0.0.1", text)
            self.assertNotIn("refused", text.lower())
        self.assertIn("the authoritative server for closed.test could not be reached", answer)
        log = proxy.log_text()
        self.assertIn(str(closed_port), log)  # the operator still sees what happened


class Deadlines(unittest.TestCase):
    def test_a_stream_that_sends_one_db_verify_and_idles_is_closed_after_state_timeout(self):
        """(c) Answering a db:verify does not give the stream the 600 s idle timeout."""
        proxy = Proxy(self, extra="""
[[listen.s2s]]
  port = S2S_PORT
  ip_address = "127.0.0.1"
  state_timeout = 1_000
""")
        with proxy.peer(timeout=10) as p:
            open_stream(p)
            p.send("<db:verify from='b.test' to='a.test' id='abc'>key</db:verify>")
            p.read_until(r"<db:verify\b[^>]*type='invalid'")
            start = time.monotonic()
            p.expect_closed(timeout=8)
            took = time.monotonic() - start
        self.assertLess(took, 4)
        self.assertGreater(took, 0.5)
        self.assertIn("connection-timeout", p.received)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
