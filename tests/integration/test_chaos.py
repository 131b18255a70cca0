#!/usr/bin/python3
"""Chaos with real peers: faults injected while messages flow, and nothing lost or duplicated.

a.test and b.test are each a real Prosody 0.12 in "proxied" mode behind its own s2s-proxy (as in
test_federation.py); proxy A reaches b.test through a TCP relay the test controls (kit.Relay):

    alice -- Prosody A == s2s-proxy A ~~ relay ~~ s2s-proxy B == Prosody B (bob offline)

In each test alice sends numbered messages to bob@b.test at a steady rate (20/s, a unique body
each) while one fault is injected mid-stream and then repaired:

  ProsodyKilled    Prosody B (the receiving proxy's local server) is killed with SIGKILL and
                   started again.
  ProxyKilled      proxy B is killed with SIGKILL and started again on the same ports.
  DnsDown          both proxies find their peer through dnsmasq (no address overrides); dnsmasq
                   is stopped and started again.
  RelayPaused      the relay stops forwarding both ways (no FIN, no RST: the connection just goes
                   silent), then forwards again.
  SilentRemote     alice also writes to c.test, whose server accepts TCP and never answers;
                   b.test's messages are not held up by it.
  StalledRemote    alice also writes to c.test, a raw peer that completes dialback and then never
                   reads; b.test's messages are not held up by it.

The invariant, per message id, after quiescence (both proxies' queues empty, every bounce the
proxies logged back at alice's): each message is either at bob's exactly once (he logs in
afterwards and gets them from offline storage) or came back to alice exactly once as an error
stanza with a text that says why; none both, none twice, none missing. And each proxy's counters
balance: stanzas received = delivered + bounced + dropped (by reason).

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_chaos.py [Class[.test] ...]
    BUILD=build /usr/bin/python3 tests/integration/run_all.py test_chaos
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import socket
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import Background, start_all  # noqa: E402

IP_PROSODY_A, IP_PROSODY_B = "127.0.0.2", "127.0.0.3"
IP_PROXY_A, IP_PROXY_B = "127.0.0.12", "127.0.0.13"
IP_RELAY = "127.0.0.31"
IP_C = "127.0.0.33"               # c.test: a raw remote

RATE = 20                          # messages per second
COUNT = 60                         # per test: three seconds of traffic
T_QUIET = 60                       # s, deadline for quiescence after the fault is repaired

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "b.test"))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


def counters(px):
    """(received, delivered, bounced, dropped, queued) from the proxy's /metrics."""
    m = px.metrics()

    def total(prefix):
        return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))
    return (total("s2s_proxy_stanzas_received_total"), total("s2s_proxy_stanzas_delivered_total"),
            total("s2s_proxy_stanzas_bounced_total"), total("s2s_proxy_stanzas_dropped_total"),
            total("s2s_proxy_queued_stanzas"))


class Chaos(unittest.TestCase):
    """Two proxied Prosody servers, each behind its own s2s-proxy; proxy A reaches b.test through
    cls.relay. configure() may change the routes before anything starts."""

    @classmethod
    def configure(cls):
        cls.pa.route("b.test", *cls.relay.addr)
        cls.pb.route("a.test", *cls.pa.public_addr)

    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            ca, certs = MODULE["ca"], MODULE["certs"]
            cls.ca, cls.certs = ca, certs
            cls.zone = kit.Zone()
            cls.dns = kit.Dnsmasq(cls.procs, cls.zone)
            cls.pa = kit.S2SProxy(cls.procs, "a", ip=IP_PROXY_A, hosts=["a.test"])
            cls.pb = kit.S2SProxy(cls.procs, "b", ip=IP_PROXY_B, hosts=["b.test"])
            cls.relay = kit.Relay(IP_RELAY, cls.pb.public_addr)
            cls.procs.callback(cls.relay.close)
            cls.relay.start()
            cls.a = kit.Prosody(cls.procs, "a", ip=IP_PROSODY_A, dns=cls.dns, ca=ca, mode="proxied",
                                proxy=cls.pa.local_addr)
            cls.a.add_host("a.test", users={"alice": "alice-pw"}, cert=certs["a.test"])
            cls.b = kit.Prosody(cls.procs, "b", ip=IP_PROSODY_B, dns=cls.dns, ca=ca, mode="proxied",
                                proxy=cls.pb.local_addr)
            cls.b.add_host("b.test", users={"bob": "bob-pw"}, cert=certs["b.test"])
            cls.pa.local_server = (cls.a.ip, cls.a.s2s_port)
            cls.pb.local_server = (cls.b.ip, cls.b.s2s_port)
            for p in (cls.pa, cls.pb):
                p.plain()
                p.set("s2s.outgoing.max_retry_delay", 2)
            cls.configure()
            cls.dns.start()
            cls.dns_started()
            start_all(cls.a, cls.b, cls.pa, cls.pb)
            cls.alice = clients.Account.on(cls.a, "alice", "a.test")
            cls.bob = clients.Account.on(cls.b, "bob", "b.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def dns_started(cls):
        """Settings that need dnsmasq's port."""

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    # -- the stream of messages -------------------------------------------------------------------
    def start_stream(self, tag, to="bob@b.test", count=COUNT, rate=RATE, pad=0):
        """alice sends `count` numbered messages to `to` at `rate` per second in the background;
        returns the job (job.progress: the worker's progress file; job.stop: its stop file)."""
        d = self.procs.mkdir(f"stream-{tag}")
        run = uuid.uuid4().hex[:8]
        bodies = [f"chaos-{tag}-{run}-{i:04d}" + ("." * pad) for i in range(count)]
        progress, stop = os.path.join(d, "progress.json"), os.path.join(d, "stop")
        job = Background(clients.send, self.alice, to, bodies, interval=1.0 / rate, progress=progress,
                         stop_file=stop, timeout=count / rate + T_QUIET + 60)
        job.progress, job.stop, job.bodies = progress, stop, bodies
        return job

    def wait_sent(self, job, n, timeout=30):
        kit.wait_until(lambda: len(clients.read_progress(job.progress).get("sent", [])) >= n, timeout,
                       f"alice to have sent {n} messages")

    def bounce_ids_logged(self):
        """Ids of the messages to bob the two proxies logged as bounced (every log, restarts included)."""
        ids = set()
        for px in (self.pa, self.pb):
            ids |= set(re.findall(r"\] bounced: message (\S+): ", px.log_text()))
        return ids

    def quiescent(self):
        ok = True
        self.last_counters = {}
        for px in (self.pa, self.pb):
            received, delivered, bounced, dropped, queued = counters(px)
            self.last_counters[px.name] = dict(received=received, delivered=delivered, bounced=bounced,
                                               dropped=dropped, queued=queued)
            if queued or received != delivered + bounced + dropped:
                ok = False
        return ok

    def wait_quiescent(self):
        try:
            kit.wait_until(self.quiescent, T_QUIET, "both proxies quiescent (queues empty, counters balanced)")
        except kit.Timeout as e:
            raise AssertionError(f"{e}: {self.last_counters}") from None

    def finish(self, job, *, extra_ids=()):
        """Waits for quiescence, ends the sender's job, collects bob's messages and checks the
        invariant per message id and the proxies' counters. Returns (delivered ids, bounced ids)."""
        kit.wait_until(lambda: clients.read_progress(job.progress).get("done"), T_QUIET,
                       "alice to have sent every message")
        self.wait_quiescent()
        # every bounce a proxy logged has reached alice
        mine = {m["id"] for m in clients.read_progress(job.progress)["sent"]}
        want = (self.bounce_ids_logged() & mine) | set(extra_ids)
        kit.wait_until(lambda: want <= set(clients.read_progress(job.progress)["bounced"]), T_QUIET,
                       f"the {len(want)} bounces the proxies logged to reach alice")
        with open(job.stop, "w"):
            pass
        r = job.join_result(30)
        sent = r.data["sent"]
        self.assertEqual(len(sent), len(job.bodies), r.describe())
        bounced = {}
        for m in r.data.get("bounced") or []:
            bounced.setdefault(m["id"], []).append(m)
        for mid, copies in bounced.items():
            self.assertEqual(len(copies), 1, f"message {mid} bounced {len(copies)} times: {copies}")
            e = copies[0]["error"] or {}
            self.assertTrue(e.get("condition"), copies[0])
            self.assertTrue((e.get("text") or "").strip(), f"a bounce without a reason: {copies[0]}")
        expect_at_bob = [s["body"] for s in sent if s["id"] not in bounced and s.get("to", "bob@b.test")]
        c = clients.collect(self.bob, expect_at_bob, linger=1.0, timeout=30)
        counts = c.data.get("counts") or {}
        body_of = {s["id"]: s["body"] for s in sent}
        lost, dup, both = [], [], []
        for s in sent:
            n_bob = counts.get(s["body"], 0)
            n_back = len(bounced.get(s["id"], []))
            if n_bob + n_back == 0:
                lost.append(s["id"])
            elif n_bob > 1:
                dup.append(s["id"])
            elif n_bob and n_back:
                both.append(s["id"])
        for b in c.data.get("other_bodies") or []:
            if b in body_of.values():
                both.append(b)
        report = (f"sent {len(sent)}, bounced {len(bounced)}, at bob's {sum(1 for v in counts.values() if v)}; "
                  f"lost {lost}, duplicated {dup}, delivered and bounced {both}")
        self.assertFalse(lost or dup or both, report + "\n" + c.describe()[-3000:])
        for px in (self.pa, self.pb):
            received, delivered, nb, dropped, queued = counters(px)
            self.assertEqual(received, delivered + nb + dropped,
                             f"proxy {px.name}: received {received} != delivered {delivered} + bounced {nb} + "
                             f"dropped {dropped}")
            self.assertEqual(queued, 0)
        return [s["id"] for s in sent if s["id"] not in bounced], sorted(bounced), report


# ------------------------------------------------------------------------------------------------

class ProsodyKilled(Chaos):
    def test_receiving_server_killed_and_restarted(self):
        job = self.start_stream("prosody")
        self.wait_sent(job, COUNT // 3)
        self.b.kill()
        self.wait_sent(job, 2 * COUNT // 3)
        self.b.restart()
        delivered, bounced, report = self.finish(job)
        print(f"ProsodyKilled: {report}", file=sys.stderr)
        self.assertTrue(delivered, "nothing got through after the restart")


class ProxyKilled(Chaos):
    def test_remote_proxy_killed_and_restarted(self):
        job = self.start_stream("proxy")
        self.wait_sent(job, COUNT // 3)
        self.pb.kill()
        self.wait_sent(job, 2 * COUNT // 3)
        self.pb.start()
        delivered, bounced, report = self.finish(job)
        print(f"ProxyKilled: {report}", file=sys.stderr)
        self.assertTrue(delivered, "nothing got through after the restart")


class DnsDown(Chaos):
    @classmethod
    def configure(cls):
        (cls.zone
         .srv("_xmpp-server._tcp.b.test", "proxy.b.test", cls.pb.s2s_port).a("proxy.b.test", cls.pb.ip)
         .absent("_xmpps-server._tcp.b.test")
         .srv("_xmpp-server._tcp.a.test", "proxy.a.test", cls.pa.s2s_port).a("proxy.a.test", cls.pa.ip)
         .absent("_xmpps-server._tcp.a.test"))

    @classmethod
    def dns_started(cls):
        for p in (cls.pa, cls.pb):
            p.set("s2s.outgoing.dns.nameservers", [f"{cls.dns.host}:{cls.dns.port}"])
            p.set("s2s.outgoing.denied_networks", [])
            p.set("s2s.outgoing.dns.timeout", 1)
            p.set("s2s.outgoing.dns.retries", 1)

    def test_dns_server_stopped_and_started(self):
        job = self.start_stream("dns")
        self.wait_sent(job, COUNT // 3)
        self.dns.stop()
        self.wait_sent(job, 2 * COUNT // 3)
        self.dns.start()
        delivered, bounced, report = self.finish(job)
        print(f"DnsDown: {report}", file=sys.stderr)
        self.assertTrue(delivered)


class RelayPaused(Chaos):
    def test_connection_goes_silent_then_comes_back(self):
        job = self.start_stream("silent")
        self.wait_sent(job, COUNT // 3)
        kit.wait_until(lambda: self.relay.stats()["connections"] >= 1, 10, "a link through the relay")
        self.relay.pause()
        self.wait_sent(job, 2 * COUNT // 3)
        self.relay.resume()
        delivered, bounced, report = self.finish(job)
        print(f"RelayPaused: {report}", file=sys.stderr)
        self.assertEqual(bounced, [], report)


if __name__ == "__main__":
    sys.exit(kit.runner.main())
