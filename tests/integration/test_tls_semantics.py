#!/usr/bin/python3
"""TLS semantics of s2s-proxy's public side with a real peer: c.test is a federating Prosody 0.12
(TLS with the test CA, its certificate presented both ways, s2s_require_encryption on, dialback
allowed); a.test is a proxied Prosody behind s2s-proxy A. c.test finds a.test by SRV in the test
dnsmasq (proxy A's public listener); proxy A reaches c.test by an s2s.outgoing.address override.

  A_OpportunisticOutgoing  proxy A has neither s2s.use_starttls nor any s2s.outgoing.tls key: its
                           link to c.test takes the STARTTLS Prosody offers (Prosody refuses plain
                           streams, so without it nothing is delivered), the certificate is not
                           trusted by the system store and so a.test authenticates by dialback; with
                           use_starttls = "false" written out the link stays plain and Prosody
                           refuses it (the message comes back).
  B_StrictListener         proxy A's listener has its own tls subsection with verify_mode "peer" and
                           disconnect_on_failure at its default (true): Prosody C, which presents
                           c.test's certificate, federates through it both ways; a raw peer without
                           a client certificate is refused at the handshake and counted.

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_tls_semantics.py [Class[.test] ...]
    BUILD=build /usr/bin/python3 tests/integration/run_all.py test_tls_semantics
Ends with `integration-summary: N passed, N failed`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.peer import RawPeer, stream_header  # noqa: E402
from kit.procs import KitError  # noqa: E402
from kit.suite import token  # noqa: E402

IP_PROSODY_A, IP_PROSODY_C, IP_PROXY_A = "127.0.0.2", "127.0.0.6", "127.0.0.12"
T_MSG = 15

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "c.test"))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class RealPeer(kit.pair.ProxiedAndDirect):
    """Prosody A behind proxy A, Prosody C federating on its own. Subclasses set proxy A's TLS."""

    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_C, IP_PROXY_A)

    @classmethod
    def configure(cls):
        cls.pa.set("s2s.outgoing.max_retry_delay", 1)
        cls.tls(cls.pa, cls.certs, cls.ca)

    @classmethod
    def tls(cls, pa, certs, ca):
        pass


class A_OpportunisticOutgoing(RealPeer):
    @classmethod
    def tls(cls, pa, certs, ca):
        # No s2s.use_starttls and no s2s.outgoing.tls.* key; the listener offers STARTTLS with
        # a.test's certificate (its own tls subsection), so that Prosody C can check our key.
        pa.use_starttls = None
        pa.outgoing_tls = {}
        pa.listener_tls = {"certfile": certs["a.test"].chain, "keyfile": certs["a.test"].key,
                           "verify_mode": "none"}

    def test_1_outgoing_link_takes_starttls_and_dialback(self):
        mark = self.pa.log_mark()
        r = clients.send_message(self.alice, self.carol, timeout=T_MSG)
        self.assertTrue(r.ok, r.describe())
        log = self.pa.log_text(mark)
        self.assertRegex(log, r"(?m)\[c\d+ a\.test->c\.test\] ready: stream \S+ negotiated over TLS$")
        # the system store does not know the test CA: the certificate proves nothing, dialback does
        self.assertRegex(log, r"\[c\d+ a\.test->c\.test\] tls: TLSv1\.[23][^\n]*certificate of c\.test: (?!authenticated)")
        self.assertRegex(log, r"(?m)\[c\d+ a\.test->c\.test\] authenticated: dialback$")
        self.assertIn("Incoming s2s connection a.test->c.test complete", self.c.log_text())

    def test_2_use_starttls_false_written_out_means_no_tls(self):
        self.pa.use_starttls = "false"
        try:
            self.pa.restart()
            mark = self.pa.log_mark()
            r = clients.send(self.alice, "carol@c.test", [token("plain")], linger=10, timeout=T_MSG)
            bounced = r.data.get("bounced") or []
            self.assertEqual(len(bounced), 1, f"alice should get exactly one error back: {r.describe()}")
            log = self.pa.log_text(mark)
            self.assertNotRegex(log, r"\[c\d+ a\.test->c\.test\] ready: stream \S+ negotiated over TLS")
            self.assertRegex(log, r"c\.test requires TLS, but TLS is off here")
        finally:
            self.pa.use_starttls = None
            self.pa.restart()


class B_StrictListener(RealPeer):
    @classmethod
    def tls(cls, pa, certs, ca):
        pa.tls(ca, mode="starttls", cert=certs["a.test"], client_cert=False)
        del pa.listener_tls["mode"]                    # a tls subsection without a mode: STARTTLS
        del pa.listener_tls["disconnect_on_failure"]   # its default: true

    def certificate_failures(self):
        return self.pa.metrics().get('s2s_proxy_tls_failures_total{reason="certificate"}', 0)

    def test_1_config_has_the_strict_combination(self):
        text = open(self.pa.config_path).read()
        listener = text[text.index("[[listen.s2s]]"):]
        self.assertIn('tls.verify_mode = "peer"', listener)
        self.assertNotIn("disconnect_on_failure", listener)
        self.assertNotIn("tls.mode", listener)

    def test_2_real_peer_with_a_valid_certificate_federates_both_ways(self):
        before = self.certificate_failures()
        r = clients.send_message(self.carol, self.alice, timeout=T_MSG)
        self.assertTrue(r.ok, r.describe())
        r = clients.send_message(self.alice, self.carol, timeout=T_MSG)
        self.assertTrue(r.ok, r.describe())
        pa_log = self.pa.log_text()
        self.assertRegex(pa_log, r"\[c\d+ a\.test->c\.test\] tls: TLSv1\.[23] \S+, peer certificate: valid")
        self.assertRegex(pa_log, r"(?m)\[c\d+ a\.test->c\.test\] authenticated: SASL EXTERNAL$")
        self.assertEqual(self.certificate_failures(), before)

    def test_3_peer_without_a_certificate_is_refused_at_the_handshake(self):
        before = self.certificate_failures()
        with RawPeer(self.pa.ip, self.pa.s2s_port, timeout=15) as p:
            p.send(stream_header(to="a.test", from_="b.test"))
            p.read_until(r"</stream:features>")
            try:
                p.starttls(server_hostname="a.test", ca=self.ca.cert)
                p.send(stream_header(to="a.test", from_="b.test"))
                p.read_until(r"</stream:features>", timeout=10)
                reached = True
            except (KitError, OSError):
                reached = False
        self.assertFalse(reached, "a client without a certificate reached the stream")
        kit.procs.wait_until(lambda: self.certificate_failures() == before + 1, 10,
                             "the refusal counted in tls_failures_total{reason=\"certificate\"}")


if __name__ == "__main__":
    sys.exit(kit.runner.main())
