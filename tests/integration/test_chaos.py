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
                   reads; b.test's messages are not held up by it, and each message to c.test is
                   written to a link or bounced once general.send_timeout has ended the stalled
                   links.

The invariant, per message id, after quiescence (both proxies' queues empty, every bounce the
proxies logged back at alice's): each message is either at bob's exactly once (he logs in
afterwards and gets them from offline storage) or came back to alice exactly once as an error
stanza with a text that says why; none both, none twice, none missing. And each proxy's counters
balance: stanzas received = delivered + bounced + dropped (by reason).

Known limit, named by a skipped check: after a SIGKILL, a message the proxy had already written to
the connection the kill cut is lost without an error (s2s has no acknowledgements without XEP-0198,
which s2s-proxy does not implement); the test tolerates only such messages and names them. The
same holds for what was written to a link to a remote that stopped reading.

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_chaos.py [Class[.test] ...]
    BUILD=build /usr/bin/python3 tests/integration/run_all.py test_chaos
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import socket
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import Background  # noqa: E402

IP_PROSODY_A, IP_PROSODY_B = "127.0.0.2", "127.0.0.3"
IP_PROXY_A, IP_PROXY_B = "127.0.0.12", "127.0.0.13"
IP_RELAY = "127.0.0.31"
IP_C = "127.0.0.33"               # c.test: a raw remote

RATE = 20                          # messages per second
COUNT = 60                         # per test: three seconds of traffic
T_QUIET = 60                       # s, deadline for quiescence after the fault is repaired
SEND_TIMEOUT = 2000                # ms, proxy A's general.send_timeout in StalledRemote

IN_FLIGHT = ("known limitation: a message s2s-proxy has written to a connection that a SIGKILL then cuts (before "
             "the process at the other end read it, or while it held it) is lost without an error: s2s has no "
             "acknowledgements without XEP-0198 stream management, which s2s-proxy does not implement. The test "
             "above tolerates only such messages (written to the connection the fault closed) and names them")

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


class Chaos(kit.pair.ProxiedPair):
    """Two proxied Prosody servers, each behind its own s2s-proxy, plain s2s between the proxies;
    proxy A reaches b.test through cls.relay. choose_routes() may route otherwise."""

    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_B, IP_PROXY_A, IP_PROXY_B)
    routes = False

    @classmethod
    def configure(cls):
        cls.relay = kit.Relay(IP_RELAY, cls.pb.public_addr)
        cls.procs.callback(cls.relay.close)
        cls.relay.start()
        for p in (cls.pa, cls.pb):
            p.plain()
            p.set("s2s.outgoing.max_retry_delay", 2)
        cls.choose_routes()

    @classmethod
    def choose_routes(cls):
        cls.pa.route("b.test", *cls.relay.addr)
        cls.pb.route("a.test", *cls.pa.public_addr)

    # -- the stream of messages -------------------------------------------------------------------
    def start_stream(self, tag, to="bob@b.test", count=COUNT, rate=RATE, pad=0, sender=None):
        """alice (or `sender`) sends `count` numbered messages to `to` at `rate` per second in the
        background; returns the job (job.progress: the worker's progress file; job.stop: its stop
        file)."""
        d = self.procs.mkdir(f"stream-{tag}")
        run = uuid.uuid4().hex[:8]
        bodies = [f"chaos-{tag}-{run}-{i:04d}" + ("." * pad) for i in range(count)]
        progress, stop = os.path.join(d, "progress.json"), os.path.join(d, "stop")
        job = Background(clients.send, sender or self.alice, to, bodies, interval=1.0 / rate, progress=progress,
                         stop_file=stop, timeout=count / rate + T_QUIET + 60)
        job.progress, job.stop, job.bodies, job.to = progress, stop, bodies, to
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

    def written_to_cut_links(self, px, mark, pair):
        """Ids of the messages `px` wrote (to-remote or to-local) on a connection of `pair` (e.g.
        "a.test->b.test") that closed after `mark`: those the fault may have cut in flight."""
        log = px.log_text(mark)
        closed = set(re.findall(rf"\[(c\d+) {re.escape(pair)}\] closed: ", log))
        full = px.log_text()
        return {mid for cid, mid in re.findall(rf"\[(c\d+) {re.escape(pair)}\] to-(?:remote|local): message (\S+) ", full)
                if cid in closed}

    def finish(self, job, *others, others_may_be_delivered=False, in_flight=None):
        """Waits for quiescence, ends the senders' jobs, collects bob's messages and checks the
        invariant per message id and the proxies' counters. `job` streams to bob; each of `others`
        to a remote that never takes anything (every message must come back). Returns (delivered
        ids, bounced ids, a one-line report) of `job`."""
        jobs = (job,) + others
        for j in jobs:
            kit.wait_until(lambda: clients.read_progress(j.progress).get("done"), T_QUIET,
                           f"alice to have sent every message to {j.to}")
        self.wait_quiescent()
        # every bounce a proxy logged has reached alice
        logged = self.bounce_ids_logged()
        for j in jobs:
            mine = {m["id"] for m in clients.read_progress(j.progress)["sent"]}
            want = logged & mine
            kit.wait_until(lambda: want <= set(clients.read_progress(j.progress)["bounced"]), T_QUIET,
                           f"the {len(want)} bounces the proxies logged to reach alice")
        for j in jobs:
            with open(j.stop, "w"):
                pass
        results = [j.join_result(30) for j in jobs]
        for j, r in zip(jobs, results):
            self.assertEqual(len(r.data.get("sent") or []), len(j.bodies), r.describe())
        bounced = {}
        for r in results:
            for m in r.data.get("bounced") or []:
                bounced.setdefault(m["id"], []).append(m)
        for mid, copies in bounced.items():
            self.assertEqual(len(copies), 1, f"message {mid} bounced {len(copies)} times: {copies}")
            e = copies[0]["error"] or {}
            self.assertTrue(e.get("condition"), copies[0])
            self.assertTrue((e.get("text") or "").strip(), f"a bounce without a reason: {copies[0]}")
        for j, r in zip(() if others_may_be_delivered else others, results[1:]):
            kept = [s["id"] for s in r.data["sent"] if s["id"] not in bounced]
            self.assertEqual(kept, [], f"messages to {j.to} neither bounced nor delivered: {r.describe()}")
        sent = results[0].data["sent"]
        # written to a connection the fault then closed: at bob's or not (not waited for)
        maybe_cut = in_flight() if in_flight else set()
        expect_at_bob = [s["body"] for s in sent if s["id"] not in bounced and s["id"] not in maybe_cut]
        c = clients.collect(self.bob, expect_at_bob, linger=1.0, timeout=30)
        counts = dict(c.data.get("counts") or {})
        other_bodies = c.data.get("other_bodies") or []
        for s in sent:
            if s["id"] in maybe_cut and s["id"] not in bounced:
                counts[s["body"]] = other_bodies.count(s["body"])
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
        bodies = {s["body"]: s["id"] for s in sent}
        both += [bodies[b] for b in other_bodies if b in bodies and bodies[b] in bounced]
        # a message already written to a connection that the fault killed is gone with it: s2s
        # has no acknowledgements (no XEP-0198 here), so no one can tell it to its sender
        cut = sorted(set(lost) & maybe_cut)
        lost = [m for m in lost if m not in cut]
        type(self).lost_in_flight = getattr(type(self), "lost_in_flight", []) + cut
        report = (f"sent {len(sent)}, bounced {sum(1 for s in sent if s['id'] in bounced)}, at bob's "
                  f"{sum(1 for v in counts.values() if v)}; lost {lost}, duplicated {dup}, delivered and bounced {both}, "
                  f"lost in flight on the cut connection {cut}")
        self.assertFalse(lost or dup or both, report + "\n" + c.describe()[-3000:])
        for px in (self.pa, self.pb):
            received, delivered, nb, dropped, queued = counters(px)
            self.assertEqual(received, delivered + nb + dropped,
                             f"proxy {px.name}: received {received} != delivered {delivered} + bounced {nb} + "
                             f"dropped {dropped}")
            self.assertEqual(queued, 0)
        return [s["id"] for s in sent if s["id"] not in bounced], sorted(b for b in bounced if b in {s["id"] for s in sent}), report


# ------------------------------------------------------------------------------------------------

class ProsodyKilled(Chaos):
    def test_receiving_server_killed_and_restarted(self):
        job = self.start_stream("prosody")
        self.wait_sent(job, COUNT // 3)
        mark = self.pb.log_mark()
        self.b.kill()
        self.wait_sent(job, 2 * COUNT // 3)
        self.b.restart()
        delivered, bounced, report = self.finish(
            job, in_flight=lambda: self.written_to_cut_links(self.pb, mark, "b.test->a.test"))
        print(f"ProsodyKilled: {report}", file=sys.stderr)
        # proxy B saw its local link go and made a new one
        self.assertRegex(self.pb.log_text(mark), r"\[c\d+ b\.test->a\.test\] closed: ")
        self.assertTrue(delivered, "nothing got through after the restart")

    @unittest.skip(IN_FLIGHT)
    def test_z_nothing_lost_in_flight(self):
        self.assertEqual(getattr(type(self), "lost_in_flight", None), [])


class ProxyKilled(Chaos):
    def test_remote_proxy_killed_and_restarted(self):
        job = self.start_stream("proxy")
        self.wait_sent(job, COUNT // 3)
        mark = self.pa.log_mark()
        self.pb.kill()
        self.wait_sent(job, 2 * COUNT // 3)
        self.pb.start()
        delivered, bounced, report = self.finish(
            job, in_flight=lambda: self.written_to_cut_links(self.pa, mark, "a.test->b.test"))
        print(f"ProxyKilled: {report}", file=sys.stderr)
        # proxy A lost its link to b.test and made a new one
        log = self.pa.log_text(mark)
        self.assertRegex(log, r"\[c\d+ a\.test->b\.test\] closed: ")
        self.assertRegex(log, r"\[c\d+ a\.test->b\.test\] authenticated: ")
        self.assertTrue(delivered, "nothing got through after the restart")

    @unittest.skip(IN_FLIGHT)
    def test_z_nothing_lost_in_flight(self):
        self.assertEqual(getattr(type(self), "lost_in_flight", None), [])


class DnsDown(Chaos):
    @classmethod
    def choose_routes(cls):
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
        # no link yet: the first message needs b.test resolved, while dnsmasq is stopped
        self.dns.stop()
        job = self.start_stream("dns", count=100)     # 5 s: longer than a backoff after DNS is back
        self.wait_sent(job, 30)
        self.pa.wait_log(r"\] link-failed: ", 15)
        self.dns.start()
        delivered, bounced, report = self.finish(job)
        print(f"DnsDown: {report}", file=sys.stderr)
        self.assertTrue(bounced, f"nothing bounced while DNS was down: {report}")
        self.assertTrue(delivered, f"nothing delivered once DNS was back: {report}")


class RelayPaused(Chaos):
    def test_connection_goes_silent_then_comes_back(self):
        job = self.start_stream("silent")
        self.wait_sent(job, COUNT // 3)
        kit.wait_until(lambda: self.relay.stats()["connections"] >= 1, 10, "a link through the relay")
        self.relay.pause()
        at_pause = counters(self.pb)[0]
        self.wait_sent(job, 2 * COUNT // 3)
        self.assertEqual(counters(self.pb)[0], at_pause, "proxy B received stanzas through a paused relay")
        self.relay.resume()
        delivered, bounced, report = self.finish(job)
        print(f"RelayPaused: {report}", file=sys.stderr)
        self.assertEqual(bounced, [], report)



class SilentRemote(Chaos):
    """c.test's server (cls.silent) completes the TCP handshake from its listen queue and never
    reads or writes a byte."""

    @classmethod
    def configure(cls):
        super().configure()
        cls.silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cls.procs.callback(cls.silent.close)
        cls.silent.bind((IP_C, 0))
        cls.silent.listen(64)
        cls.pa.route("c.test", *cls.silent.getsockname())

    def test_remote_that_never_answers(self):
        mark = self.pa.log_mark()
        to_c = self.start_stream("silent-c", to="carol@c.test",
                                 sender=clients.Account.on(self.a, "alice", "a.test", resource="to-c"))
        job = self.start_stream("beside-silent")
        delivered, bounced, report = self.finish(job, to_c)
        print(f"SilentRemote: {report}", file=sys.stderr)
        self.assertEqual(bounced, [], f"messages to b.test bounced while c.test was silent: {report}")
        r = to_c.result
        texts = {m["error"]["text"] for m in r.data["bounced"]}
        for t in texts:
            self.assertRegex(t, r"^s2s to c\.test failed: ", r.describe())
        self.assertRegex(self.pa.log_text(mark), r"\[c\d+ a\.test->c\.test\] (link-failed|closed): .*(timeout|no answer)")


class StallingPeer:
    """c.test's server as a raw peer: it answers proxy A's stream header with its own and
    dialback's db:result with type='valid' (without verifying), then never reads again. Its
    receive buffer is small, so what proxy A writes fills the socket buffers soon."""

    def __init__(self, host):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.conns = []
        self.authenticated = threading.Event()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return self.sock.getsockname()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            c.settimeout(10)
            try:
                data = self._read_until(c, b"", rb"<stream:stream\b[^>]*>")
                c.sendall((kit.stream_header(from_="c.test", to="a.test", id_="chaos-c") +
                           "<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>").encode())
                self._read_until(c, data, rb"<db:result\b[^>]*>[^<]*</db:result>")
                c.sendall(b"<db:result from='c.test' to='a.test' type='valid'/>")
                self.authenticated.set()
            except OSError:
                pass        # then nothing more is read from this connection

    @staticmethod
    def _read_until(c, data, pattern):
        while not re.search(pattern, data):
            chunk = c.recv(65536)
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def close(self):
        self.stopped = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


class StalledRemote(Chaos):
    """c.test's server (a StallingPeer) completes dialback and then stops reading; alice writes
    large messages to it until the socket buffers and proxy A's output are full, while her
    steady stream to bob@b.test goes on."""

    @classmethod
    def configure(cls):
        super().configure()
        cls.stall = StallingPeer(IP_C)
        cls.procs.callback(cls.stall.close)
        cls.pa.route("c.test", *cls.stall.addr)
        cls.pa.set("general.send_timeout", SEND_TIMEOUT)

    def test_remote_that_stops_reading(self):
        mark = self.pa.log_mark()
        to_c = self.start_stream("stall-c", to="carol@c.test", count=100, rate=50, pad=60000,
                                 sender=clients.Account.on(self.a, "alice", "a.test", resource="to-c"))
        self.assertTrue(self.stall.authenticated.wait(20), "c.test's dialback did not complete")
        kit.wait_until(lambda: clients.read_progress(to_c.progress).get("done"), 30, "alice's messages to c.test sent")
        # the peer's window is closed: bytes wait in proxy A's send queue toward c.test
        kit.wait_until(lambda: self.send_queue_to(self.stall.addr) > 0, 20, "a full send queue toward c.test")
        print(f"StalledRemote: send queue toward c.test {self.send_queue_to(self.stall.addr)} bytes", file=sys.stderr)
        job = self.start_stream("beside-stall")
        kit.wait_until(lambda: clients.read_progress(job.progress).get("done"), 30, "alice's messages to bob sent")
        delivered, bounced, report = self.finish_stalled(job, to_c, mark)
        print(f"StalledRemote: {report}", file=sys.stderr)
        self.assertEqual(bounced, [], f"messages to b.test bounced while c.test stalled: {report}")

    def test_z_stalled_remote_messages_come_back(self):
        # Held back while the output to c.test is full, then written to a new link or bounced once
        # general.send_timeout has ended the stalled one.
        self.assertEqual(getattr(type(self), "unaccounted", None), [],
                         "messages to c.test neither written to its stream nor bounced")

    @staticmethod
    def send_queue_to(addr):
        """Bytes in the send queues of established TCP connections to addr (from /proc/net/tcp)."""
        total = 0
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "01" and kit.procs._parse_addr(fields[2]) == (addr[0], addr[1]):
                    total += int(fields[4].split(":")[0], 16)
        return total

    def finish_stalled(self, job, to_c, mark):
        """Every message to bob at bob's exactly once; every message to c.test written to its
        stream exactly once (proxy A's to-remote log lines) or bounced exactly once."""
        def written():
            return re.findall(r"\[c\d+ a\.test->c\.test\] to-remote: message (\S+) ", self.pa.log_text(mark))

        def accounted():
            p, out = clients.read_progress(to_c.progress), set(written())
            back = set(p.get("bounced") or [])
            return all(m["id"] in out or m["id"] in back for m in p.get("sent") or [])
        # Each stalled link ends SEND_TIMEOUT ms after it fills; the messages held behind it then
        # take a new link or come back: a link's worth at a time.
        try:
            kit.wait_until(accounted, T_QUIET, "every message to c.test written to a link or bounced")
        except kit.Timeout:
            pass        # the check below names them
        delivered, bounced, report = self.finish(job, to_c, others_may_be_delivered=True)
        sent_c = to_c.result.data["sent"]
        back = {m["id"] for m in to_c.result.data.get("bounced") or []}
        out = written()
        unaccounted = []
        for s_ in sent_c:
            n = out.count(s_["id"]) + (1 if s_["id"] in back else 0)
            self.assertLessEqual(n, 1, f"message {s_['id']} to c.test: written {out.count(s_['id'])} times, "
                                       f"bounced: {s_['id'] in back}")
            if n == 0:
                unaccounted.append(s_["id"])
        type(self).unaccounted = unaccounted
        report += f"; to c.test: {len(set(out))} written, {len(back)} bounced, {len(unaccounted)} held back"
        return delivered, bounced, report


if __name__ == "__main__":
    sys.exit(kit.runner.main())
