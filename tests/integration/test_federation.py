#!/usr/bin/python3
"""End-to-end federation through s2s-proxy with real peers on loopback.

Two domains, a.test and b.test, each served by a real Prosody 0.12 in "proxied" mode (plain s2s on
its own loopback address, every outgoing s2s sent to its proxy by config-examples/prosody/
mod_s2s_proxy.lua) behind its own s2s-proxy; real slixmpp clients alice@a.test and bob@b.test:

    alice -- Prosody A (127.0.0.2) == s2s-proxy A (127.0.0.12) ~~~~ s2s-proxy B (127.0.0.13) == Prosody B (127.0.0.3) -- bob
                          local link                       public side                       local link

Every variant checks a message both ways, XEP-0199 pings of the remote domain (both ways) and of
bob's full JID, and a presence subscription both ways; the proxies' logs show how the public link
was made:
  A_Plain            no TLS between the proxies (s2s.use_starttls = "false"): dialback in the clear
  B_StartTlsDialback STARTTLS, certificates from the test CA on the listeners, none on the outgoing
                     side: dialback over TLS
  C_StartTlsExternal STARTTLS, both proxies present their certificate and trust the CA: SASL
                     EXTERNAL (XEP-0178), bidi off (s2s.bidi = false): one link each way
  C2_ExternalBidi    the same with bidi on (the default): one TCP connection between the proxies
                     carries both directions (XEP-0288)
  D_DirectTls        tls.mode = "tls" on the listener and outgoing (XEP-0368), certificates on the
                     listeners, none outgoing: dialback over direct TLS
Faults:
  E_Policy           proxy A denies b.test (s2s.host_policy): alice's message and ping come back
                     with an error that says policy; bob's message to alice is refused by proxy A
  F_RemoteProxyDies  proxy B is killed (SIGKILL): alice's message bounces with "s2s to b.test
                     failed: ..."; after proxy B is back, messages flow again
  G_LocalRestart     Prosody A restarts while bob writes to alice: proxy A queues
                     (local.queue_timeout) and delivers when Prosody A is back; alice gets them as
                     offline messages
  H_RealPeer         c.test, a plain Prosody federating on its own (TLS with the test CA), finds
                     a.test through the test dnsmasq (SRV -> proxy A's public listener) and
                     federates with it both ways: the proxy meets a real peer on the public side
  I_BidiPeerFirst    c.test's Prosody with mod_s2s_bidi, certificates both ways: Prosody connects
                     first, asks for bidi; a message each way over that ONE TCP connection
  J_BidiProxyFirst   the same, proxy A connecting first and asking Prosody for bidi
Plugin:
  P_ProsodyPlugin    mod_s2s_proxy.lua under a mock Prosody API: the 0.12.4+/13 event path, the
                     0.12.0-0.12.3 wrapper, fail-closed configuration errors

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_federation.py [Class[.test] ...]
The binary is $S2S_PROXY_BIN, else $BUILD/s2s-proxy, else build/e2e/s2s-proxy, else build/s2s-proxy.
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import token  # noqa: E402

# Addresses: every server on its own loopback address.
IP_PROSODY_A, IP_PROSODY_B, IP_PROSODY_C = "127.0.0.2", "127.0.0.3", "127.0.0.6"
IP_PROXY_A, IP_PROXY_B = "127.0.0.12", "127.0.0.13"

MODULE = {}          # procs, ca, certs: shared by every class of this file

# Deadlines of one client job: everything here is on loopback and takes well under a second when
# it works, so a failure costs little time.
T_MSG, T_PING, T_SUB = 10, 10, 15


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "b.test", "c.test"))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class ProxiedPair(kit.pair.ProxiedPair):
    """a.test and b.test, each a proxied Prosody behind its own s2s-proxy, routes between the
    proxies by s2s.outgoing.address. Subclasses set up TLS, policy etc. in configure()."""

    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_B, IP_PROXY_A, IP_PROXY_B)

    def proxy_lines(self, proxy, pattern, since=0):
        return re.findall(pattern, proxy.log_text(since), re.M)

    def ensure_traffic(self):
        """The log checks need one message each way (tests 1 and 2 do that; this is for running
        a log check alone, not to try again what already failed)."""
        done = type(self).__dict__.get("_attempted", set())
        for sender, receiver in ((self.alice, self.bob), (self.bob, self.alice)):
            if (sender.jid, receiver.jid) not in done:
                self.assertDelivered(clients.send_message(sender, receiver, timeout=T_MSG), sender, receiver)

    def note_attempted(self, sender, receiver):
        cls = type(self)
        if "_attempted" not in cls.__dict__:
            cls._attempted = set()
        cls._attempted.add((sender.jid, receiver.jid))


class FederationChecks:
    """What every variant must do (mixed into ProxiedPair subclasses)."""

    def test_1_message_a_to_b(self):
        self.note_attempted(self.alice, self.bob)
        r = clients.send_message(self.alice, self.bob, timeout=T_MSG)
        self.assertDelivered(r, self.alice, self.bob)

    def test_2_message_b_to_a(self):
        self.note_attempted(self.bob, self.alice)
        r = clients.send_message(self.bob, self.alice, timeout=T_MSG)
        self.assertDelivered(r, self.bob, self.alice)

    def test_3_ping_remote_domains(self):
        r = clients.ping(self.alice, "b.test", timeout=T_PING)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], "b.test")
        r = clients.ping(self.bob, "a.test", timeout=T_PING)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], "a.test")

    def test_4_ping_remote_user(self):
        r = clients.ping_user(self.alice, self.bob, timeout=T_PING)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], r.data["target"])
        self.assertTrue(r.data["target"].startswith("bob@b.test/"))

    def test_5_subscription_both_ways(self):
        r = clients.subscribe_both(self.alice, self.bob, timeout=T_SUB)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["subscription"], {"alice@a.test": "both", "bob@b.test": "both"})

    def test_6_redirect_and_local_link(self):
        self.ensure_traffic()
        # Prosody's outgoing s2s went to the proxy through the plugin, never to DNS
        for server, remote in ((self.a, "b.test"), (self.b, "a.test")):
            log = server.log_text()
            self.assertRegex(log, rf"s2sout to {re.escape(remote)} goes to s2s-proxy at "
                                  rf"{re.escape(server.proxy[0])} port {server.proxy[1]}")
            self.assertIn(f"Outgoing s2s connection {server.hosts[0].domain}->{remote} complete", log)
            self.assertIn(f"Incoming s2s connection {remote}->{server.hosts[0].domain} complete", log)
        with open(self.dns.proc.log_path) as f:
            self.assertNotIn("_xmpp-server._tcp", f.read(), "a proxied Prosody looked up s2s in DNS")
        # the local links of both proxies: the local server accepted our dialback and its own
        for p, local, remote in ((self.pa, "a.test", "b.test"), (self.pb, "b.test", "a.test")):
            log = p.log_text()
            self.assertRegex(log, rf"\[c\d+ {local}->{remote}\] local-accepted: ")
            self.assertRegex(log, rf"\[c\d+ {local}->{remote}\] local-authenticated: ")


# ------------------------------------------------------------------------------------------------
# (a)-(d): the variants of the public link
# ------------------------------------------------------------------------------------------------

class A_Plain(FederationChecks, ProxiedPair):
    """(a) no TLS between the proxies: dialback in the clear."""

    @classmethod
    def configure(cls):
        pa, pb = cls.pa, cls.pb
        pa.plain()
        pb.plain()

    def test_7_public_link(self):
        self.ensure_traffic()
        for p, local, remote in ((self.pa, "a.test", "b.test"), (self.pb, "b.test", "a.test")):
            log = p.log_text()
            self.assertRegex(log, rf"(?m)\[c\d+ {local}->{remote}\] ready: stream \w+ negotiated$")
            self.assertRegex(log, rf"(?m)\[c\d+ {local}->{remote}\] authenticated: dialback$")
            self.assertNotRegex(log, r"\] tls: ")


class B_StartTlsDialback(FederationChecks, ProxiedPair):
    """(b) STARTTLS with the CA's certificates on the listeners; no client certificate outgoing,
    so the proxies authenticate by dialback over TLS."""

    @classmethod
    def configure(cls):
        pa, pb = cls.pa, cls.pb
        pa.tls(MODULE["ca"], mode="starttls", cert=MODULE["certs"]["a.test"], client_cert=False)
        pb.tls(MODULE["ca"], mode="starttls", cert=MODULE["certs"]["b.test"], client_cert=False)

    def test_7_public_link(self):
        self.ensure_traffic()
        for p, local, remote in ((self.pa, "a.test", "b.test"), (self.pb, "b.test", "a.test")):
            log = p.log_text()
            self.assertRegex(log, rf"\[c\d+ {local}->{remote}\] tls: TLSv1\.[23], certificate of {remote}: authenticated")
            self.assertRegex(log, rf"\[c\d+ {local}->{remote}\] ready: stream \w+ negotiated over TLS")
            self.assertRegex(log, rf"(?m)\[c\d+ {local}->{remote}\] authenticated: dialback$")
            self.assertRegex(log, r"\] tls: TLSv1\.[23] \S+, peer certificate: none")
            self.assertNotIn("SASL EXTERNAL", log)


class C_StartTlsExternal(FederationChecks, ProxiedPair):
    """(c) STARTTLS, both proxies present certificates for their domain and trust the CA: SASL
    EXTERNAL (XEP-0178) both ways."""

    @classmethod
    def configure(cls):
        pa, pb = cls.pa, cls.pb
        pa.tls(MODULE["ca"], mode="starttls", cert=MODULE["certs"]["a.test"], client_cert=True)
        pb.tls(MODULE["ca"], mode="starttls", cert=MODULE["certs"]["b.test"], client_cert=True)
        # each proxy in both roles (C2_ExternalBidi is the one-connection variant)
        pa.set("s2s.bidi", False)
        pb.set("s2s.bidi", False)

    def test_7_public_link(self):
        self.ensure_traffic()
        for p, local, remote in ((self.pa, "a.test", "b.test"), (self.pb, "b.test", "a.test")):
            log = p.log_text()
            self.assertRegex(log, rf"\[c\d+ {local}->{remote}\] tls: TLSv1\.[23], certificate of {remote}: authenticated")
            # once as the initiating side (outgoing link), once as the receiving side (incoming)
            self.assertGreaterEqual(len(self.proxy_lines(p, rf"\[c\d+ {local}->{remote}\] authenticated: SASL EXTERNAL$")), 2, log)
            self.assertRegex(log, r"\] tls: TLSv1\.[23] \S+, peer certificate: valid")
            self.assertNotRegex(log, r"\] authenticated: dialback")


class C2_ExternalBidi(FederationChecks, ProxiedPair):
    """(c) with bidi (XEP-0288, s2s.bidi = true, the default): proxy A connects first (alice
    writes first), asks for bidi, authenticates with SASL EXTERNAL; proxy B then sends bob's
    stanzas back on that same connection instead of opening one of its own."""

    @classmethod
    def configure(cls):
        pa, pb = cls.pa, cls.pb
        pa.tls(MODULE["ca"], mode="starttls", cert=MODULE["certs"]["a.test"], client_cert=True)
        pb.tls(MODULE["ca"], mode="starttls", cert=MODULE["certs"]["b.test"], client_cert=True)

    def test_7_public_link(self):
        self.ensure_traffic()
        a_log, b_log = self.pa.log_text(), self.pb.log_text()
        self.assertRegex(a_log, r"\[c\d+ a\.test->b\.test\] bidi: asked b\.test for a bidirectional stream")
        self.assertRegex(b_log, r"\[c\d+ b\.test->a\.test\] bidi: the peer asked for a bidirectional stream")
        self.assertRegex(b_log, r"\[c\d+ b\.test->a\.test\] bidi-route: ")
        # one connection: A connected once, B never; B took one stream in (TLS), A none
        self.assertEqual(len(self.proxy_lines(self.pa, r"\] connecting: to b\.test")), 1, a_log)
        self.assertEqual(len(self.proxy_lines(self.pb, r"\] connecting: to a\.test")), 0, b_log)
        self.assertEqual(len(self.proxy_lines(self.pb, r"\] tls: \S+ \S+, peer certificate: ")), 1, b_log)
        self.assertEqual(len(self.proxy_lines(self.pa, r"\] tls: \S+ \S+, peer certificate: ")), 0, a_log)
        conns = (established(local=(self.pa.ip, self.pa.s2s_port)) + established(local=(self.pb.ip, self.pb.s2s_port)))
        self.assertEqual(len(conns), 1, conns)
        self.assertRegex(b_log, r"\[c\d+ b\.test->a\.test\] to-remote: message .* on its bidi stream\)")


class D_DirectTls(FederationChecks, ProxiedPair):
    """(d) direct TLS (XEP-0368) on the listener and outgoing; certificates on the listeners, none
    outgoing, so dialback over TLS (SASL EXTERNAL is variant (c): this one tests the transport)."""

    @classmethod
    def configure(cls):
        pa, pb = cls.pa, cls.pb
        pa.tls(MODULE["ca"], mode="tls", cert=MODULE["certs"]["a.test"], client_cert=False)
        pb.tls(MODULE["ca"], mode="tls", cert=MODULE["certs"]["b.test"], client_cert=False)

    def test_7_public_link(self):
        self.ensure_traffic()
        for p, local, remote in ((self.pa, "a.test", "b.test"), (self.pb, "b.test", "a.test")):
            log = p.log_text()
            self.assertRegex(log, rf"\[c\d+ {local}->{remote}\] tls: TLSv1\.[23], certificate of {remote}: authenticated")
            self.assertRegex(log, rf"\[c\d+ {local}->{remote}\] ready: stream \w+ negotiated over TLS")
            self.assertRegex(log, rf"(?m)\[c\d+ {local}->{remote}\] authenticated: dialback$")
        # the listener speaks TLS at once (no plain stream header first) and, inside, offers no
        # STARTTLS; dialback without a client certificate, SASL EXTERNAL with a valid one
        with kit.RawPeer(self.pb.ip, self.pb.s2s_port, timeout=5) as peer:
            peer.wrap_tls(server_hostname="b.test", ca=self.ca.cert)
            self.assertTrue(peer.tls_version.startswith("TLS"))
            peer.open_stream(to="b.test", from_="a.test")
            self.assertIn("urn:xmpp:features:dialback", peer.received)
            self.assertNotIn("urn:ietf:params:xml:ns:xmpp-tls", peer.received)
            self.assertNotIn("EXTERNAL", peer.received)
        cert = MODULE["certs"]["a.test"]
        with kit.RawPeer(self.pb.ip, self.pb.s2s_port, timeout=5) as peer:
            peer.wrap_tls(server_hostname="b.test", ca=self.ca.cert, cert=cert.chain, key=cert.key)
            peer.open_stream(to="b.test", from_="a.test")
            self.assertRegex(peer.received, r"<mechanism>EXTERNAL</mechanism>")
            self.assertNotIn("urn:ietf:params:xml:ns:xmpp-tls", peer.received)


# ------------------------------------------------------------------------------------------------
# (e)-(h): faults and a real peer
# ------------------------------------------------------------------------------------------------

class E_Policy(ProxiedPair):
    """(e) proxy A has s2s.host_policy deny for b.test."""

    @classmethod
    def configure(cls):
        pa, pb = cls.pa, cls.pb
        pa.plain().deny("b.test")
        pb.plain()

    def assertPolicyError(self, r, what):
        self.assertFalse(r.ok, f"{what} got through a deny policy: {r.describe()}")
        self.assertEqual(r.error_condition, "policy-violation", f"{what}: {r.describe()}")
        self.assertRegex(r.error or "", r"(?i)polic", f"{what}: the error text should say policy: {r.describe()}")

    def test_1_outgoing_message_refused(self):
        r = clients.send_message(self.alice, self.bob, timeout=T_MSG)
        self.assertPolicyError(r, "alice -> bob (denied by alice's own proxy)")

    def test_2_outgoing_ping_refused(self):
        r = clients.ping(self.alice, "b.test", timeout=T_PING)
        self.assertPolicyError(r, "ping b.test from alice (denied by alice's own proxy)")

    def test_3_incoming_refused(self):
        r = clients.send_message(self.bob, self.alice, timeout=T_MSG)
        # refused by the *remote* proxy (A) in dialback: proxy B bounces bob's message; the reason
        # A gave (policy-violation and its text) must reach bob in the bounce's text. (The
        # condition is B's choice: remote-server-not-found today; policy-violation would be more
        # precise.)
        self.assertFalse(r.ok, f"bob -> alice got through proxy A's deny policy: {r.describe()}")
        self.assertTrue(r.data.get("bounced"), f"bob should get an error back, not silence: {r.describe()}")
        self.assertIn(r.error_condition, ("policy-violation", "remote-server-not-found"), r.describe())
        text = r.data["bounced"][0]["error"]["text"] or ""
        self.assertTrue(text.startswith("s2s to a.test failed:"), f"bounce text: {text!r}")
        self.assertRegex(text, r"policy-violation.*b\.test is denied by s2s\.host_policy", r.describe())
        self.assertRegex(self.pa.log_text(), r"refused: dialback: b\.test is denied by s2s\.host_policy")


class F_RemoteProxyDies(ProxiedPair):
    """(f) proxy B is killed: what alice sends bounces with the reason; B back, it flows again."""

    @classmethod
    def configure(cls):
        pa, pb = cls.pa, cls.pb
        pa.plain().set("s2s.outgoing.max_retry_delay", 2)
        pb.plain()

    def test_1_bounce_when_remote_proxy_dead(self):
        r = clients.send_message(self.alice, self.bob, timeout=T_MSG)
        self.assertDelivered(r, self.alice, self.bob)           # the link works first
        self.pb.kill()
        t0 = time.monotonic()
        r = clients.send_message(self.alice, self.bob, timeout=25)
        self.assertFalse(r.ok, r.describe())
        self.assertTrue(r.data.get("bounced"), f"alice should get a bounce, not silence: {r.describe()}")
        self.assertIn(r.error_condition, ("remote-server-not-found", "remote-server-timeout"), r.describe())
        text = r.data["bounced"][0]["error"]["text"] or ""
        self.assertTrue(text.startswith("s2s to b.test failed:"), f"bounce text: {text!r}")
        self.assertLess(time.monotonic() - t0, 20.0, "the bounce should come quickly: connection refused")
        # an iq gets an error too
        r = clients.ping(self.alice, "b.test", timeout=20)
        self.assertFalse(r.ok, r.describe())
        self.assertIn(r.error_condition, ("remote-server-not-found", "remote-server-timeout"), r.describe())

    def test_2_recovers_when_remote_proxy_back(self):
        if not self.pb.alive():
            self.pb.start()
        deadline = time.monotonic() + 30
        attempts = []
        while True:
            r = clients.send_message(self.alice, self.bob, timeout=10)
            attempts.append(r.error or "ok")
            if r.ok or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.assertTrue(r.ok, f"no delivery within 30 s of proxy B coming back; attempts: {attempts}")


class G_LocalRestart(ProxiedPair):
    """(g) Prosody A restarts while bob writes to alice: proxy A holds the stanzas (queue_timeout)
    and delivers them once Prosody A is back; alice gets them as offline messages."""

    @classmethod
    def configure(cls):
        pa, pb = cls.pa, cls.pb
        pa.plain().set("local.queue_timeout", 30_000)
        pb.plain()

    def test_1_messages_wait_for_the_local_server(self):
        r = clients.send_message(self.bob, self.alice, timeout=T_MSG)
        self.assertDelivered(r, self.bob, self.alice)           # links up, mid-conversation
        mark = self.pa.log_mark()
        self.a.stop()
        bodies = [token("while-down") for _ in range(3)]
        r = clients.send(self.bob, "alice@a.test", bodies, linger=2.0, timeout=20)
        self.assertTrue(r.ok, f"bob's messages bounced while Prosody A restarts: {r.describe()}")
        self.a.restart()
        r = clients.receive(self.alice, bodies, timeout=30)
        self.assertTrue(r.ok, f"{r.describe()}\nproxy A since the restart:\n{self.pa.log_text(mark)[-4000:]}")
        # and alice can write back once Prosody A is up again (its outgoing link is redone)
        r = clients.send_message(self.alice, self.bob, timeout=T_MSG)
        self.assertDelivered(r, self.alice, self.bob)

    def test_2_bounced_after_queue_timeout(self):
        # Prosody A stays down longer than local.queue_timeout (2 s here): bob gets his message
        # back, saying that a.test's server is unreachable, instead of silence
        self.pa.set("local.queue_timeout", 2_000)
        self.pa.restart()
        try:
            r = clients.send_message(self.bob, self.alice, timeout=T_MSG)
            self.assertDelivered(r, self.bob, self.alice)
            self.a.stop()
            t0 = time.monotonic()
            r = clients.send(self.bob, "alice@a.test", [token("too-late")], linger=12.0, timeout=20)
            self.assertFalse(r.ok, f"no bounce after local.queue_timeout: {r.describe()}")
            waited = r.data["bounced"][0]["t"] - r.data["sent_t"]
            self.assertEqual(r.error_condition, "remote-server-timeout", r.describe())
            text = r.data["bounced"][0]["error"]["text"] or ""
            self.assertRegex(text, r"the local server for a\.test is unreachable", r.describe())
            self.assertLess(time.monotonic() - t0, 15.0)
            self.assertGreater(waited, 1.5, f"bounced before queue_timeout: {r.describe()}")
        finally:
            self.pa.set("local.queue_timeout", 30_000)
            if not self.a.proc or not self.a.proc.alive():
                self.a.restart()


class G2_LocalForgetsIdleDomains(ProxiedPair):
    """(g2) local.remote_idle_timeout: proxy A forgets b.test on its stream to Prosody A once b.test
    has been quiet that long, and vouches for it again by dialback, on the same stream, when it
    writes again; Prosody takes the second dialback and the message arrives."""

    @classmethod
    def configure(cls):
        pa, pb = cls.pa, cls.pb
        pa.plain().set("local.remote_idle_timeout", 1_000)
        pb.plain()

    def test_1_a_domain_forgotten_is_vouched_for_again(self):
        r = clients.send_message(self.bob, self.alice, timeout=T_MSG)
        self.assertDelivered(r, self.bob, self.alice)
        mark = self.pa.log_mark()
        time.sleep(7)  # idle for 1 s, and the sweep runs every 5 s
        r = clients.send_message(self.bob, self.alice, timeout=T_MSG)
        self.assertDelivered(r, self.bob, self.alice)
        since = self.pa.log_text(mark)
        self.assertRegex(since, r"\[c\d+ a\.test->b\.test\] local-authenticated: ", since[-3000:])
        self.assertNotRegex(since, r"local-link-down", since[-3000:])


class H_RealPeer(kit.pair.ProxiedAndDirect):
    """(h) c.test is a plain federating Prosody (TLS with the test CA, dialback allowed); a.test is
    a proxied Prosody behind s2s-proxy A. c.test finds a.test by SRV in the test dnsmasq (pointing
    at proxy A's public listener); proxy A reaches c.test by an s2s.outgoing.address override.
    Proxy A presents a.test's certificate on its listener but none outgoing, so c.test must check
    proxy A's dialback key by calling back a.test (proxy A as authoritative server)."""

    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_C, IP_PROXY_A)

    @classmethod
    def configure(cls):
        cls.pa.tls(cls.ca, mode="starttls", cert=cls.certs["a.test"], client_cert=False)

    def test_1_message_real_peer_to_proxied(self):
        r = clients.send_message(self.carol, self.alice, timeout=T_MSG)
        self.assertTrue(r.ok, r.describe())
        c_log = self.c.log_text()
        self.assertIn("query[SRV] _xmpp-server._tcp.a.test", open(self.dns.proc.log_path).read())
        self.assertIn("Outgoing s2s connection c.test->a.test complete", c_log)
        self.assertRegex(c_log, r"s2sout\S*\s+info\s+Stream encrypted \(TLS")

    def test_2_message_proxied_to_real_peer(self):
        r = clients.send_message(self.alice, self.carol, timeout=T_MSG)
        self.assertTrue(r.ok, r.describe())
        self.assertIn("Incoming s2s connection a.test->c.test complete", self.c.log_text())
        self.assertRegex(self.pa.log_text(), r"\[c\d+ a\.test->c\.test\] tls: TLSv1\.[23], certificate of c\.test: authenticated")

    def test_3_how_they_authenticated(self):
        self.ensure_both_ways()
        c_log, pa_log = self.c.log_text(), self.pa.log_text()
        # c.test -> proxy A: STARTTLS, c.test's certificate checked by the proxy, SASL EXTERNAL
        self.assertIn("SASL EXTERNAL with a.test succeeded", c_log)
        self.assertRegex(pa_log, r"\[c\d+ a\.test->c\.test\] tls: TLSv1\.[23] \S+, peer certificate: valid")
        self.assertRegex(pa_log, r"(?m)\[c\d+ a\.test->c\.test\] authenticated: SASL EXTERNAL$")
        # proxy A -> c.test: no client certificate, so dialback; c.test asks a.test's authority
        # (found through DNS: proxy A's public listener) and proxy A answers for its own key
        self.assertRegex(pa_log, r"(?m)\[c\d+ a\.test->c\.test\] authenticated: dialback$")
        self.assertRegex(pa_log, r"\[c\d+ a\.test->c\.test\] db-verify: answered valid")
        self.assertRegex(c_log, r"Received\[s2sout\]: <verify [^>]*type='valid'")

    def ensure_both_ways(self):
        for sender, receiver in ((self.carol, self.alice), (self.alice, self.carol)):
            r = clients.send_message(sender, receiver, timeout=T_MSG)
            self.assertTrue(r.ok, r.describe())

    def test_4_pings_both_ways(self):
        r = clients.ping(self.alice, "c.test", timeout=T_PING)
        self.assertTrue(r.ok, r.describe())
        r = clients.ping(self.carol, "a.test", timeout=T_PING)
        self.assertTrue(r.ok, r.describe())

    def test_5_subscription_both_ways(self):
        r = clients.subscribe_both(self.carol, self.alice, timeout=T_SUB)
        self.assertTrue(r.ok, r.describe())


def established(local=None, remote=None):
    """Established TCP connections (from /proc/net/tcp) whose local or remote end is (ip, port)."""
    def addr(hexaddr):
        ip, port = hexaddr.split(":")
        return ".".join(str(int(ip[i:i + 2], 16)) for i in (6, 4, 2, 0)), int(port, 16)
    found = []
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[3] != "01":            # TCP_ESTABLISHED
                continue
            here, there = addr(parts[1]), addr(parts[2])
            if (local and here == tuple(local)) or (remote and there == tuple(remote)):
                found.append((here, there))
    return found


class BidiRealPeer(kit.pair.ProxiedAndDirect):
    """c.test is a federating Prosody 0.12 with mod_s2s_bidi (XEP-0288) and a certificate; a.test a
    proxied Prosody behind proxy A, which presents a.test's certificate both ways (SASL EXTERNAL
    each way, so no dialback call-back connection). Subclasses say who writes first."""

    FIRST = None        # (sender, receiver) attribute names
    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_C, IP_PROXY_A)
    c_modules = ("s2s_bidi",)

    @classmethod
    def configure(cls):
        cls.pa.tls(cls.ca, mode="starttls", cert=cls.certs["a.test"], client_cert=True)
        cls.pa.set("s2s.bidi", True)

    @classmethod
    def started(cls):
        cls.mark = cls.pa.log_mark()  # after the kit's readiness probes of the listeners

    def connections(self):
        """TCP connections between Prosody C and proxy A's public side: those accepted by proxy A's
        listener, and those proxy A opened to Prosody C's s2s port (counted at the proxy's end)."""
        return (established(local=(self.pa.ip, self.pa.s2s_port)) +
                established(remote=(self.c.ip, self.c.s2s_port)))

    def message_each_way(self):
        """A message each way, FIRST's sender first; then exactly one connection between them."""
        sender, receiver = (getattr(self, n) for n in self.FIRST)
        for s, r in ((sender, receiver), (receiver, sender)):
            res = clients.send_message(s, r, timeout=T_MSG)
            self.assertTrue(res.ok, f"{s.jid} -> {r.jid}: {res.describe()}")
            got = res.data["received"][0]
            self.assertEqual(got["to"], r.jid)
            self.assertTrue(got["from"].startswith(s.jid + "/"), got)
        pa_log = self.pa.log_text(self.mark)
        conns = self.connections()
        self.assertEqual(len(conns), 1, f"connections between Prosody C and proxy A: {conns}\n{pa_log[-3000:]}")
        accepted = self.proxy_lines(r"accepted: listen\.s2s\.0 from")
        opened = self.proxy_lines(r"\] connecting: to c\.test")
        self.assertEqual(len(accepted) + len(opened), 1, pa_log[-3000:])
        return pa_log

    def proxy_lines(self, pattern):
        return re.findall(pattern, self.pa.log_text(self.mark), re.M)


class I_BidiPeerFirst(BidiRealPeer):
    """Prosody C writes first: it connects to proxy A, sees bidi offered after STARTTLS, asks for it
    and authenticates with SASL EXTERNAL; alice's answer goes back on that connection."""

    FIRST = ("carol", "alice")

    def test_1_a_message_each_way_over_one_connection(self):
        pa_log = self.message_each_way()
        self.assertEqual(len(self.proxy_lines(r"accepted: listen\.s2s\.0 from")), 1, pa_log[-3000:])
        self.assertRegex(pa_log, r"\[c\d+ a\.test->c\.test\] bidi: the peer asked for a bidirectional stream")
        self.assertRegex(pa_log, r"(?m)\[c\d+ a\.test->c\.test\] authenticated: SASL EXTERNAL$")
        self.assertRegex(pa_log, r"\[c\d+ a\.test->c\.test\] bidi-route: ")
        self.assertRegex(pa_log, r"\[c\d+ a\.test->c\.test\] to-remote: message .* on its bidi stream\)")
        self.assertRegex(self.c.log_text(), r"Requesting bidirectional stream")


class J_BidiProxyFirst(BidiRealPeer):
    """alice writes first: proxy A connects to Prosody C, which offers bidi after STARTTLS; proxy A
    asks for it (Prosody C's certificate is valid for c.test) and authenticates with SASL EXTERNAL;
    carol's answer comes back on that connection and passes the inbound checks."""

    FIRST = ("alice", "carol")

    def test_1_a_message_each_way_over_one_connection(self):
        pa_log = self.message_each_way()
        self.assertEqual(len(self.proxy_lines(r"\] connecting: to c\.test")), 1, pa_log[-3000:])
        self.assertRegex(pa_log, r"\[c\d+ a\.test->c\.test\] bidi: asked c\.test for a bidirectional stream")
        self.assertRegex(pa_log, r"\[c\d+ a\.test->c\.test\] from-remote: message ")
        self.assertRegex(self.c.log_text(), r"Requested bidirectional stream")


class P_ProsodyPlugin(unittest.TestCase):
    """mod_s2s_proxy.lua against a mock of Prosody's module API (prosody_plugin_check.lua): the
    0.12.4+/13 s2sout-pre-connect path that this machine's Prosody 0.12.3 cannot exercise, the
    0.12.0-0.12.3 resolver wrapper, and failing closed on a bad s2s_proxy_port."""

    def test_plugin_under_mock_prosody_versions(self):
        lua = shutil.which("lua5.4") or shutil.which("lua")
        if not lua:
            self.skipTest("no lua5.4 interpreter (Debian package lua5.4, a dependency of prosody)")
        here = os.path.dirname(os.path.abspath(__file__))
        plugin = kit.prosody.PROXY_PLUGIN
        cp = subprocess.run([lua, os.path.join(here, "prosody_plugin_check.lua"), plugin],
                            capture_output=True, text=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
        self.assertRegex(cp.stdout, r"plugin-check: \d+ passed, 0 failed")


if __name__ == "__main__":
    sys.exit(kit.runner.main())
