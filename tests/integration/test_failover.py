#!/usr/bin/python3
"""End-to-end failure handling of s2s-proxy with real peers on loopback: a remote server whose
certificate is for another domain, and a remote proxy that goes away and comes back while the
proxy finds it through DNS.

As in test_federation.py, a.test and b.test are each a real Prosody 0.12 in "proxied" mode behind
its own s2s-proxy, with real slixmpp clients alice@a.test and bob@b.test:

    alice -- Prosody A (127.0.0.2) == s2s-proxy A (127.0.0.12) ~~~~ s2s-proxy B (127.0.0.13) == Prosody B (127.0.0.3) -- bob

  WrongCertificate  proxy B says it is b.test but presents a certificate (from the test CA) for
                    c.test. (a) Proxy A with s2s.use_starttls = "required_trusted" refuses the
                    link: alice's message comes back with remote-server-not-found and a text that
                    says the certificate is not valid for b.test, and nothing reaches b.test.
                    (b) With "optional" the same certificate does not stop it: proxy A goes on
                    with dialback and bob gets the message.
  DnsOutage         proxy A finds b.test in a real dnsmasq: SRV _xmpp-server._tcp.b.test lists
                    stall.b.test (priority 10; a blackhole: connection attempts to it hang until
                    the test releases it, then are refused) and proxy.b.test (priority 20; proxy
                    B's public listener). (1) Proxy B stopped: alice's messages, queued while the
                    attempt is in progress, all come back with the reason and when the next
                    attempt is. (2) With the host out of backoff, alice writes while proxy A is
                    still trying the stalled target; proxy B comes back on the same port meanwhile;
                    every queued message is delivered exactly once and none is bounced.
  BadFirstTarget    proxy A finds b.test in dnsmasq: SRV priority 10 bad.b.test (a scripted server
                    on 127.0.0.24 that accepts and then fails: it closes at once, or answers our
                    header with a stream error), priority 20 proxy.b.test (proxy B). The message
                    is delivered through proxy B, once; proxy A logs the fallback with its reason
                    and counts it in outgoing_fallbacks_total{reason}; the domain does not fail.
  DualStack         proxy A prefers IPv6 (s2s.outgoing.ip_versions = [6, 4], connection_timeout
                    10 s); b.test's SRV target proxy.b.test has AAAA ::1 (a blackhole on proxy B's
                    port: connects hang) and A proxy B's address. Happy eyeballs: IPv4 is dialled
                    250 ms after IPv6, wins, and the message arrives well under the timeout.

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_failover.py [Class[.test] ...]
    BUILD=build/e2e2 /usr/bin/python3 tests/integration/run_all.py test_failover
The binary is $S2S_PROXY_BIN, else $BUILD/s2s-proxy, else build/e2e/s2s-proxy, else build/s2s-proxy.
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import socket
import sys
import threading
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import Background, token  # noqa: E402

IP_PROSODY_A, IP_PROSODY_B = "127.0.0.2", "127.0.0.3"
IP_PROXY_A, IP_PROXY_B = "127.0.0.12", "127.0.0.13"
IP_STALL = "127.0.0.23"          # stall.b.test: the blackholed SRV target
IP_BAD = "127.0.0.24"            # bad.b.test: a target that accepts, then fails the negotiation

T_MSG = 10
MAX_RETRY_DELAY = 2              # s, proxy A's s2s.outgoing.max_retry_delay in DnsOutage

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "b.test", "c.test"))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class Pair(kit.pair.ProxiedPair):
    """Two proxied Prosody servers, each behind its own s2s-proxy; configure() does the rest."""

    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_B, IP_PROXY_A, IP_PROXY_B)
    routes = False


# ------------------------------------------------------------------------------------------------
# Issue 3: a certificate for another domain
# ------------------------------------------------------------------------------------------------

class WrongCertificate(Pair):
    """Proxy B fronts b.test but presents the test CA's certificate for c.test. Proxy A trusts the
    CA and has no client certificate (so, when dialback is allowed, dialback is how a.test proves
    itself to B). Routes by s2s.outgoing.address, as in test_federation.py."""

    @classmethod
    def configure(cls):
        cls.pa.route("b.test", *cls.pb.public_addr)
        cls.pb.route("a.test", *cls.pa.public_addr)
        cls.pb.tls(cls.ca, mode="starttls", cert=cls.certs["c.test"], client_cert=False)
        cls.set_policy("required_trusted")

    @classmethod
    def set_policy(cls, use_starttls):
        """Proxy A has no tls.mode on either side: its tls subsections (the test CA, a.test's
        certificate on the listener, disconnect_on_failure = false) mean STARTTLS, and
        s2s.use_starttls = required_trusted still demands valid certificates per domain."""
        cls.pa.tls(cls.ca, mode="starttls", cert=cls.certs["a.test"], client_cert=False)
        del cls.pa.listener_tls["mode"]
        del cls.pa.outgoing_tls["mode"]
        cls.pa.use_starttls = use_starttls

    def use_starttls(self, value):
        """Proxy A with s2s.use_starttls = value (restarted if it had another)."""
        if self.pa.use_starttls != value or not self.pa.alive():
            self.set_policy(value)
            self.pa.restart()
        self.assertIn(f"use_starttls = \"{value}\"", open(self.pa.config_path).read())
        self.assertNotRegex(open(self.pa.config_path).read(), r"tls\.mode")

    def test_1_required_trusted_refuses_the_certificate(self):
        self.use_starttls("required_trusted")
        marks = {p: p.log_mark() for p in (self.pa, self.pb, self.b)}
        body = token("wrong-cert")
        r = clients.send_message(self.alice, self.bob, body=body, timeout=T_MSG)
        self.assertFalse(r.ok, f"the message got through a certificate for c.test: {r.describe()}")
        self.assertEqual(r.data.get("received"), [], r.describe())
        bounced = r.data.get("bounced") or []
        self.assertEqual(len(bounced), 1, f"alice should get exactly one error back: {r.describe()}")
        self.assertEqual(r.error_condition, "remote-server-not-found", r.describe())
        b = bounced[0]
        self.assertEqual(b["from"], "bob@b.test", b)
        self.assertTrue(b["to"].startswith("alice@a.test/"), b)
        text = b["error"]["text"] or ""
        self.assertRegex(text, r"^s2s to b\.test failed: the certificate of b\.test is not valid for it "
                               r"\(certificate for another name\b[^)]*\); next attempt in \d+ s$", r.describe())
        # proxy A says why: TLS up, the certificate is for another name, refused before any
        # authentication; no dialback was tried
        pa_log = self.pa.log_text(marks[self.pa])
        self.assertRegex(pa_log, r"\[c\d+ a\.test->b\.test\] tls: TLSv1\.[23], certificate of b\.test: "
                                 r"certificate for another name")
        self.assertRegex(pa_log, r"\[c\d+ a\.test->b\.test\] refused: the certificate of b\.test is not valid for it")
        self.assertRegex(pa_log, rf"bounced: message {re.escape(r.data['sent']['id'])}: s2s to b\.test failed: "
                                 r"the certificate of b\.test is not valid")
        self.assertNotRegex(pa_log, r"\] (authenticated|to-remote): ")
        # ...and nothing reached b.test: no authenticated stream at proxy B, no s2s into Prosody B
        pb_log = self.pb.log_text(marks[self.pb])
        self.assertNotRegex(pb_log, r"\] (authenticated|from-remote|to-local): ")
        self.assertNotIn("Incoming s2s connection a.test->b.test complete", self.b.log_text(marks[self.b]))

    def test_2_optional_falls_back_to_dialback(self):
        self.use_starttls("optional")
        mark_a, mark_b = self.pa.log_mark(), self.pb.log_mark()
        r = clients.send_message(self.alice, self.bob, timeout=T_MSG)
        self.assertDelivered(r, self.alice, self.bob)
        pa_log, pb_log = self.pa.log_text(mark_a), self.pb.log_text(mark_b)
        # the same certificate, seen and accepted for what it is: TLS, then dialback
        self.assertRegex(pa_log, r"\[c\d+ a\.test->b\.test\] tls: TLSv1\.[23], certificate of b\.test: "
                                 r"certificate for another name")
        self.assertRegex(pa_log, r"(?m)\[c\d+ a\.test->b\.test\] ready: stream \S+ negotiated over TLS$")
        self.assertRegex(pa_log, r"(?m)\[c\d+ a\.test->b\.test\] authenticated: dialback$")
        self.assertRegex(pa_log, r"\[c\d+ a\.test->b\.test\] db-verify: answered valid")
        self.assertNotRegex(pa_log, r"\] refused: ")
        self.assertNotIn("SASL EXTERNAL", pa_log)
        self.assertRegex(pb_log, r"(?m)\[c\d+ b\.test->a\.test\] authenticated: dialback$")


# ------------------------------------------------------------------------------------------------
# Issue 4: the remote proxy found through DNS goes away and comes back
# ------------------------------------------------------------------------------------------------

def stall_then_proxy_b(cls):
    """The zone of a Pair whose b.test is found through DNS: SRV priority 10 stall.b.test (cls.hole, a
    kit.peer.Blackhole: while open, connects hang; closed, they are refused), priority 20
    proxy.b.test (proxy B); a.test: proxy A. No _xmpps-server records."""
    cls.hole = kit.peer.Blackhole(IP_STALL)
    cls.procs.callback(cls.hole.close)
    first_target_then_proxy_b(cls, "stall.b.test", IP_STALL, cls.hole.port)


def first_target_then_proxy_b(cls, host, ip, port):
    """The zone: SRV _xmpp-server._tcp.b.test priority 10 `host` (A `ip`) at `port`, priority 20
    proxy.b.test (proxy B's public listener); a.test: proxy A. No _xmpps-server records."""
    (cls.zone
     .srv("_xmpp-server._tcp.b.test", host, port, prio=10).a(host, ip)
     .srv("_xmpp-server._tcp.b.test", "proxy.b.test", cls.pb.s2s_port, prio=20).a("proxy.b.test", cls.pb.ip)
     .absent("_xmpps-server._tcp.b.test")
     .srv("_xmpp-server._tcp.a.test", "proxy.a.test", cls.pa.s2s_port).a("proxy.a.test", cls.pa.ip)
     .absent("_xmpps-server._tcp.a.test"))


def use_test_dns(cls):
    """Both proxies resolve through the test's dnsmasq, with short DNS deadlines (it answers at
    once on loopback) that keep the proxies' stops quick. Its answers are loopback addresses,
    which s2s.outgoing.denied_networks refuses by default: the list is emptied."""
    for p in (cls.pa, cls.pb):
        p.set("s2s.outgoing.dns.nameservers", [f"{cls.dns.host}:{cls.dns.port}"])
        p.set("s2s.outgoing.denied_networks", [])
        p.set("s2s.outgoing.dns.timeout", 1)
        p.set("s2s.outgoing.dns.retries", 1)


class DnsOutage(Pair):
    """Both proxies resolve through the test dnsmasq (s2s.outgoing.dns.nameservers); no address
    overrides. b.test: SRV priority 10 stall.b.test (a kit.peer.Blackhole: while open, connects
    hang; closed, they are refused), priority 20 proxy.b.test (proxy B). a.test: proxy A."""

    @classmethod
    def configure(cls):
        stall_then_proxy_b(cls)
        cls.pa.plain()
        cls.pb.plain()
        cls.pa.set("s2s.outgoing.max_retry_delay", MAX_RETRY_DELAY)
        # longer than the whole stalled phase: the attempt must still be running when B is back
        cls.pa.set("s2s.outgoing.connection_timeout", 10_000)

    @classmethod
    def dns_started(cls):
        use_test_dns(cls)

    def wait_backoff_over(self):
        """Until proxy A's latest backoff for b.test (from its log line "backoff: next attempt in N
        ms", stamped with the wall clock) has ended, so that the next stanza starts an attempt."""
        found = re.findall(r"(?m)^(\S+) info \[\?->b\.test\] backoff: next attempt in (\d+) ms$", self.pa.log_text())
        if not found:
            return
        stamp, delay_ms = found[-1]
        t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
        left = t + int(delay_ms) / 1000 + 0.2 - time.time()
        self.assertLess(left, MAX_RETRY_DELAY + 0.5, f"backoff longer than max_retry_delay: {found[-1]}")
        if left > 0:
            time.sleep(left)

    def stop_proxy_b(self):
        """Stop proxy B by PID; wait until proxy A has no link to b.test left (a stanza must not
        be written into a link that is about to be closed)."""
        if not self.pb.alive():
            return
        mark = self.pa.log_mark()
        had_link = re.findall(r"\[(c\d+) a\.test->b\.test\] ready: ", self.pa.log_text())
        self.pb.stop()
        for cid in had_link:
            if not re.search(rf"\[{cid} a\.test->b\.test\] closed: ", self.pa.log_text()):
                self.pa.wait_log(rf"\[{cid} a\.test->b\.test\] closed: ", 10, since=mark)

    def from_local(self, since, to="bob@b.test"):
        return re.findall(rf"\[c\d+ a\.test->b\.test\] from-local: message (\S+) \S+ -> {re.escape(to)} ",
                          self.pa.log_text(since))

    def wait_from_local(self, since, n, timeout=10):
        kit.wait_until(lambda: len(self.from_local(since)) >= n, timeout,
                       f"{n} messages for bob from Prosody A at proxy A", proc=self.pa.proc)

    def assertBouncedWithReason(self, r, sent_n, what):
        bounced = r.data.get("bounced") or []
        sent_ids = sorted(s["id"] for s in r.data.get("sent") or [])
        self.assertEqual(len(sent_ids), sent_n, r.describe())
        self.assertEqual(sorted(m["id"] for m in bounced), sent_ids,
                         f"{what}: every message must come back exactly once: {r.describe()}")
        for m in bounced:
            e = m["error"] or {}
            self.assertIn(e.get("condition"), ("remote-server-not-found", "remote-server-timeout"), r.describe())
            self.assertRegex(e.get("text") or "", r"^s2s to b\.test failed: .+; next attempt in [1-9]\d* s$",
                             f"{what}: the text should say what failed and when the next attempt is: {r.describe()}")
        return bounced

    def test_1_unreachable_bounces_with_reason(self):
        self.stop_proxy_b()
        mark = self.pa.log_mark()
        # (1) the attempt hangs on stall.b.test while alice's messages arrive: they wait in the
        # link's queue; then stall.b.test refuses and proxy.b.test (stopped) refuses too
        bodies = [token("outage") for _ in range(3)]
        self.hole.open()
        job = Background(clients.send, self.alice, "bob@b.test", bodies, linger=12.0, timeout=25)
        try:
            self.pa.wait_log(rf"\[c\d+ a\.test->b\.test\] connecting: to stall\.b\.test \({IP_STALL} port "
                             rf"{self.hole.port}\)", 10, since=mark)
            self.wait_from_local(mark, 3)
            time.sleep(0.2)
            log = self.pa.log_text(mark)
            self.assertNotRegex(log, r"\] (bounced|link-failed): ", "the attempt should still be in progress")
        finally:
            self.hole.close()
        r = job.join_result(30)
        self.assertFalse(r.ok, f"messages to an unreachable b.test were not bounced: {r.describe()}")
        bounced = self.assertBouncedWithReason(r, 3, "queued during the attempt")
        for m in bounced:
            self.assertRegex(m["error"]["text"], rf"^s2s to b\.test failed: could not connect: proxy\.b\.test "
                                                 rf"\({IP_PROXY_B} port {self.pb.s2s_port}\): connection refused; ")
        log = self.pa.log_text(mark)
        self.assertRegex(log, rf"connecting: to proxy\.b\.test \({IP_PROXY_B} port {self.pb.s2s_port}\)")
        self.assertRegex(log, r"\] link-failed: could not connect: ")
        self.assertRegex(log, r"\[\?->b\.test\] backoff: next attempt in \d+ ms")
        self.assertNotRegex(log, r"\] to-remote: ")
        # (2) one more right away: bounced too, from the backoff or by one more failed attempt,
        # again saying why and when the next attempt is
        r = clients.send(self.alice, "bob@b.test", [token("outage-again")], linger=10.0, timeout=20)
        self.assertBouncedWithReason(r, 1, "sent after the failure")
        self.assertNotRegex(self.pa.log_text(mark), r"\] to-remote: ")
        type(self).outage_bodies = bodies

    def test_2_queued_while_connecting_delivered_once(self):
        self.stop_proxy_b()
        self.wait_backoff_over()          # a new attempt, not a bounce from the backoff
        mark = self.pa.log_mark()
        first = [token("queued") for _ in range(3)]
        later = [token("queued-later") for _ in range(2)]
        alice1 = clients.Account.on(self.a, "alice", "a.test", resource="first")
        alice2 = clients.Account.on(self.a, "alice", "a.test", resource="later")
        self.hole.open()
        try:
            job1 = Background(clients.send, alice1, "bob@b.test", first, linger=6.0, timeout=25)
            self.pa.wait_log(r"\[c\d+ a\.test->b\.test\] connecting: to stall\.b\.test", 10, since=mark)
            self.wait_from_local(mark, 3)
            # more while the same attempt is still in progress
            job2 = Background(clients.send, alice2, "bob@b.test", later, linger=5.0, timeout=25)
            self.wait_from_local(mark, 5)
            log = self.pa.log_text(mark)
            self.assertNotRegex(log, r"\] (bounced|link-failed|backoff): ", "the attempt should still be in progress")
            self.assertNotRegex(log, r"connecting: to proxy\.b\.test", "the attempt should still be on stall.b.test")
            self.assertEqual(len(re.findall(r"\] connecting: ", log)), 1, log)
            # b.test comes back on the same port, then the stalled target gives up (refused)
            self.pb.start()
        finally:
            self.hole.close()
        self.pa.wait_log(r"(?m)\[c\d+ a\.test->b\.test\] authenticated: dialback$", 10, since=mark)
        r1, r2 = job1.join_result(30), job2.join_result(30)
        self.assertTrue(r1.ok, f"a message queued during the attempt was bounced: {r1.describe()}")
        self.assertTrue(r2.ok, f"a message queued during the attempt was bounced: {r2.describe()}")
        # each one exactly once at bob's (Prosody B keeps them offline: he logs in afterwards)
        r = clients.collect(self.bob, first + later, linger=1.0, timeout=15)
        self.assertTrue(r.ok, f"queued messages lost: {r.describe()}\nproxy A:\n{self.pa.log_text(mark)[-4000:]}")
        self.assertEqual(r.data["counts"], {b: 1 for b in first + later}, r.describe())
        for b in getattr(type(self), "outage_bodies", []):
            self.assertNotIn(b, r.data["other_bodies"], "a message bounced during the outage was delivered too")
        # how: one link, one attempt: stall.b.test refused, then proxy.b.test; the five went out
        # of the queue once authenticated, nothing was bounced
        log = self.pa.log_text(mark)
        self.assertEqual(len(re.findall(r"\] connecting: ", log)), 2, log)
        self.assertRegex(log, rf"connecting: to proxy\.b\.test \({IP_PROXY_B} port {self.pb.s2s_port}\)")
        queued_out = re.findall(r"\[c\d+ a\.test->b\.test\] to-remote: message (\S+) \S+ -> bob@b\.test "
                                r"\(s2s-proxy -> b\.test, was queued\)", log)
        self.assertEqual(sorted(queued_out), sorted(self.from_local(mark)), log)
        self.assertEqual(len(queued_out), 5, log)
        self.assertNotRegex(log, r"\] (bounced|link-failed): ")


# ------------------------------------------------------------------------------------------------
# Issue 15, item 3: a target that accepts the connection, then fails the negotiation
# ------------------------------------------------------------------------------------------------

class FailingServer:
    """A scripted XMPP server on loopback that accepts each connection and then fails it as
    `how` says: "close" (at once, before a byte), or "stream_error" (it answers the stream header
    with its own and <internal-server-error/>, then closes). One thread; close() stops it."""

    def __init__(self, host, how):
        self.host, self.how = kit.procs.check_loopback(host), how
        self.accepted = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"failing-{self.port}")
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                c, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            with c:
                if self.how == "stream_error":
                    c.settimeout(5)
                    try:
                        c.recv(4096)      # the header
                        c.sendall(kit.peer.stream_header(from_="b.test", to="a.test", id_="bad").encode() +
                                  b"<stream:error><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                  b"</stream:error></stream:stream>")
                    except OSError:
                        pass

    def close(self):
        self._stop = True
        self._thread.join(5)
        self._sock.close()


class BadFirstTarget(Pair):
    """b.test through the test dnsmasq: SRV priority 10 bad.b.test (cls.bad, a FailingServer),
    priority 20 proxy.b.test (proxy B). Both proxies plain."""

    @classmethod
    def configure(cls):
        cls.bad = FailingServer(IP_BAD, "close")
        cls.procs.callback(cls.bad.close)
        first_target_then_proxy_b(cls, "bad.b.test", IP_BAD, cls.bad.port)
        cls.pa.plain()
        cls.pb.plain()

    @classmethod
    def dns_started(cls):
        use_test_dns(cls)

    def delivered_after_fallback(self, how, reason):
        """A new link to b.test (the previous one is closed first) whose first target fails as
        `how` says: the message arrives once, and proxy A says why it fell back."""
        self.bad.how = how
        if re.search(r"\] ready: ", self.pa.log_text()):
            self.pa.restart()             # no link from an earlier test: a new attempt
        mark = self.pa.log_mark()
        before = self.pa.metrics().get(f's2s_proxy_outgoing_fallbacks_total{{reason="{reason}"}}', 0)
        accepted = self.bad.accepted
        started = time.monotonic()
        r = clients.send_message(self.alice, self.bob, timeout=T_MSG)
        self.assertDelivered(r, self.alice, self.bob)
        self.assertLess(time.monotonic() - started, T_MSG)
        self.assertGreater(self.bad.accepted, accepted, "bad.b.test was not tried first")
        log = self.pa.log_text(mark)
        self.assertRegex(log, rf"\[c\d+ a\.test->b\.test\] fallback: bad\.b\.test \({IP_BAD} port "
                              rf"{self.bad.port}\) failed \({reason}\): ")
        self.assertRegex(log, rf"connecting: to proxy\.b\.test \({IP_PROXY_B} port {self.pb.s2s_port}\)")
        self.assertNotRegex(log, r"\] (bounced|link-failed|backoff): ")
        self.assertEqual(self.pa.metrics().get(f's2s_proxy_outgoing_fallbacks_total{{reason="{reason}"}}', 0),
                         before + 1)

    def test_1_closes_after_accept(self):
        self.delivered_after_fallback("close", "closed")

    def test_2_stream_error_before_authentication(self):
        self.delivered_after_fallback("stream_error", "stream_error")


# ------------------------------------------------------------------------------------------------
# Issue 15, item 4: happy eyeballs
# ------------------------------------------------------------------------------------------------

CONNECT_TIMEOUT_MS = 10_000      # proxy A's s2s.outgoing.connection_timeout in DualStack


class DualStack(Pair):
    """b.test through the test dnsmasq: SRV proxy.b.test at proxy B's port, AAAA ::1 (cls.hole, a
    kit.peer.Blackhole on that port) and A proxy B's address. Proxy A prefers IPv6."""

    @classmethod
    def configure(cls):
        cls.hole = kit.peer.Blackhole("::1", cls.pb.s2s_port)
        cls.procs.callback(cls.hole.close)
        (cls.zone
         .srv("_xmpp-server._tcp.b.test", "proxy.b.test", cls.pb.s2s_port).aaaa("proxy.b.test", "::1")
         .a("proxy.b.test", cls.pb.ip)
         .absent("_xmpps-server._tcp.b.test")
         .srv("_xmpp-server._tcp.a.test", "proxy.a.test", cls.pa.s2s_port).a("proxy.a.test", cls.pa.ip)
         .absent("_xmpps-server._tcp.a.test"))
        cls.pa.plain()
        cls.pb.plain()
        cls.pa.set("s2s.outgoing.ip_versions", [6, 4])
        cls.pa.set("s2s.outgoing.connection_timeout", CONNECT_TIMEOUT_MS)

    @classmethod
    def dns_started(cls):
        use_test_dns(cls)

    def test_1_ipv6_never_answers_ipv4_wins(self):
        mark = self.pa.log_mark()
        with self.hole:
            started = time.monotonic()
            r = clients.send_message(self.alice, self.bob, timeout=T_MSG)
            took = time.monotonic() - started
        self.assertDelivered(r, self.alice, self.bob)
        self.assertLess(took, CONNECT_TIMEOUT_MS / 1000 / 2, "delivered only after the IPv6 connect timed out?")
        log = self.pa.log_text(mark)
        port = self.pb.s2s_port
        self.assertRegex(log, rf"\[c\d+ a\.test->b\.test\] connecting: to proxy\.b\.test \(::1 port {port}\)")
        self.assertRegex(log, rf"\[c\d+ a\.test->b\.test\] connecting: to proxy\.b\.test \({IP_PROXY_B} port "
                              rf"{port}\) \(happy eyeballs: the other address family\)")
        self.assertRegex(log, rf"\[c\d+ a\.test->b\.test\] happy-eyeballs: proxy\.b\.test \({IP_PROXY_B} port "
                              rf"{port}\) connected first")
        self.assertNotRegex(log, r"\] (bounced|link-failed|backoff): ")


if __name__ == "__main__":
    sys.exit(kit.runner.main())
