#!/usr/bin/python3
"""Hostile DNS with real peers on loopback: a remote domain whose DNS leads back into s2s-proxy.

alice@a.test is on a real Prosody 0.12 in "proxied" mode behind s2s-proxy A (its outgoing s2s for
every domain goes to proxy A's [[listen.local]]); proxy A resolves remote domains through a real
dnsmasq:

    _xmpp-server._tcp.loop.test  SRV 0 0 <proxy A's listen.local port> self.loop.test.
    self.loop.test               A   <proxy A's listen.local address>
    literal.test                 A   127.0.0.31   (no SRV: s2s.outgoing.port, a listener of this test)

  SelfLoop       (1) alice writes to bob@loop.test: without a guard, the stanza would circle
                 s2s_out -> listen.local -> router -> the same s2s_out for ever at full CPU. Proxy A
                 does not dial its own listener: alice gets the message back at once with
                 remote-server-not-found and "DNS for loop.test points at a forbidden address",
                 the refusal is logged and counted, nothing connected, and the proxy is idle.
                 (2) literal.test's A record is loopback: by default (s2s.outgoing.denied_networks)
                 it is not dialled either; the test's listener sees no connection.
  NoDeniedNetworks  the same with s2s.outgoing.denied_networks = []: literal.test is dialled (the
                 test's listener gets proxy A's stream header), but loop.test still is not: no
                 list lets a link lead into s2s-proxy's own listeners.

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_hostile_dns.py [Class[.test] ...]
    BUILD=build /usr/bin/python3 tests/integration/run_all.py test_hostile_dns
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import token  # noqa: E402

IP_PROSODY_A, IP_PROXY_A = "127.0.0.2", "127.0.0.12"
IP_LISTENER = "127.0.0.31"       # literal.test: a listener of this test that only records

T_BOUNCE = 5                     # s: a refused link bounces without any network wait

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test",))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class RecordingListener:
    """A loopback TCP listener that accepts, keeps what each connection sends until `until`
    appears or the peer closes, and closes it. `.connections`: one text per connection."""

    def __init__(self, host):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((kit.procs.check_loopback(host), 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections.append("")
                i = len(self.connections) - 1
            conn.settimeout(0.5)
            deadline = time.monotonic() + 5
            with conn:
                while time.monotonic() < deadline and "<stream:stream" not in self.connections[i]:
                    try:
                        data = conn.recv(4096)
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    with self.lock:
                        self.connections[i] += data.decode(errors="replace")

    def texts(self):
        with self.lock:
            return list(self.connections)

    def close(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(5)


def cpu_seconds(pid):
    """User + system CPU time of a process so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Hostile(unittest.TestCase):
    """A proxied Prosody A behind proxy A, which resolves through the test's dnsmasq."""

    denied_networks = None       # None: the default

    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            ca, certs = MODULE["ca"], MODULE["certs"]
            cls.listener = RecordingListener(IP_LISTENER)
            cls.procs.callback(cls.listener.close)
            cls.pa = kit.S2SProxy(cls.procs, "a", ip=IP_PROXY_A, hosts=["a.test"])
            cls.zone = (kit.Zone()
                        .srv("_xmpp-server._tcp.loop.test", "self.loop.test", cls.pa.local_port, prio=0)
                        .a("self.loop.test", cls.pa.local_ip)
                        .absent("_xmpps-server._tcp.loop.test")
                        .a("literal.test", IP_LISTENER))
            cls.dns = kit.Dnsmasq(cls.procs, cls.zone)
            cls.a = kit.Prosody(cls.procs, "a", ip=IP_PROSODY_A, dns=cls.dns, ca=ca, mode="proxied",
                                proxy=cls.pa.local_addr)
            cls.a.add_host("a.test", users={"alice": "alice-pw"}, cert=certs["a.test"])
            cls.pa.local_server = (cls.a.ip, cls.a.s2s_port)
            cls.pa.plain()
            cls.dns.start()
            cls.pa.set("s2s.outgoing.dns.nameservers", [f"{cls.dns.host}:{cls.dns.port}"])
            cls.pa.set("s2s.outgoing.dns.timeout", 1)
            cls.pa.set("s2s.outgoing.dns.retries", 1)
            cls.pa.set("s2s.outgoing.port", cls.listener.port)       # literal.test has no SRV
            cls.pa.set("s2s.outgoing.state_timeout", 2000)
            if cls.denied_networks is not None:
                cls.pa.set("s2s.outgoing.denied_networks", cls.denied_networks)
            kit.suite.start_all(cls.a, cls.pa)
            cls.alice = clients.Account.on(cls.a, "alice", "a.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def assertBouncedForbidden(self, domain):
        """alice writes to bob@`domain`: the message comes back promptly, saying why."""
        body = token("loop")
        r = clients.send(self.alice, f"bob@{domain}", [body], linger=T_BOUNCE + 5, timeout=T_BOUNCE + 20)
        bounced = r.data.get("bounced") or []
        self.assertEqual(len(bounced), 1, f"the message must come back exactly once: {r.describe()}")
        e = bounced[0]["error"] or {}
        self.assertEqual(e.get("condition"), "remote-server-not-found", r.describe())
        self.assertRegex(e.get("text") or "",
                         rf"^s2s to {re.escape(domain)} failed: DNS for {re.escape(domain)} points at a "
                         r"forbidden address(; next attempt in \d+ s)?$", r.describe())
        self.assertNotRegex(e.get("text") or "", r"127\.0\.0\.|port \d", "no addresses in the bounce")
        sent_t = r.data.get("sent_t")
        if sent_t is not None and bounced[0].get("t") is not None:
            self.assertLess(bounced[0]["t"] - sent_t, T_BOUNCE, f"the bounce must be prompt: {r.describe()}")
        return r

    def assertIdle(self):
        """Proxy A uses (almost) no CPU over a second: nothing circles inside it."""
        pid = self.pa.proc.pid
        before = cpu_seconds(pid)
        time.sleep(1.0)
        used = cpu_seconds(pid) - before
        self.assertLess(used, 0.2, f"proxy A used {used:.2f} s of CPU in 1 s while nothing was sent")

    def loop_test_refused(self):
        mark = self.pa.log_mark()
        before = self.pa.metrics().get('s2s_proxy_outgoing_candidates_refused_total{reason="own_listener"}', 0)
        self.assertBouncedForbidden("loop.test")
        log = self.pa.log_text(mark)
        self.assertRegex(log, rf"\[c\d+ a\.test->loop\.test\] candidate-refused: not connecting to self\.loop\.test "
                              rf"\({re.escape(self.pa.local_ip)} port {self.pa.local_port}\): s2s-proxy itself "
                              r"listens there")
        self.assertNotRegex(log, r"a\.test->loop\.test\] connecting: ", "no connection to loop.test may be tried")
        after = self.pa.metrics().get('s2s_proxy_outgoing_candidates_refused_total{reason="own_listener"}', 0)
        self.assertGreaterEqual(after - before, 1, "the refusal is counted")
        self.assertIdle()


class SelfLoop(Hostile):
    """Default s2s.outgoing.denied_networks."""

    def test_1_srv_at_own_local_listener_bounces(self):
        self.loop_test_refused()

    def test_2_loopback_a_record_not_dialled_by_default(self):
        mark = self.pa.log_mark()
        before = len(self.listener.texts())
        self.assertBouncedForbidden("literal.test")
        self.assertRegex(self.pa.log_text(mark),
                         rf"\[c\d+ a\.test->literal\.test\] candidate-refused: not connecting to literal\.test "
                         rf"\({IP_LISTENER} port {self.listener.port}\): it is in s2s\.outgoing\.denied_networks")
        self.assertEqual(len(self.listener.texts()), before, "nothing may connect to literal.test's address")
        self.assertGreaterEqual(
            self.pa.metrics().get('s2s_proxy_outgoing_candidates_refused_total{reason="denied_network"}', 0), 1)


class NoDeniedNetworks(Hostile):
    """s2s.outgoing.denied_networks = []: DNS may lead anywhere except into s2s-proxy itself."""

    denied_networks = []

    def test_1_loopback_a_record_is_dialled(self):
        before = len(self.listener.texts())
        body = token("literal")
        clients.send(self.alice, "bob@literal.test", [body], linger=1.0, timeout=20)
        kit.wait_until(lambda: any("to='literal.test'" in t or 'to="literal.test"' in t
                                   for t in self.listener.texts()[before:]),
                       10, "proxy A's stream header to literal.test at the test's listener", proc=self.pa.proc)

    def test_2_own_listener_still_refused(self):
        self.loop_test_refused()


if __name__ == "__main__":
    sys.exit(kit.runner.main())
