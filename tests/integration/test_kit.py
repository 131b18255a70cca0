#!/usr/bin/python3
"""Smoke test of the integration kit against the real things, with NO s2s-proxy involved:

- the kit itself: a process that ignores SIGTERM is killed by deadline; a dead server is reported
  at once; the CA's expired and foreign certificates fail verification;
- dnsmasq answers SRV (also the "." target), A and NXDOMAIN from a Zone;
- two Prosody 0.12 servers, a.test on 127.0.0.2 and b.test on 127.0.0.3, find each other through
  the test dnsmasq's SRV records and federate directly over s2s TLS with certificates from the
  throwaway CA (s2s_secure_auth = true, so nothing but a verified certificate lets them talk);
  a slixmpp client on a.test sends a message that a client on b.test receives, pings b.test, and
  both subscribe to each other; a ping to a domain with no DNS fails with remote-server-not-found;
- ejabberd 23.01 starts on 127.0.0.4 (c.test), a client logs in and pings its own server;
- the raw peer gets the right stream errors from Prosody (and ejabberd) for bad stream headers.

Run as root with Debian's python: /usr/bin/python3 tests/integration/test_kit.py [Class.test ...]
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.dns import query, dig  # noqa: E402


def srv_for(zone, domain, server):
    """The records that make `domain` reachable at `server` (s2s): SRV -> host.<domain> -> its IP,
    and no direct-TLS service."""
    host = f"host.{domain}"
    zone.srv(f"_xmpp-server._tcp.{domain}", host, server.s2s_port, prio=10, weight=0)
    zone.a(host, server.ip)
    zone.absent(f"_xmpps-server._tcp.{domain}")


class KitSelfTest(unittest.TestCase):
    """The kit's own guarantees, without any XMPP server."""

    def test_stop_escalates_to_sigkill(self):
        with kit.Procs() as procs:
            p = procs.start("stubborn", ["/bin/sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"],
                            stop_timeout=1.0)
            time.sleep(0.2)
            t0 = time.monotonic()
            p.stop()
            self.assertLess(time.monotonic() - t0, 4.0)
            self.assertFalse(p.alive())
            # the whole group, the backgrounded sleep too (zombies awaiting PID 1 do not count)
            self.assertEqual(kit.procs.group_members(p.pid), [])
            tmp = procs.tmp
        self.assertFalse(os.path.exists(tmp), "Procs removes its temp dir")

    def test_dead_process_reported_at_once(self):
        with kit.Procs() as procs:
            p = procs.start("dies", ["/bin/sh", "-c", "echo bad config >&2; exit 3"])
            t0 = time.monotonic()
            with self.assertRaises(kit.ProcessDied) as cm:
                kit.wait_port("127.0.0.9", kit.free_port("127.0.0.9"), timeout=10, proc=p)
            self.assertLess(time.monotonic() - t0, 3.0)
            self.assertIn("bad config", str(cm.exception))

    def test_wait_port_deadline(self):
        t0 = time.monotonic()
        with self.assertRaises(kit.Timeout):
            kit.wait_port("127.0.0.9", kit.free_port("127.0.0.9"), timeout=0.5)
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_loopback_only(self):
        with self.assertRaises(ValueError):
            kit.procs.check_loopback("192.0.2.1")
        with self.assertRaises(ValueError):
            kit.Zone().a("x.test", "10.0.0.1")

    def test_ca_certificates(self):
        with kit.Procs() as procs:
            ca = kit.CA(procs.mkdir("ca"))
            other = kit.CA(procs.mkdir("ca2"), name="Unrelated CA")
            good = ca.issue("b.test", srv_ids=["_xmpp-server.b.test"], xmpp_addrs=["b.test"], key="rsa")
            expired = ca.issue("b.test", expired=True)
            foreign = other.issue("b.test")
            selfsigned = kit.self_signed(procs.mkdir("ss"), "b.test")

            def verify(issued):
                return subprocess.run(["openssl", "verify", "-CAfile", ca.cert, issued.cert],
                                      capture_output=True, text=True).returncode == 0
            self.assertTrue(verify(good))
            self.assertFalse(verify(expired))
            self.assertFalse(verify(foreign))
            self.assertFalse(verify(selfsigned))
            text = good.text()
            self.assertIn("DNS:b.test", text)
            self.assertIn("_xmpp-server.b.test", text)
            # the chain and key load in Python's ssl (what RawPeer uses for client certificates)
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(good.chain, good.key)


class DnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            zone = (kit.Zone()
                    .srv("_xmpp-server._tcp.b.test", "host.b.test", 5269, prio=10, weight=0)
                    .srv("_xmpp-server._tcp.b.test", "backup.b.test", 15269, prio=20, weight=5)
                    .a("host.b.test", "127.0.0.3")
                    .aaaa("host.b.test", "::1")
                    .absent("_xmpps-server._tcp.b.test"))
            cls.dns = kit.Dnsmasq(cls.procs, zone).start()
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def test_srv(self):
        ans = query("_xmpp-server._tcp.b.test", "SRV", self.dns.server)
        self.assertEqual(ans.rcode, "NOERROR")
        self.assertEqual(sorted(ans.records), [(10, 0, 5269, "host.b.test"), (20, 5, 15269, "backup.b.test")])

    def test_absent_service_has_dot_target(self):
        ans = query("_xmpps-server._tcp.b.test", "SRV", self.dns.server)
        self.assertEqual(ans.rcode, "NOERROR")
        self.assertEqual([r[3] for r in ans.records], ["."])

    def test_a_aaaa_nxdomain(self):
        self.assertEqual(query("host.b.test", "A", self.dns.server).records, ["127.0.0.3"])
        self.assertEqual(query("host.b.test", "AAAA", self.dns.server).records, ["::1"])
        self.assertEqual(query("nothing.b.test", "A", self.dns.server).rcode, "NXDOMAIN")
        self.assertEqual(query("nothing.b.test", "AAAA", self.dns.server).rcode, "NXDOMAIN")

    def test_dig_agrees(self):
        out = dig("_xmpp-server._tcp.b.test", "SRV", self.dns.server)
        if out is None:
            self.skipTest("dig not installed (bind9-dnsutils)")
        self.assertIn("10 0 5269 host.b.test.", out)


class ProsodyFederationTest(unittest.TestCase):
    """a.test (127.0.0.2) <-> b.test (127.0.0.3), s2s over TLS, certificates from the test CA."""

    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            cls.t0 = time.monotonic()
            cls.ca = kit.CA(cls.procs.mkdir("ca"))
            cls.zone = kit.Zone()
            cls.dns = kit.Dnsmasq(cls.procs, cls.zone)
            cls.a = kit.Prosody(cls.procs, "a", ip="127.0.0.2", dns=cls.dns, ca=cls.ca, s2s_secure_auth=True)
            cls.a.add_host("a.test", users={"alice": "alice-pw", "anna": "anna-pw"})
            cls.b = kit.Prosody(cls.procs, "b", ip="127.0.0.3", dns=cls.dns, ca=cls.ca, s2s_secure_auth=True)
            cls.b.add_host("b.test", users={"bob": "bob-pw"})
            srv_for(cls.zone, "a.test", cls.a)
            srv_for(cls.zone, "b.test", cls.b)
            cls.dns.start()
            cls.a.start()
            cls.b.start()
            cls.startup = time.monotonic() - cls.t0
            cls.alice = clients.Account.on(cls.a, "alice", "a.test")
            cls.anna = clients.Account.on(cls.a, "anna", "a.test")
            cls.bob = clients.Account.on(cls.b, "bob", "b.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def test_0_started_quickly_on_loopback(self):
        self.assertLess(self.startup, 15.0, "dnsmasq + 2 Prosody should start in seconds")
        for s in (self.a, self.b):
            self.assertTrue(kit.procs.port_open(s.ip, s.c2s_port))
            self.assertTrue(kit.procs.port_open(s.ip, s.s2s_port))
            # bound to its own address only, not 0.0.0.0
            self.assertFalse(kit.procs.port_open("127.0.0.1", s.s2s_port))

    def test_1_local_message(self):
        r = clients.send_message(self.alice, self.anna, timeout=15)
        self.assertTrue(r.ok, r.describe())

    def test_2_message_over_s2s(self):
        r = clients.send_message(self.alice, self.bob, timeout=20)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["received"][0]["to"], "bob@b.test")
        self.assertTrue(r.data["received"][0]["from"].startswith("alice@a.test/"))
        # ...found through the test DNS, over TLS, authenticated by the test CA's certificates
        dns_log = open(self.dns.proc.log_path).read()
        self.assertIn("query[SRV] _xmpp-server._tcp.b.test", dns_log)
        a_log = self.a.log_text()
        self.assertIn("Outgoing s2s connection a.test->b.test complete", a_log)
        self.assertRegex(a_log, r"s2sout\S*\s+info\s+Stream encrypted \(TLS")
        self.assertIn("certificate chain validation result: valid", a_log)
        b_log = self.b.log_text()
        self.assertRegex(b_log, r"s2sin\S*\s+info\s+Stream encrypted \(TLS")

    def test_3_ping_remote_domain(self):
        r = clients.ping(self.alice, "b.test", timeout=15)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], "b.test")

    def test_4_subscription_both_ways(self):
        r = clients.subscribe_both(self.alice, self.bob, timeout=20)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(set(r.data["subscription"].values()), {"both"})

    def test_5_unknown_domain_fails(self):
        # the failure path is reported, quickly and with its condition: no DNS for nowhere.test
        r = clients.ping(self.alice, "nowhere.test", timeout=10)
        self.assertFalse(r.ok, r.describe())
        self.assertEqual(r.error_condition, "remote-server-not-found", r.describe())

    def test_6_wrong_password_fails(self):
        r = clients.login(clients.Account("alice@a.test", "wrong", host=self.a.ip, port=self.a.c2s_port,
                                          ca=self.ca.cert), timeout=10)
        self.assertFalse(r.ok)
        self.assertIn("authentication failed", r.error)

    def test_7_raw_peer_bad_stream_header(self):
        with kit.RawPeer(self.a.ip, self.a.s2s_port, timeout=5) as p:
            p.send(kit.stream_header(to="a.test", from_="evil.test", stream_ns="http://wrong.example/streams"))
            cond, _ = p.expect_stream_error("invalid-namespace")
            self.assertTrue(p.closed_by_peer)
        with kit.RawPeer(self.a.ip, self.a.s2s_port, timeout=5) as p:
            p.send(kit.stream_header(to="unknown.test", from_="evil.test"))
            cond, text = p.expect_stream_error("host-unknown")

    def test_8_raw_peer_starttls_without_certificate(self):
        # s2s_secure_auth: after STARTTLS, a peer with no certificate is refused
        with kit.RawPeer(self.b.ip, self.b.s2s_port, timeout=5) as p:
            p.open_stream(to="b.test", from_="evil.test")
            self.assertIn("urn:ietf:params:xml:ns:xmpp-tls", p.received)
            p.starttls(server_hostname="b.test", ca=self.ca.cert)
            self.assertTrue(p.tls_version.startswith("TLS"))
            p.send(kit.stream_header(to="b.test", from_="evil.test"))
            cond, text = p.expect_stream_error("not-authorized")
            self.assertIn("certificate could not be validated", text)

    def test_9_raw_peer_garbage_after_header(self):
        with kit.RawPeer(self.b.ip, self.b.s2s_port, timeout=5) as p:
            p.open_stream(to="b.test", from_="evil.test")
            p.send("<message><not-closed></wrong>")
            p.expect_stream_error("not-well-formed")


class EjabberdTest(unittest.TestCase):
    """ejabberd 23.01, c.test on 127.0.0.4, own node/cookie/spool/logs, no epmd; and its s2s with a
    Prosody (d.test on 127.0.0.5) over TLS with the test CA, SRV from the test dnsmasq."""

    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            t0 = time.monotonic()
            cls.ca = kit.CA(cls.procs.mkdir("ca"))
            cls.zone = kit.Zone()
            cls.dns = kit.Dnsmasq(cls.procs, cls.zone)
            cls.c = kit.Ejabberd(cls.procs, "c", ip="127.0.0.4", dns=cls.dns, ca=cls.ca, s2s_use_starttls="required")
            cls.c.add_host("c.test", users={"carol": "carol-pw"})
            cls.d = kit.Prosody(cls.procs, "d", ip="127.0.0.5", dns=cls.dns, ca=cls.ca, s2s_secure_auth=True)
            cls.d.add_host("d.test", users={"dave": "dave-pw"})
            srv_for(cls.zone, "c.test", cls.c)
            srv_for(cls.zone, "d.test", cls.d)
            cls.dns.start()
            cls.c.start()
            cls.startup = time.monotonic() - t0
            cls.d.start()
            cls.carol = clients.Account.on(cls.c, "carol", "c.test")
            cls.dave = clients.Account.on(cls.d, "dave", "d.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def test_0_started_in_seconds(self):
        self.assertLess(self.startup, 30.0)
        self.assertIn("carol", self.c.ctl("registered_users", "c.test").stdout.split())

    def test_1_login_and_ping_own_server(self):
        r = clients.ping(self.carol, "c.test", timeout=15)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], "c.test")

    def test_2_raw_peer_bad_stream_header(self):
        with kit.RawPeer(self.c.ip, self.c.s2s_port, timeout=5) as p:
            p.send(kit.stream_header(to="c.test", from_="evil.test", stream_ns="http://wrong.example/streams"))
            p.expect_stream_error("invalid-namespace")

    def test_4_federation_with_prosody_both_ways(self):
        r = clients.send_message(self.carol, self.dave, timeout=20)
        self.assertTrue(r.ok, r.describe())
        r = clients.send_message(self.dave, self.carol, timeout=20)
        self.assertTrue(r.ok, r.describe())
        # ejabberd writes its log asynchronously: a loaded machine may show a line a little later
        self.c.wait_log(re.escape("Accepted inbound s2s EXTERNAL authentication d.test -> c.test"), timeout=10)
        self.d.wait_log(re.escape("Outgoing s2s connection d.test->c.test complete"), timeout=10)
        self.c.wait_log(re.escape("Accepted outbound s2s EXTERNAL authentication c.test -> d.test (127.0.0.5)"),
                        timeout=10)
        # the SRV target's A record came from the private /etc/hosts, not from any resolver
        with open(os.path.join(self.c.etc_dir, "hosts")) as f:
            self.assertIn("127.0.0.5 host.d.test", f.read())

    def test_3_nothing_listens_off_loopback_or_on_epmd(self):
        pids = set(kit.procs.descendants(self.c.proc.pid)) | {self.c.proc.pid}
        socks = kit.procs.listening_sockets(pids)
        tcp_ports = {port for proto, _, port, _ in socks if proto.startswith("tcp")}
        # c2s, s2s and the Erlang distribution port, nothing else
        self.assertEqual(tcp_ports, {self.c.c2s_port, self.c.s2s_port, self.c.dist_port}, socks)
        for proto, ip, port, pid in socks:
            if proto.startswith("tcp"):      # (a UDP socket may be a resolver's client socket)
                self.assertTrue(ip.startswith("127.") or ip == "::1", (proto, ip, port, pid))
        self.assertNotIn(4369, tcp_ports, "no epmd")
        # and no epmd anywhere on the machine's loopback
        self.assertFalse(kit.procs.port_open("127.0.0.1", 4369))

if __name__ == "__main__":
    sys.exit(kit.runner.main())
