#!/usr/bin/python3
"""Hostile peers against the real binary: domain names spelled to look foreign, names that fail
IDNA (UTS 46), and text that would forge log lines.

- A peer claiming one of our own hosts under another spelling (a fullwidth letter) is refused as a
  claim for our own host, and nothing is resolved or dialled for it.
- A stream header naming our host under another spelling is served as that host; one whose 'from'
  fails UTS 46 is refused with invalid-from.
- Unicode line/paragraph separators and bidirectional overrides from a peer never reach the log
  raw, in the text or the JSON format.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli as cli  # noqa: E402  (a module, so that its test classes do not run here too)

HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
          "xmlns:stream='http://etherx.jabber.org/streams' to='{to}' from='{frm}' version='1.0'>")

FULLWIDTH_A = "\uff41"           # 'ａ': UTS 46 maps it to 'a'
FULLWIDTH_CAPITAL_A = "\uff21"   # 'Ａ': to 'a' as well
FORGERS = ["\u2028", "\u2029", "\u202e", "\u2066", "\u200f", "\ufeff"]


class DnsTrap:
    """A UDP socket on loopback named as the proxy's only nameserver: it answers nothing and
    records whether any query arrived."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    def queries(self):
        got = []
        while True:
            try:
                got.append(self.sock.recv(4096))
            except BlockingIOError:
                return got

    def close(self):
        self.sock.close()


class Proxy:
    """The binary with a minimal config for host a.test, its log in a file."""

    def __init__(self, test, *args, extra=""):
        self.ports = dict(s2s_port=cli.free_port(), local_port=cli.free_port(), admin_port=cli.free_port(),
                          local_server_port=cli.free_port())
        self.cfg = cli.ConfigFile(cli.minimal(**self.ports) + extra)
        path = self.cfg.__enter__()
        test.addCleanup(self.cfg.__exit__)
        self.log_path = path + ".log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([cli.PROXY, "--config", path, "--general.loglevel=debug", *args],
                                         stdout=log, stderr=log)
        test.addCleanup(self.stop)
        test.assertTrue(cli.Process.wait_listening(self.ports["s2s_port"], self.proc), "s2s listener never accepted")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.ports["s2s_port"]), timeout=10)

    def log_bytes(self):
        with open(self.log_path, "rb") as f:
            return f.read()

    def wait_log(self, needle, seconds=5):
        """The log's bytes once `needle` (bytes) is in it; fails after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            data = self.log_bytes()
            if needle in data:
                return data
            if time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} in the log:\n{data[-3000:].decode('utf-8', 'replace')}")
            time.sleep(0.05)


def header(to, frm):
    return HEADER.format(to=to, frm=frm).encode()


def answer_of(got, name):
    """The text from the opening of <db:NAME ... to its end ('' when absent)."""
    text = got.decode("utf-8", "replace")
    start = text.find(f"<db:{name} ")
    if start < 0:
        return ""
    end = text.find(f"</db:{name}>", start)
    return text[start:] if end < 0 else text[start:end]


class OwnHostUnderAnotherSpelling(unittest.TestCase):
    def test_fullwidth_claim_for_our_host_is_refused_without_resolving(self):
        """from='ａ.test' is a.test, which is served here: the dialback claim is a claim for our own
        host (policy-violation), and nothing is looked up or dialled for it."""
        trap = DnsTrap()
        self.addCleanup(trap.close)
        proxy = Proxy(self, f"--s2s.outgoing.dns.nameservers=[\"127.0.0.1:{trap.port}\"]",
                      "--s2s.outgoing.dns.timeout=1", "--s2s.outgoing.dns.retries=1")
        spoof = FULLWIDTH_A + ".test"
        with proxy.connect() as c:
            c.sendall(header("a.test", spoof))
            cli.read_until(c, lambda g: b"</stream:features>" in g or b"</stream:stream>" in g)
            c.sendall(f"<db:result from='{spoof}' to='a.test'>key</db:result>".encode())
            got = cli.read_until(c, lambda g: b"</db:result>" in g or b"</stream:stream>" in g)
        result = answer_of(got, "result")
        self.assertIn("type='error'", result, got)
        self.assertIn("policy-violation", result, got)
        self.assertEqual(trap.queries(), [], "the proxy went to DNS for a spelling of its own host")
        proxy.wait_log(b"is served here; another server cannot claim it")

    def test_stream_to_our_host_in_fullwidth_is_served_as_that_host(self):
        """to='Ａ.test' is a.test: our header answers from='a.test' (A-labels on the wire)."""
        proxy = Proxy(self)
        with proxy.connect() as c:
            c.sendall(header(FULLWIDTH_CAPITAL_A + ".test", "b.test"))
            got = cli.read_until(c, lambda g: b"</stream:features>" in g or b"</stream:stream>" in g)
        self.assertIn(b"from='a.test'", got)
        self.assertNotIn(b"host-unknown", got)


class FakeServer:
    """One scripted XMPP server on loopback, run in a thread: `script(sock)` serves the first
    connection; what it returns is kept in `result`."""

    def __init__(self, script):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(15)
        self.port = self.listener.getsockname()[1]
        self.result = None
        self.error = None
        self.conn = None
        self.thread = threading.Thread(target=self.run, args=(script,), daemon=True)
        self.thread.start()

    def run(self, script):
        try:
            self.conn, _ = self.listener.accept()
            self.conn.settimeout(15)
            self.result = script(self.conn)
        except Exception as e:  # reported by wait()
            self.error = e

    def wait(self, seconds=20):
        self.thread.join(seconds)
        if self.thread.is_alive():
            raise AssertionError("the scripted server did not finish in time")
        if self.error:
            raise self.error
        return self.result

    def close(self):
        for s in (self.conn, self.listener):
            if s:
                s.close()


def header_received(got):
    start = got.find(b"<stream:stream")
    return start >= 0 and b">" in got[start:]


def attr(text, name):
    m = re.search(name.encode() + rb"=['\"]([^'\"]*)['\"]", text)
    return m.group(1).decode() if m else ""


class StanzaAddressesOnTheWire(unittest.TestCase):
    def test_a_sharp_s_domain_reaches_the_local_server_as_its_a_label(self):
        """faß.test (xn--fa-hia.test under UTS 46) authenticates by dialback and sends as
        'm@faß.test': the local server must read xn--fa-hia.test, not a name that a server doing
        IDNA2003 (nameprep) reads as fass.test, another domain."""
        remote = "xn--fa-hia.test"
        features = b"<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>"

        def authoritative(c):   # the remote's authoritative server: every key is valid
            got = cli.read_until(c, header_received)
            c.sendall(header("a.test", remote).replace(b" version='1.0'>", b" id='auth1' version='1.0'>") + features)
            got = cli.read_until(c, lambda g: b"</db:verify>" in g)
            c.sendall(f"<db:verify from='{remote}' to='a.test' id='{attr(got.split(b'<db:verify')[1], 'id')}' "
                      f"type='valid'/>".encode())
            return got

        def local_server(c):    # the local server: accepts the remote domain, keeps the first stanza
            cli.read_until(c, header_received)
            c.sendall(header(remote, "a.test").replace(b" version='1.0'>", b" id='loc1' version='1.0'>") + features)
            got = cli.read_until(c, lambda g: b"</db:result>" in g)
            c.sendall(f"<db:result from='a.test' to='{remote}' type='valid'/>".encode())
            return cli.read_until(c, lambda g: b"</message>" in g)

        auth, local = FakeServer(authoritative), FakeServer(local_server)
        self.addCleanup(auth.close)
        self.addCleanup(local.close)
        ports = dict(s2s_port=cli.free_port(), local_port=cli.free_port(), admin_port=cli.free_port(),
                     local_server_port=local.port)
        cfg = cli.ConfigFile(cli.minimal(**ports) + "[s2s]\n  outgoing.address = [{host = \"fa\u00df.test\", "
                             f"ip_address = \"127.0.0.1\", port = {auth.port}}}]\n")
        path = cfg.__enter__()
        self.addCleanup(cfg.__exit__)
        with open(path + ".log", "w") as log:
            proc = subprocess.Popen([cli.PROXY, "--config", path, "--general.loglevel=debug"], stdout=log, stderr=log)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait(5)))
        self.assertTrue(cli.Process.wait_listening(ports["s2s_port"], proc))
        with socket.create_connection(("127.0.0.1", ports["s2s_port"]), timeout=15) as c:
            c.sendall(header("a.test", "fa\u00df.test"))
            cli.read_until(c, lambda g: b"</stream:features>" in g)
            c.sendall("<db:result from='fa\u00df.test' to='a.test'>key</db:result>".encode())
            got = cli.read_until(c, lambda g: b"type=" in g.split(b"<db:result")[-1] or b"</stream:stream>" in g)
            self.assertIn("type='valid'", answer_of(got, "result") or got.decode("utf-8", "replace"), got)
            c.sendall("<message from='m@fa\u00df.test/r' to='u@a.test' id='m1'><body>hi</body></message>".encode())
            delivered = local.wait()
        auth.wait()
        message = delivered[delivered.find(b"<message"):]
        self.assertIn(b"from='m@xn--fa-hia.test/r'", message)
        self.assertNotIn("fa\u00df".encode(), message)


class NamesThatFailIdna(unittest.TestCase):
    def test_header_from_an_invalid_a_label_is_invalid_from(self):
        """'xn--a.test' is ASCII letters, digits and hyphens, but no valid A-label: refused."""
        proxy = Proxy(self)
        with proxy.connect() as c:
            c.sendall(header("a.test", "xn--a.test"))
            got = cli.read_until(c, lambda g: b"</stream:stream>" in g)
        self.assertIn(b"<invalid-from", got)
        self.assertNotIn(b"<stream:features>", got)
        status, body = cli.curl(f"http://127.0.0.1:{proxy.ports['admin_port']}/metrics")
        self.assertEqual(status, 200)
        samples = cli.parse_metrics(body)
        self.assertEqual(samples.get('s2s_proxy_addresses_refused_total{where="stream-header",reason="domain_idna"}'),
                         1.0, body)

    def test_header_from_with_a_disallowed_code_point_is_invalid_from(self):
        """A bidirectional override inside a label fails UTS 46."""
        proxy = Proxy(self)
        with proxy.connect() as c:
            c.sendall(header("a.test", "b\u202ec.test"))
            got = cli.read_until(c, lambda g: b"</stream:stream>" in g)
        self.assertIn(b"<invalid-from", got)

    def test_dialback_claim_for_an_invalid_name_is_invalid_from(self):
        proxy = Proxy(self)
        with proxy.connect() as c:
            c.sendall(header("a.test", "b.test"))
            cli.read_until(c, lambda g: b"</stream:features>" in g)
            c.sendall(b"<db:result from='xn--zz.test' to='a.test'>key</db:result>")
            got = cli.read_until(c, lambda g: b"</stream:stream>" in g)
        self.assertIn(b"<invalid-from", got)


class LogLinesCannotBeForged(unittest.TestCase):
    def forge(self, log_format):
        """A header whose 'from' carries every forging code point; returns the log's bytes once the
        refusal is logged."""
        proxy = Proxy(self, f"--general.log_format={log_format}")
        frm = "x" + "y".join(FORGERS) + ".test"
        with proxy.connect() as c:
            c.sendall(header("a.test", frm))
            cli.read_until(c, lambda g: b"</stream:stream>" in g)
        return proxy.wait_log(b"invalid-from")

    def assert_no_raw_forgers(self, data):
        for cp in FORGERS:
            self.assertNotIn(cp.encode(), data, f"U+{ord(cp):04X} reached the log raw")

    def test_text_log(self):
        data = self.forge("text")
        self.assert_no_raw_forgers(data)
        line = next(l for l in data.split(b"\n") if b"invalid-from" in l)
        self.assertIn(b"\\u2028", line)
        self.assertIn(b"\\u202e", line)

    def test_json_log(self):
        data = self.forge("json")
        self.assert_no_raw_forgers(data)
        lines = [json.loads(l) for l in data.split(b"\n") if l.strip()]   # every line is one record
        refusal = next(r for r in lines if "invalid-from" in r["reason"])
        for cp in FORGERS:
            self.assertIn(cp, refusal["reason"])   # escaped on the line, the same text once decoded


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
