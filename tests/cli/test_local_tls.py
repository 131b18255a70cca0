#!/usr/bin/python3
"""TLS on the local link, against the real binary: [[listen.local]] with a tls subsection (STARTTLS
required, direct TLS) met by raw sockets and the real `openssl s_client`, and local.tls toward a
local server played by the real `openssl s_server` with certificates from a throwaway CA made here.
(The same with a real Prosody: tests/integration/test_local_tls.py.)

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)  # (first: tests/integration has a test_hostile_local.py of its own)

import test_cli as cli  # noqa: E402  (as a module: its test classes are not run here)
from kit.ca import CA, OPENSSL  # noqa: E402
from test_hostile_local import HEADER, LocalListener  # noqa: E402

MODULE = {}


def setUpModule():
    MODULE["tmp"] = tempfile.TemporaryDirectory()
    d = MODULE["tmp"].name
    ca = CA(os.path.join(d, "ca"))
    other = CA(os.path.join(d, "other"), name="Unrelated CA")
    MODULE.update(ca=ca, listener=ca.issue("b.test"), a_test=ca.issue("a.test"),
                  wrong_name=ca.issue("elsewhere.test"), other_ca=other.issue("a.test"))


def tearDownModule():
    MODULE["tmp"].cleanup()


class OpenSSL:
    """An openssl s_client or s_server process with pipes; stopped by PID at cleanup."""

    def __init__(self, test, *args):
        self.proc = subprocess.Popen([OPENSSL, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.got = b""
        test.addCleanup(self.stop)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read_until(self, pattern, seconds=15):
        """What the process printed until `pattern` (bytes regex) matched; None at the deadline or EOF."""
        deadline = time.monotonic() + seconds
        fd = self.proc.stdout.fileno()
        while not re.search(pattern, self.got, re.S):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.got += chunk
        return self.got


class ListenLocalTls(LocalListener):
    """[[listen.local]] with a tls subsection; the certificate is for b.test from the test CA."""

    def start_tls_listener(self, mode, *args):
        cert = MODULE["listener"]
        self.start("", f"--listen.local.0.tls.mode={mode}", f"--listen.local.0.tls.certfile={cert.chain}",
                   f"--listen.local.0.tls.keyfile={cert.key}", *args)

    def test_starttls_required_refuses_a_plain_db_result_with_policy_violation(self):
        self.start_tls_listener("starttls_required")
        c, _, got = self.connect()
        self.assertIn(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>", got)
        self.assertNotIn(b"urn:xmpp:features:dialback", got)  # nothing but STARTTLS is offered yet
        c.sendall(b"<db:result from='a.test' to='b.test'>some-key</db:result>")
        got = cli.read_until(c, lambda g: b"</stream:stream>" in g)
        self.assertIn(b"<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>", got)
        self.assertIn(b"STARTTLS first", got)
        self.assertNotIn(b"<db:result", got)
        self.wait_log(r"local-stream-error: policy-violation: TLS is required on listen\.local\.0")
        self.assertEqual(self.metrics().get('s2s_proxy_dialback_total{role="local_receiving",result="error"}'), None)

    def test_starttls_with_openssl_s_client_then_dialback_inside_tls(self):
        self.start_tls_listener("starttls_required")
        c = OpenSSL(self, "s_client", "-connect", f"127.0.0.1:{self.ports['local_port']}", "-starttls",
                    "xmpp-server", "-xmpphost", "b.test", "-CAfile", MODULE["ca"].cert, "-verify_return_error",
                    "-servername", "b.test", "-quiet")
        # -quiet prints nothing of its own once the handshake is done: send the restarted stream.
        c.send(HEADER.format(to="b.test").encode())
        got = c.read_until(rb"</stream:features>")
        self.assertIsNotNone(got, f"no features over TLS: {c.got!r}\n{self.log()[-2000:]}")
        features = got.split(b"<stream:features>")[-1]
        self.assertIn(b"urn:xmpp:features:dialback", features)
        self.assertNotIn(b"starttls", features)  # not offered again inside TLS
        c.send(b"<db:verify from='a.test' to='b.test' id='x'>k</db:verify>")
        self.assertIsNotNone(c.read_until(rb"<db:verify from='b.test' to='a.test' id='x' type='invalid'/>"), c.got)
        self.wait_log(r"tls: listen\.local\.0: TLSv1\.[23] ")
        self.assertEqual(self.metrics().get('s2s_proxy_local_tls_total{where="listener",how="starttls"}'), 1)

    def test_direct_tls_on_listen_local(self):
        self.start_tls_listener("tls")
        c = OpenSSL(self, "s_client", "-connect", f"127.0.0.1:{self.ports['local_port']}", "-alpn", "xmpp-server",
                    "-CAfile", MODULE["ca"].cert, "-verify_return_error", "-servername", "b.test", "-quiet")
        c.send(HEADER.format(to="b.test").encode())
        got = c.read_until(rb"</stream:features>")
        self.assertIsNotNone(got, f"no features over direct TLS: {c.got!r}\n{self.log()[-2000:]}")
        self.assertIn(b"urn:xmpp:features:dialback", got)
        self.assertNotIn(b"starttls", got)
        c.send(b"<db:verify from='a.test' to='b.test' id='x'>k</db:verify>")
        self.assertIsNotNone(c.read_until(rb"<db:verify from='b.test' to='a.test' id='x' type='invalid'/>"), c.got)
        self.assertEqual(self.metrics().get('s2s_proxy_local_tls_total{where="listener",how="direct"}'), 1)

    def test_direct_tls_listener_does_not_talk_plain_xml(self):
        self.start_tls_listener("tls")
        c = socket.create_connection(("127.0.0.1", self.ports["local_port"]), timeout=10)
        self.addCleanup(c.close)
        c.sendall(HEADER.format(to="b.test").encode())
        got = cli.read_until(c, lambda g: False)  # until the proxy closes
        self.assertNotIn(b"<stream:", got)

    def test_a_tls_subsection_without_mode_means_starttls(self):
        cert = MODULE["listener"]
        self.start("", f"--listen.local.0.tls.certfile={cert.chain}", f"--listen.local.0.tls.keyfile={cert.key}")
        _, _, got = self.connect()
        self.assertIn(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls>", got)
        self.assertIn(b"urn:xmpp:features:dialback", got)  # offered, not required

    def test_no_tls_subsection_is_plain_as_before(self):
        self.start()
        _, _, got = self.connect()
        self.assertNotIn(b"starttls", got)


class LocalClientTls(LocalListener):
    """local.tls toward a local server played by openssl s_server (direct TLS). A key check
    (a db:result on the plain [[listen.local]]) makes s2s-proxy connect to it."""

    def serve(self, issued):
        s = OpenSSL(self, "s_server", "-accept", f"127.0.0.1:{self.ports['local_server_port']}", "-cert", issued.cert,
                    "-key", issued.key, "-CAfile", MODULE["ca"].cert)
        self.assertIsNotNone(s.read_until(rb"ACCEPT"), s.got)
        return s

    def start_client(self, *args):
        self.start("", "--local.tls.mode=tls", f"--local.tls.cacertfile={MODULE['ca'].cert}", *args)

    def ask_check(self):
        c, _, _ = self.connect()
        c.sendall(b"<db:result from='a.test' to='b.test'>some-key</db:result>")
        return c

    def test_a_certificate_from_another_ca_is_refused(self):
        self.serve(MODULE["other_ca"])
        self.start_client()
        c = self.ask_check()
        [a] = self.answer(c)
        self.assertIn(b"type='error'", a)
        self.assertIn(b"<remote-server-not-found", a)
        self.wait_log(rf"local-tls-failed: TLS with the local server at 127\.0\.0\.1:{self.ports['local_server_port']}:"
                      rf" TLS handshake failed: .*\(check local\.tls\)")
        self.assertEqual(self.metrics().get('s2s_proxy_local_tls_total{where="client",how="refused"}'), 1)

    def test_a_certificate_for_another_name_is_refused(self):
        self.serve(MODULE["wrong_name"])
        self.start_client()
        c = self.ask_check()
        [a] = self.answer(c)
        self.assertIn(b"<remote-server-not-found", a)
        self.wait_log(r"local-tls-refused: the local server's certificate is not valid for a\.test \(.*elsewhere\.test")
        self.assertEqual(self.metrics().get('s2s_proxy_local_tls_total{where="client",how="refused"}'), 1)

    def test_server_name_names_the_certificate_to_expect(self):
        self.serve(MODULE["wrong_name"])
        self.start_client("--local.tls.server_name=elsewhere.test")
        self.ask_check()
        s = self.metrics
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and s().get('s2s_proxy_local_tls_total{where="client",how="direct"}') != 1:
            time.sleep(0.05)
        self.assertEqual(s().get('s2s_proxy_local_tls_total{where="client",how="direct"}'), 1, self.log()[-2000:])

    def test_a_certificate_that_chains_and_names_the_domain_is_used(self):
        server = self.serve(MODULE["a_test"])
        self.start_client()
        self.ask_check()
        # Inside TLS s2s-proxy opens its stream as the receiving server for b.test.
        got = server.read_until(rb"<stream:stream [^>]*>")
        self.assertIsNotNone(got, f"{server.got!r}\n{self.log()[-2000:]}")
        self.assertRegex(got, rb"from='b\.test' to='a\.test'")
        self.assertEqual(self.metrics().get('s2s_proxy_local_tls_total{where="client",how="direct"}'), 1)


class ConfigChecks(unittest.TestCase):
    def check(self, *args):
        ports = dict(s2s_port=cli.free_port(), local_port=cli.free_port(), admin_port=cli.free_port(),
                     local_server_port=cli.free_port())
        with cli.ConfigFile(cli.minimal(**ports)) as path:
            return cli.run("--check-config", "--config", path, *args)

    def test_component_mode_refuses_starttls_saying_why(self):
        r = self.check("--local.mode=component", "--local.component_name=proxy.a.test", "--local.password=pw",
                       "--local.verify_dialback=false", "--local.tls.mode=starttls")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('--local.tls.mode: "starttls" cannot be used in component mode: XEP-0114 has no STARTTLS; '
                      'write "tls"', r.stderr + r.stdout)

    def test_check_config_builds_the_local_tls_contexts(self):
        a, other = MODULE["a_test"], MODULE["listener"]
        r = self.check("--local.tls.mode=tls", f"--local.tls.certfile={a.cert}", f"--local.tls.keyfile={other.key}")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--local.tls.keyfile: ", r.stderr + r.stdout)
        r = self.check("--listen.local.0.tls.mode=starttls", f"--listen.local.0.tls.certfile={a.cert}",
                       f"--listen.local.0.tls.keyfile={a.key}", "--listen.local.0.tls.ciphers=NOT-A-CIPHER")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--listen.local.0.tls.ciphers: ", r.stderr + r.stdout)
        self.assertIn("NOT-A-CIPHER", r.stderr + r.stdout)

    def test_local_tls_keys_without_a_mode_are_refused(self):
        r = self.check(f"--local.tls.cacertfile={MODULE['ca'].cert}")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--local.tls.cacertfile: has no effect without local.tls.mode", r.stderr + r.stdout)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
