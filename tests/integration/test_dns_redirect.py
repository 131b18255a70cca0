#!/usr/bin/python3
"""The built-in DNS responder as a server's system resolver (local.dns_upstream), with glibc's own
stub resolver as the client and a real dnsmasq as the upstream, all on loopback.

The client is the one a legacy server without a redirect option uses: glibc (res_query for SRV,
getaddrinfo for addresses, through ctypes and socket), in a private mount namespace whose
/etc/resolv.conf names only the responder on port 53, as a pod with `dnsPolicy: None` and
`dnsConfig.nameservers: [127.0.0.1]` would. s2s-proxy itself runs in such a namespace too, so that
its own resolver would ask its responder if it used resolv.conf.

dnsmasq (the upstream) serves:
    db.test                     A    127.0.0.77     (the server's database, say)
    _xmpp-server._tcp.a.test    SRV  5 0 5269 host.a.test.   (our own domain: the truth)
    host.a.test                 A    127.0.0.78

  Forwarding   a remote domain's SRV comes from the responder (0 0 <listen.local port>
               s2s-proxy.localhost.), and getaddrinfo of that target gives 127.0.0.1; db.test's A
               and our own domain's SRV are dnsmasq's answers, relayed; a name nobody has is
               NXDOMAIN from dnsmasq; the counters say what happened; s2s-proxy's own resolver
               asks dnsmasq (its log says so), not the resolv.conf that names its responder.
  UpstreamTimeout  the first upstream never answers: the client's query goes unanswered, the
               forward is dropped at its 5 s deadline and counted, and the next query goes to the
               second upstream (dnsmasq) and is answered.
  LoopGuard    with no local.dns_upstream and no s2s.outgoing.dns.nameservers, a resolv.conf that
               names the responder makes s2s-proxy refuse to start, saying what to set.

Run as root (port 53, mount namespaces) with Debian's python:
    /usr/bin/python3 tests/integration/test_dns_redirect.py [Class[.test] ...]
    BUILD=build /usr/bin/python3 tests/integration/run_all.py test_dns_redirect
Ends with `integration-summary: N passed, N failed`.
"""
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit.dns import Dnsmasq, Zone  # noqa: E402

IP_PROXY = "127.0.0.12"
DB_IP, HOST_A_IP = "127.0.0.77", "127.0.0.78"

MODULE = {}

# The client: glibc's stub resolver, run inside the namespace. argv: a JSON list of
# ["srv", name] / ["addr", name] lookups; prints one JSON result per lookup.
PROBE = r'''
import ctypes, json, socket, struct, sys
libc = ctypes.CDLL("libc.so.6")
def name_at(msg, off):
    labels = []
    while msg[off]:
        if msg[off] & 0xC0 == 0xC0:
            return name_at(msg, ((msg[off] & 0x3F) << 8) | msg[off + 1])[0], off + 2
        labels.append(msg[off + 1:off + 1 + msg[off]].decode()); off += 1 + msg[off]
    return ".".join(labels) + ".", off + 1
def srv(name):
    buf = ctypes.create_string_buffer(4096)
    n = libc.res_query(name.encode(), 1, 33, buf, 4096)
    if n < 0:
        return {"error": "no answer"}
    msg = buf.raw[:n]
    qd, an = struct.unpack(">HH", msg[4:8])
    off = 12
    for _ in range(qd):
        off = name_at(msg, off)[1] + 4
    records = []
    for _ in range(an):
        off = name_at(msg, off)[1]
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10]); off += 10
        if rtype == 33:
            prio, weight, port = struct.unpack(">HHH", msg[off:off + 6])
            records.append([prio, weight, port, name_at(msg, off + 6)[0]])
        off += rdlen
    return {"srv": records}
def addr(name):
    try:
        return {"addr": sorted({a[4][0] for a in socket.getaddrinfo(name, None, socket.AF_INET)})}
    except socket.gaierror as e:
        return {"error": e.strerror}
for kind, name in json.loads(sys.argv[1]):
    print(json.dumps(srv(name) if kind == "srv" else addr(name)), flush=True)
'''


def setUpModule():
    def check():
        if not kit.procs.is_root():
            raise unittest.SkipTest("needs root: port 53 and private mount namespaces")
    kit.suite.module_setup(MODULE, (), check=check)


def tearDownModule():
    kit.suite.module_teardown(MODULE)


def free_responder_ip():
    """A loopback address where UDP port 53 is free now (127.0.200.x-127.0.250.x)."""
    for _ in range(200):
        ip = f"127.0.{random.randrange(200, 251)}.{random.randrange(2, 255)}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind((ip, 53))
                return ip
            except OSError:
                continue
    raise kit.KitError("no loopback address with UDP port 53 free")


def resolv_conf(directory, nameserver):
    path = os.path.join(directory, "resolv.conf")
    with open(path, "w") as f:
        f.write(f"# written by test_dns_redirect.py\nnameserver {nameserver}\noptions timeout:1 attempts:1\n")
    return path


def in_namespace(resolv_path, argv):
    """argv run in a private mount namespace where /etc/resolv.conf is `resolv_path`."""
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
            'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolv_path, *argv]


def probe(resolv_path, lookups, timeout=15):
    """The results of `lookups` ([("srv"|"addr", name), ...]) by glibc, resolv.conf = resolv_path."""
    r = subprocess.run(in_namespace(resolv_path, ["/usr/bin/python3", "-c", PROBE, json.dumps(lookups)]),
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise kit.KitError(f"probe failed ({r.returncode}): {r.stderr}")
    return [json.loads(line) for line in r.stdout.splitlines()]


class NamespacedProxy(kit.S2SProxy):
    """s2s-proxy with /etc/resolv.conf naming its own responder, as in a pod whose dnsConfig does."""

    def __init__(self, *args, resolv_path, **kwargs):
        super().__init__(*args, **kwargs)
        self.resolv_path = resolv_path

    def argv(self):
        return in_namespace(self.resolv_path, super().argv())


def upstream_zone():
    return (Zone()
            .a("db.test", DB_IP)
            .srv("_xmpp-server._tcp.a.test", "host.a.test", 5269, prio=5, weight=0)
            .a("host.a.test", HOST_A_IP))


class Base(unittest.TestCase):
    upstreams = None  # set by setUpClass: "ip:port" strings, in order

    @classmethod
    def start_proxy(cls, name, upstreams):
        procs = MODULE["procs"]
        cls.responder_ip = free_responder_ip()
        cls.resolv = resolv_conf(procs.mkdir(f"resolv-{name}"), cls.responder_ip)
        cls.px = NamespacedProxy(procs, name, ip=IP_PROXY, hosts=["a.test"], local_server=("127.0.0.1", 1),
                                 local_ip="127.0.0.1", resolv_path=cls.resolv)
        cls.px.set("local.dns_responder", f"{cls.responder_ip}:53")
        cls.px.set("local.dns_upstream", upstreams)
        mark = cls.px.log_mark()
        cls.px.start()
        cls.px.wait_log(rf"listening: local\.dns_responder on {re.escape(cls.responder_ip)} port 53 \(udp\)",
                        since=mark)

    def counter(self, family, result):
        return self.px.metrics().get(f's2s_proxy_{family}{{result="{result}"}}', 0)


class Forwarding(Base):
    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq(MODULE["procs"], upstream_zone()).start()
        cls.start_proxy("fwd", [f"{cls.dns.host}:{cls.dns.port}"])

    def test_remote_srv_is_the_proxy_and_the_rest_is_upstream(self):
        before_answered = self.counter("dns_responder_queries_total", "answered")
        before_forwarded = self.counter("dns_responder_queries_total", "forwarded")
        got = probe(self.resolv, [("srv", "_xmpp-server._tcp.remote.example"),
                                  ("addr", "s2s-proxy.localhost"),
                                  ("addr", "db.test"),
                                  ("srv", "_xmpp-server._tcp.a.test"),
                                  ("addr", "nothing.test")])
        self.assertEqual(got[0], {"srv": [[0, 0, self.px.local_port, "s2s-proxy.localhost."]]})
        self.assertEqual(got[1], {"addr": ["127.0.0.1"]})
        self.assertEqual(got[2], {"addr": [DB_IP]})
        self.assertEqual(got[3], {"srv": [[5, 0, 5269, "host.a.test."]]})
        self.assertIn("error", got[4])
        # what went where: the SRV and its target here, the others (A and AAAA where getaddrinfo
        # asked both) to dnsmasq, every forward answered
        self.assertGreaterEqual(self.counter("dns_responder_queries_total", "answered") - before_answered, 2)
        forwarded = self.counter("dns_responder_queries_total", "forwarded") - before_forwarded
        self.assertGreaterEqual(forwarded, 3)
        kit.procs.wait_until(lambda: self.counter("dns_responder_upstream_total", "relayed") >= forwarded, 5,
                             "every forward relayed")
        self.assertEqual(self.counter("dns_responder_upstream_total", "timeout"), 0)
        log = self.px.log_text()
        self.assertRegex(log, r"dns-forward.*A db\.test forwarded to " + re.escape(f"{self.dns.host}:{self.dns.port}"))
        self.assertRegex(log, r"dns-query.*SRV _xmpp-server\._tcp\.a\.test from .*: forwarded \(own-domain\)")

    def test_the_proxys_own_lookups_go_to_the_upstream(self):
        self.assertRegex(self.px.log_text(),
                         r"remote domains are resolved through " + re.escape(f"{self.dns.host}:{self.dns.port}"))


class UpstreamTimeout(Base):
    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq(MODULE["procs"], upstream_zone(), name="dnsmasq-2").start()
        cls.silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # reads nothing, answers nothing
        cls.silent.bind(("127.0.0.79", 0))
        silent = f"127.0.0.79:{cls.silent.getsockname()[1]}"
        cls.start_proxy("timeout", [silent, f"{cls.dns.host}:{cls.dns.port}"])

    @classmethod
    def tearDownClass(cls):
        cls.silent.close()

    def test_a_silent_upstream_times_out_and_the_next_one_answers(self):
        started = time.monotonic()
        self.assertIn("error", probe(self.resolv, [("addr", "db.test")])[0])
        kit.procs.wait_until(lambda: self.counter("dns_responder_upstream_total", "timeout") >= 1, 10,
                             "the forward to the silent upstream to time out")
        self.assertGreaterEqual(time.monotonic() - started, 4.5)   # held for its 5 s deadline, then dropped
        self.assertEqual(probe(self.resolv, [("addr", "db.test")])[0], {"addr": [DB_IP]})
        self.assertRegex(self.px.log_text(), r"dns-forward.*no answer from 127\.0\.0\.79:\d+ within 5000 ms")


class LoopGuard(unittest.TestCase):
    def test_resolv_conf_naming_the_responder_is_refused_without_upstreams(self):
        procs = MODULE["procs"]
        ip = free_responder_ip()
        resolv = resolv_conf(procs.mkdir("resolv-guard"), ip)
        px = NamespacedProxy(procs, "guard", ip=IP_PROXY, hosts=["a.test"], local_server=("127.0.0.1", 1),
                             local_ip="127.0.0.1", resolv_path=resolv)
        px.set("local.dns_responder", f"{ip}:53")
        px.write_config()
        for extra in ([], ["--check-config"]):
            with self.subTest(argv=extra):
                r = subprocess.run(px.argv() + extra, capture_output=True, text=True, timeout=20)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn("/etc/resolv.conf names local.dns_responder (nameserver " + ip + ")",
                              r.stdout + r.stderr)
                self.assertIn("Set local.dns_upstream", r.stdout + r.stderr)
        # with upstreams it starts (Forwarding above), and --check-config says so
        px.set("local.dns_upstream", ["127.0.0.53"])
        px.write_config()
        r = subprocess.run(px.argv() + ["--check-config"], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    sys.exit(kit.runner.main())
