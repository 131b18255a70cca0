#!/usr/bin/python3
"""A hostile process on [[listen.local]], against the real binary: a raw socket on loopback plays a
process in the pod that is not the local server. (The same attack with a real Prosody as the local
server: tests/integration/test_hostile_local.py.)

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import hashlib
import hmac
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_cli as cli  # noqa: E402  (as a module: its test classes are not run here)

SECRET = "hostile-local-test-secret"
HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
          "xmlns:stream='http://etherx.jabber.org/streams' from='a.test' to='{to}' version='1.0'>")


def dialback_key(receiving, originating, stream_id):
    """The key s2s-proxy issues (XEP-0185 with s2s.shared), as proxy/xmpp/dialback.h says."""
    hkey = hashlib.sha256(SECRET.encode()).hexdigest().encode()
    return hmac.new(hkey, f"{receiving} {originating} {stream_id}".encode(), hashlib.sha256).hexdigest()


class LocalListener(unittest.TestCase):
    """One s2s-proxy per test whose local.server is `self.local_server_port` (nothing listens there
    unless the test puts something there), its log in a file."""

    extra = ""
    args = ()

    def setUp(self):
        self.ports = dict(s2s_port=cli.free_port(), local_port=cli.free_port(), admin_port=cli.free_port(),
                          local_server_port=cli.free_port())
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.log_path = os.path.join(self.tmp.name, "s2s-proxy.log")

    def start(self, extra="", *args):
        self.cfg = cli.ConfigFile(cli.minimal(**self.ports) + f"[s2s]\n  shared = \"{SECRET}\"\n" + extra)
        path = self.cfg.__enter__()
        self.addCleanup(self.cfg.__exit__, None, None, None)
        log = open(self.log_path, "w")
        self.addCleanup(log.close)
        self.proc = subprocess.Popen([cli.PROXY, "--config", path, "--general.loglevel=info", *args],
                                     stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop)
        # (the admin endpoint is bound after the listeners: no probe connection on [[listen.local]])
        self.assertTrue(cli.Process.wait_listening(self.ports["admin_port"], self.proc), self.log())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, pattern, seconds=5):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log())
            if m:
                return m
            time.sleep(0.05)
        self.fail(f"no /{pattern}/ in the log within {seconds} s:\n{self.log()[-3000:]}")

    def metrics(self):
        code, text = cli.curl(f"http://127.0.0.1:{self.ports['admin_port']}/metrics")
        self.assertEqual(code, 200)
        return cli.parse_metrics(text)

    def connect(self, to="b.test"):
        """A process on [[listen.local]] opening a stream as the local server would: (socket,
        the stream id s2s-proxy sent)."""
        c = socket.create_connection(("127.0.0.1", self.ports["local_port"]), timeout=10)
        self.addCleanup(c.close)
        c.sendall(HEADER.format(to=to).encode())
        got = cli.read_until(c, lambda g: b"</stream:features>" in g or b"</stream:stream>" in g)
        m = re.search(rb"<stream:stream [^>]*id='([0-9a-f]+)'", got)
        return c, (m.group(1).decode() if m else None), got

    @staticmethod
    def answer(c, name="result", count=1):
        """The next `count` dialback answers on c (as bytes)."""
        end = f"</db:{name}>".encode()
        got = cli.read_until(c, lambda g: len(re.findall(rb"<db:" + name.encode() + rb" [^>]*(?:/>|>.*?" + end + rb")",
                                                     g, re.S)) >= count or b"</stream:stream>" in g)
        return re.findall(rb"<db:" + name.encode() + rb" [^>]*(?:/>|>.*?" + end + rb")", got, re.S)


class Hostile(LocalListener):
    def test_a_made_up_key_is_checked_with_an_unreachable_local_server_and_answered_with_an_error(self):
        self.start()
        c, sid, _ = self.connect()
        c.sendall(b"<db:result from='a.test' to='b.test'>made-up-key</db:result>")
        [a] = self.answer(c)
        self.assertIn(b"type='error'", a)
        self.assertIn(b"<remote-server-not-found", a)
        self.assertNotIn(str(self.ports["local_server_port"]).encode(), a)  # no address to the peer
        # ... and a stanza for the pair ends the stream: nothing is forwarded
        c.sendall(b"<message from='alice@a.test' to='bob@b.test' id='forged'><body>forged</body></message>")
        got = cli.read_until(c, lambda g: b"</stream:stream>" in g)
        self.assertIn(b"<invalid-from", got)
        self.wait_log(rf"local-dialback-failed: the key could not be checked: cannot connect to the local server at "
                      rf"127\.0\.0\.1:{self.ports['local_server_port']}")
        m = self.metrics()
        self.assertEqual(m.get('s2s_proxy_dialback_total{role="local_receiving",result="error"}'), 1)
        self.assertEqual(m.get('s2s_proxy_stanzas_received_total{from="local"}'), 0)

    def test_a_local_server_that_says_invalid_refuses_the_pair(self):
        """A scripted local server on local.server that never issued the key."""
        with socket.socket() as server:
            server.bind(("127.0.0.1", self.ports["local_server_port"]))
            server.listen(8)
            self.start()
            c, sid, _ = self.connect()
            c.sendall(b"<db:result from='a.test' to='b.test'>made-up-key</db:result>")
            server.settimeout(10)
            conn, _ = server.accept()
            with conn:
                conn.settimeout(10)
                conn.sendall(b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                             b"xmlns:db='jabber:server:dialback' id='srv' from='a.test'>")
                asked = cli.read_until(conn, lambda g: b"</db:verify>" in g or b"</stream:stream>" in g)
                self.assertIn(b"from='b.test' to='a.test'", asked)  # the header: as the receiving server
                self.assertIn(f"<db:verify from='b.test' to='a.test' id='{sid}'>made-up-key</db:verify>".encode(), asked)
                conn.sendall(b"<db:verify from='a.test' to='b.test' id='" + sid.encode() + b"' type='invalid'/>")
                [a] = self.answer(c)
                self.assertEqual(a, b"<db:result from='b.test' to='a.test' type='invalid'/>")
                self.assertIn(b"</stream:stream>", cli.read_until(conn, lambda g: b"</stream:stream>" in g))
        self.wait_log(r"local-dialback-invalid: the local server did not issue the key presented for a\.test")

    def test_checks_under_way_are_bounded(self):
        """A local server that accepts and never answers: every check stays under way."""
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", self.ports["local_server_port"]))
            silent.listen(16)
            self.start("", "--local.max_verifications=2")
            c, _, _ = self.connect()
            c.sendall(b"".join(b"<db:result from='a.test' to='r%d.test'>k</db:result>" % i for i in range(3)))
            [a] = self.answer(c)
            self.assertIn(b"<db:result from='r2.test' to='a.test' type='error'", a)
            self.assertIn(b"<resource-constraint", a)
            self.wait_log(r"local-verify-refused: local\.max_verifications \(2\) are under way")
            m = self.metrics()
            self.assertEqual(m.get('s2s_proxy_dialback_total{role="local_receiving",result="refused_total_limit"}'), 1)
            self.assertEqual(m.get('s2s_proxy_connections{kind="local_verify",state="awaiting-header"}'), 2)

    def test_db_verify_is_valid_only_for_pairs_s2s_proxy_issues_keys_for(self):
        self.start()
        c, _, _ = self.connect()
        ours = dialback_key("a.test", "b.test", "sid1")          # LocalOut: b.test toward a.test
        reversed_pair = dialback_key("b.test", "a.test", "sid1")  # a key of the same secret, other pair
        c.sendall(f"<db:verify from='a.test' to='b.test' id='sid1'>{ours}</db:verify>"
                  f"<db:verify from='b.test' to='a.test' id='sid1'>{reversed_pair}</db:verify>".encode())
        answers = self.answer(c, "verify", 2)
        self.assertEqual(answers, [b"<db:verify from='b.test' to='a.test' id='sid1' type='valid'/>",
                                   b"<db:verify from='a.test' to='b.test' id='sid1' type='invalid'/>"])
        self.wait_log(r"local-verify-invalid: db:verify from 'b\.test' about 'a\.test': not a pair")
        m = self.metrics()
        self.assertEqual(m.get('s2s_proxy_dialback_total{role="local_authoritative",result="invalid"}'), 1)
        self.assertEqual(m.get('s2s_proxy_dialback_total{role="local_authoritative",result="valid"}'), 1)

    def test_max_connections_holds_on_listen_local(self):
        self.start("", "--listen.local.0.max_connections=1")
        first, _, got = self.connect()
        self.assertIn(b"urn:xmpp:features:dialback", got)
        second, _, got = self.connect()
        if b"</stream:stream>" not in got:
            got += cli.read_until(second, lambda g: b"</stream:stream>" in g)
        self.assertIn(b"<resource-constraint", got)
        self.assertIn(b"listen.local.0 has reached max_connections (1)", got)
        self.assertEqual(self.metrics().get('s2s_proxy_connections_refused_total{limit="local_max_connections"}'), 1)
        # The first one is still served.
        first.sendall(b"<db:verify from='a.test' to='b.test' id='x'>k</db:verify>")
        self.assertEqual(len(self.answer(first, "verify")), 1)

    def test_the_check_turned_off_warns_and_takes_any_key(self):
        self.start("", "--local.verify_dialback=false")
        self.wait_log(r"local-unverified: local\.verify_dialback is false: the local server's dialback keys are not "
                      r"checked, so any process that can connect to \[\[listen\.local\]\] may send as any user of "
                      r"general\.hosts")
        c, _, _ = self.connect()
        c.sendall(b"<db:result from='a.test' to='b.test'>made-up-key</db:result>")
        self.assertEqual(self.answer(c), [b"<db:result from='b.test' to='a.test' type='valid'/>"])
        self.assertEqual(self.metrics().get('s2s_proxy_dialback_total{role="local_receiving",result="unchecked"}'), 1)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
