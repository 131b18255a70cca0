#!/usr/bin/python3
"""Hostile peers against the stanza parser of the real binary: what one stanza may cost in memory
before and after authentication, how long it may take to arrive, and the process-wide budget for
unfinished stanzas.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli  # noqa: E402  (its helpers; importing names of its test classes would run them here)
from test_cli import PROXY, STREAM_HEADER, curl, free_port, minimal, parse_metrics, read_until  # noqa: E402

MESSAGE_START = b"<message from='romeo@b.test' to='juliet@a.test' type='chat'>"


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def wait_for(condition, seconds, what):
    """Polls condition() until it returns something true, or fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s")


class Proxy:
    """The binary with a config file, its log in a file, its admin endpoint for /metrics."""

    def __init__(self, test, extra=""):
        self.dir = tempfile.TemporaryDirectory()
        test.addCleanup(self.dir.cleanup)
        self.ports = {k: free_port() for k in ("s2s_port", "local_port", "admin_port", "local_server_port")}
        self.extra = extra
        self.path = os.path.join(self.dir.name, "sidecar.toml")
        self.write(extra)
        self.log = open(os.path.join(self.dir.name, "log"), "w+")
        test.addCleanup(self.log.close)
        self.proc = subprocess.Popen([PROXY, "--config", self.path, "--general.loglevel=notice"],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        test.addCleanup(self.stop)
        if not test_cli.Process.wait_listening(self.ports["admin_port"], self.proc, seconds=15):
            self.stop()
            self.log.seek(0)
            raise AssertionError("the proxy did not start: " + self.log.read()[-2000:])

    def write(self, extra):
        text = minimal(**self.ports)
        # [general] is the first table of the minimal config: general keys go right under it.
        general, rest = extra.split("\n--\n") if "\n--\n" in extra else ("", extra)
        text = text.replace("[general]\n", "[general]\n" + general + "\n", 1) + rest
        with open(self.path, "w") as f:
            f.write(text)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def metrics(self):
        code, text = curl(f"http://127.0.0.1:{self.ports['admin_port']}/metrics")
        assert code == 200, code
        return parse_metrics(text)

    def connect(self):
        """An unauthenticated stream: header sent, our header and features read."""
        sock = socket.create_connection(("127.0.0.1", self.ports["s2s_port"]), timeout=10)
        sock.sendall(STREAM_HEADER)
        got = read_until(sock, lambda g: b"</stream:features>" in g)
        assert b"</stream:features>" in got, got
        return sock


def send_quietly(sock, data, chunk=65536):
    """Sends data; stops without complaint when the proxy has closed the stream. Returns bytes sent."""
    sent = 0
    try:
        for i in range(0, len(data), chunk):
            sock.sendall(data[i:i + chunk])
            sent += len(data[i:i + chunk])
    except OSError:
        pass
    return sent


def until_closed(sock, seconds):
    """Everything the proxy sends until it closes the stream; None if it is still open after `seconds`."""
    sock.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return got
        if not chunk:
            return got
        got += chunk
    return None


class Authoritative(threading.Thread):
    """b.test's authoritative server as dialback sees it: answers every db:verify with valid."""

    def __init__(self):
        super().__init__(daemon=True)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(20)
        self.port = self.listener.getsockname()[1]
        self.conn = None

    def run(self):
        try:
            self.conn, _ = self.listener.accept()
            self.conn.settimeout(20)
            read_until(self.conn, lambda g: b">" in g.split(b"<stream:stream", 1)[-1])
            self.conn.sendall(b"<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
                              b"xmlns:stream='http://etherx.jabber.org/streams' from='b.test' to='a.test' "
                              b"id='auth1' version='1.0'><stream:features><dialback "
                              b"xmlns='urn:xmpp:features:dialback'/></stream:features>")
            got = read_until(self.conn, lambda g: b"</db:verify>" in g)
            m = re.search(rb"<db:verify[^>]*\bid=['\"]([^'\"]*)['\"]", got)
            if m:
                self.conn.sendall(b"<db:verify from='b.test' to='a.test' id='" + m.group(1) + b"' type='valid'/>")
            read_until(self.conn, lambda g: False)  # keep the link open until the proxy closes it
        except OSError:
            pass

    def close(self):
        for s in (self.conn, self.listener):
            if s is not None:
                s.close()


class HostileParser(unittest.TestCase):
    def test_unauthenticated_tree_bomb_is_cut_off_early_and_costs_little(self):
        """An unfinished <message> of 4 MiB of <a/> before authentication: it used to be built
        into a tree of ~64 bytes per 4-byte tag (about 100 MB here); now the stream ends at the
        unauthenticated limit (16 KiB) and the process barely grows."""
        proxy = Proxy(self)
        base = rss_bytes(proxy.proc.pid)
        sock = proxy.connect()
        self.addCleanup(sock.close)
        sent = send_quietly(sock, MESSAGE_START + b"<a/>" * (1 << 20))
        got = until_closed(sock, 10)
        grown = rss_bytes(proxy.proc.pid) - base
        self.assertLess(grown, 16 << 20, f"RSS grew by {grown >> 20} MiB")
        self.assertIsNotNone(got, f"the stream is still open after {sent} bytes")
        self.assertIn(b"policy-violation", got)
        m = proxy.metrics()
        self.assertEqual(m.get('s2s_proxy_stanza_limits_total{reason="stanza_size"}', 0) +
                         m.get('s2s_proxy_stanza_limits_total{reason="elements"}', 0) +
                         m.get('s2s_proxy_stanza_limits_total{reason="memory"}', 0), 1)
        self.assertEqual(m["s2s_proxy_stanza_memory_bytes"], 0)

    def test_authenticated_peer_trickling_a_stanza_is_cut_off_at_the_stanza_deadline(self):
        """A peer authenticated by dialback starts a stanza and sends a byte every 0.3 s: the
        stream ends at general.stanza_timeout (2 s here), not at the 600 s idle timeout."""
        auth = Authoritative()
        auth.start()
        self.addCleanup(auth.close)
        proxy = Proxy(self, "stanza_timeout = 2_000\n--\n[s2s]\n  outgoing.address = "
                            f"[{{host = \"b.test\", ip_address = \"127.0.0.1\", port = {auth.port}}}]\n")
        sock = proxy.connect()
        self.addCleanup(sock.close)
        sock.sendall(b"<db:result from='b.test' to='a.test'>key</db:result>")
        got = read_until(sock, lambda g: b"type='valid'" in g or b'type="valid"' in g or b"</stream:stream>" in g)
        self.assertTrue(b"type='valid'" in got or b'type="valid"' in got, got)
        start = time.monotonic()
        sock.sendall(MESSAGE_START + b"<body>")
        sock.settimeout(0.3)
        closed = None
        got = b""
        while time.monotonic() - start < 15:
            try:
                sock.sendall(b"x")
                chunk = sock.recv(65536)
                if not chunk:
                    closed = time.monotonic() - start
                    break
                got += chunk
            except socket.timeout:
                continue
            except OSError:
                closed = time.monotonic() - start
                break
        self.assertIsNotNone(closed, "the trickling stream was still open after 15 s")
        self.assertIn(b"policy-violation", got)
        self.assertGreaterEqual(closed, 1.5)
        self.assertLess(closed, 6)
        self.assertEqual(proxy.metrics()['s2s_proxy_stanza_limits_total{reason="timeout"}'], 1)

    def test_over_the_budget_the_largest_unfinished_stanza_is_cut_off(self):
        """Two streams within their own limits; the budget (reloaded with SIGHUP to just under what
        they hold together) is exceeded when the smaller one sends more: the larger is cut off
        with resource-constraint, the smaller goes on."""
        proxy = Proxy(self)
        attrs = b"".join(b" b%d=''" % i for i in range(60))
        big = proxy.connect()
        self.addCleanup(big.close)
        big.sendall(MESSAGE_START + (b"<a" + attrs + b"/>") * 15)
        first = wait_for(lambda: proxy.metrics()["s2s_proxy_stanza_memory_bytes"], 5, "the big stanza counted")
        small = proxy.connect()
        self.addCleanup(small.close)
        small.sendall(MESSAGE_START + (b"<a" + attrs + b"/>") * 2)
        total = wait_for(lambda: (lambda v: v if v > first else 0)(proxy.metrics()["s2s_proxy_stanza_memory_bytes"]),
                         5, "the small stanza counted")
        self.assertGreater(first, total - first, "the first stream must hold the larger stanza")
        budget = int(total) - 1
        self.assertGreaterEqual(budget, 65536)
        proxy.write(f"stanza_memory_budget = {budget}\n--\n")
        proxy.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: proxy.metrics()["s2s_proxy_stanza_memory_budget_bytes"] == budget, 5, "the new budget")
        small.sendall(b"<a b='1'/>")
        got = until_closed(big, 5)
        self.assertIsNotNone(got, "the largest stanza's stream is still open")
        self.assertIn(b"resource-constraint", got)
        self.assertIsNone(until_closed(small, 1), "the smaller stream must go on")
        m = proxy.metrics()
        self.assertEqual(m['s2s_proxy_stanza_limits_total{reason="budget"}'], 1)
        self.assertLessEqual(m["s2s_proxy_stanza_memory_bytes"], budget)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
