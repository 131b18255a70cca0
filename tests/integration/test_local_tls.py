#!/usr/bin/python3
"""TLS on the local link, with a real Prosody 0.12 as the local server that requires encryption on
s2s (s2s_require_encryption = true), as one on another host would.

a.test and b.test, each a real Prosody in "proxied" mode behind its own s2s-proxy, as in
test_federation.py; only a.test's local link is encrypted:

    alice -- Prosody A (127.0.0.72) ==TLS== s2s-proxy A (127.0.0.82) ~~~~ s2s-proxy B (127.0.0.83) == Prosody B (127.0.0.73) -- bob

  A_Encrypted  proxy A with local.tls (mode starttls, the test CA) and [[listen.local]] with
               tls.mode = "starttls" (a certificate for proxy-a.internal from the test CA: Prosody's
               links to it are encrypted, and authenticated by dialback as before):
               (a) messages flow both ways through the proxies; proxy A's streams to Prosody A
                   (per-domain stream and key checks) used STARTTLS and checked Prosody's
                   certificate for a.test;
               (b) Prosody A's outgoing s2s to [[listen.local]] was encrypted by STARTTLS (Prosody
                   requires it, and proxy A logs and counts it)
  B_Plain      the same Prosody A, proxy A without local.tls and with a plain [[listen.local]]: no
               link with Prosody A comes up, proxy A says that the local server requires TLS and
               which key to set, and bob's message to alice comes back with remote-server-timeout
               after local.queue_timeout

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_local_tls.py [Class[.test] ...]
Ends with `integration-summary: N passed, N failed`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402


IP_PROSODY_A, IP_PROSODY_B = "127.0.0.72", "127.0.0.73"
IP_PROXY_A, IP_PROXY_B = "127.0.0.82", "127.0.0.83"
T_MSG = 15

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "b.test"))
    MODULE["listener"] = MODULE["ca"].issue("proxy-a.internal")


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class ProxiedPair(kit.pair.ProxiedPair):
    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_B, IP_PROXY_A, IP_PROXY_B)
    # Prosody A requires TLS on every s2s stream, both ways (its last word on the option wins).
    prosody_extra = {"a": "s2s_require_encryption = true"}
    local_tls = True

    @classmethod
    def configure(cls):
        cls.pa.set("local.queue_timeout", 3000)
        if cls.local_tls:
            listener = MODULE["listener"]
            cls.pa.set("local.tls.mode", "starttls")
            cls.pa.set("local.tls.cacertfile", cls.ca.cert)
            cls.pa.set("listen.local.0.tls.mode", "starttls")
            cls.pa.set("listen.local.0.tls.certfile", listener.chain)
            cls.pa.set("listen.local.0.tls.keyfile", listener.key)
            # verify_mode peer and disconnect_on_failure (the defaults): Prosody's client
            # certificate must chain to the test CA, or its stream is refused at the handshake.
            cls.pa.set("listen.local.0.tls.cacertfile", cls.ca.cert)


class A_Encrypted(ProxiedPair):
    def test_1_messages_flow_both_ways_over_the_encrypted_local_link(self):
        for sender, receiver in ((self.alice, self.bob), (self.bob, self.alice)):
            r = clients.send_message(sender, receiver, timeout=T_MSG)
            self.assertTrue(r.ok, r.describe())
        # Toward Prosody A: STARTTLS, Prosody's certificate for a.test checked against the test CA.
        self.pa.wait_log(r"local-tls: to the local server at 127\.0\.0\.72:\d+: TLSv1\.[23] \S+, peer certificate: "
                         r"valid", 10)
        m = self.pa.metrics()
        self.assertGreaterEqual(m.get('s2s_proxy_local_tls_total{where="client",how="starttls"}', 0), 2, m)
        self.assertEqual(m.get('s2s_proxy_local_tls_total{where="client",how="refused"}', 0), 0, m)
        # Prosody's keys were still confirmed by Prosody (on key-check connections inside TLS too).
        self.assertGreaterEqual(m.get('s2s_proxy_dialback_total{role="local_receiving",result="valid"}', 0), 1, m)

    def test_2_prosodys_outgoing_s2s_to_listen_local_is_encrypted(self):
        r = clients.send_message(self.alice, self.bob, timeout=T_MSG)
        self.assertTrue(r.ok, r.describe())
        self.pa.wait_log(r"tls: listen\.local\.0: TLSv1\.[23] ", 10)
        m = self.pa.metrics()
        self.assertGreaterEqual(m.get('s2s_proxy_local_tls_total{where="listener",how="starttls"}', 0), 1, m)


class B_Plain(ProxiedPair):
    local_tls = False

    def test_1_without_local_tls_no_link_comes_up_and_the_reason_is_logged(self):
        r = clients.send_message(self.bob, self.alice, timeout=30)
        self.assertFalse(r.ok, r.describe())
        # It waited local.queue_timeout for the local server, then came back to bob saying why.
        self.assertEqual(r.error_condition, "remote-server-timeout", r.describe())
        self.pa.wait_log(r"local-link-down: the local server requires TLS on s2s: set local\.tls\.mode", 10)


if __name__ == "__main__":
    sys.exit(kit.runner.main())
