#!/usr/bin/python3
"""End-to-end: a real ejabberd 23.01 fronted by s2s-proxy, its outgoing s2s sent to the proxy by
the proxy's built-in DNS responder (local.dns_responder), the recipe of config-examples/ejabberd/:

    carol -- ejabberd C (127.0.0.4) == s2s-proxy C (127.0.0.14) ~~~~ ...
             c.test, plain s2s      local link: ejabberd's s2s listener <- proxy C's local_out
             on 127.0.0.4           ejabberd's outgoing s2s -> inetrc nameserver = proxy C's DNS
                                    responder (127.0.0.1:P) -> SRV _xmpp-server._tcp.<any> =
                                    localhost:<proxy C's [[listen.local]] port on 127.0.0.1>

  A_ProxiedProsody  ... s2s-proxy A (127.0.0.12) == Prosody A (127.0.0.2, a.test, proxied mode) -- alice
                    ejabberd with config-examples/ejabberd/inetrc as shipped (port changed);
                    no TLS between the proxies; both ways: messages, pings (domains and a full
                    JID), presence subscription; ejabberd's lookups went to the responder, its
                    dialback (incl. its separate verify-only connections) went to proxy C;
                    ejabberd restarted: it finds proxy C again
  B_PlainProsody    ... Prosody D (127.0.0.5, d.test), a plain federating Prosody -- dave
                    STARTTLS on proxy C's public side (test CA); proxy C finds d.test by SRV in the
                    test dnsmasq, Prosody D finds c.test by SRV there (-> proxy C's listener);
                    messages, pings and a subscription both ways; a domain DNS does not know
                    bounces through ejabberd with proxy C's reason; ejabberd's inetrc is the kit's
                    ({lookup, [file, dns]}: DESIGN.md's recipe)
  C_ComponentMode   ... as A, but proxy C in component mode (local.mode = "component", XEP-0114):
                    it writes what it accepts for c.test into ejabberd's ejabberd_service listener
                    (check_from: false) as s2s-proxy.c.test, never over a local s2s stream (its
                    /metrics and log, ejabberd's log); a message and a ping of carol's full JID in,
                    the answers and a reply out through [[listen.local]]; a ping of the component's
                    address gets service-unavailable from proxy C; with a wrong secret alice's
                    message bounces after local.queue_timeout saying not-authorized, and with the
                    right one again it is delivered

ejabberd resolves the SRV *target* (localhost) with glibc's getaddrinfo, not inet_res: the kit runs it
in a mount namespace whose /etc/hosts has localhost only (hermetic_dns), as a pod's /etc/hosts would.
ejabberd caches a failed outgoing s2s ("bouncing for N seconds"): a test that sees that in its log
restarts ejabberd before the next one. Each class starts its own servers.

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_ejabberd.py [Class[.test] ...]
The binary is $S2S_PROXY_BIN, else $BUILD/s2s-proxy, else build/e2e/s2s-proxy, else build/s2s-proxy.
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import start_all  # noqa: E402

IP_PROSODY_A, IP_EJABBERD_C, IP_PROSODY_D = "127.0.0.2", "127.0.0.4", "127.0.0.5"
IP_PROXY_A, IP_PROXY_C = "127.0.0.12", "127.0.0.14"
RESPONDER_IP = "127.0.0.1"         # what the operator kit's inetrc says

MODULE = {}
T_MSG, T_PING, T_SUB = 15, 15, 20


def require_ejabberd():
    if not os.path.exists(kit.ejabberd.EJABBERDCTL):
        raise unittest.SkipTest("ejabberd is not installed (Debian package ejabberd)")


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "c.test", "d.test"), check=require_ejabberd)


def tearDownModule():
    kit.suite.module_teardown(MODULE)


OPERATOR_INETRC = os.path.join(kit.proxy.REPO, "config-examples", "ejabberd", "inetrc")


class EjabberdWithOperatorInetrc(kit.Ejabberd):
    """kit.Ejabberd with config-examples/ejabberd/inetrc as shipped ({lookup, [file, native]}),
    only its nameserver port changed to this test's responder."""

    def inetrc_text(self):
        with open(OPERATOR_INETRC) as f:
            text, n = re.subn(r"\{nameserver, \{127,0,0,1\}, 15353\}",
                              f"{{nameserver, {{127,0,0,1}}, {self.dns.port}}}", f.read())
        if n != 1 or self.dns.host != "127.0.0.1":
            raise kit.KitError(f"{OPERATOR_INETRC}: expected one {{nameserver, {{127,0,0,1}}, 15353}} line")
        return text


COMPONENT = "s2s-proxy.c.test"      # the name proxy C connects as in component mode


class EjabberdWithComponent(kit.Ejabberd):
    """kit.Ejabberd plus an ejabberd_service listener (XEP-0114) on its own address that accepts
    the component COMPONENT with `component_password` and stanzas from any address (check_from:
    false), as in config-examples/ejabberd/ejabberd-component.yml. Set component_port and
    component_password before start()."""

    component_port = None
    component_password = None

    def config_text(self):
        listener = [f"  - port: {self.component_port}",
                    f"    ip: {kit.ejabberd.yaml_str(self.ip)}",
                    "    module: ejabberd_service",
                    "    check_from: false",
                    "    hosts:",
                    f"      {kit.ejabberd.yaml_str(COMPONENT)}:",
                    f"        password: {kit.ejabberd.yaml_str(self.component_password)}"]
        text = super().config_text()
        if text.count("\nlisten:\n") != 1:
            raise kit.KitError("EjabberdWithComponent: expected one listen: section in the kit's ejabberd.yml")
        return text.replace("\nlisten:\n", "\nlisten:\n" + "\n".join(listener) + "\n")

    def start(self, timeout=60.0, register_users=True):
        mark = self.log_mark()
        super().start(timeout, register_users)
        self.wait_log(re.escape(f"Start accepting TCP connections at {self.ip}:{self.component_port} "
                                "for ejabberd_service"), 10, since=mark)
        return self


class ResponderAsDns:
    """What kit.Ejabberd needs of its `dns`: the nameserver for its inetrc (host, port) and a Zone
    for its private /etc/hosts. Here the nameserver is s2s-proxy's built-in responder and the Zone
    is empty, so /etc/hosts holds localhost (and the machine's name) only."""

    def __init__(self, host, port):
        self.host, self.port, self.zone = host, port, kit.Zone()

    @property
    def server(self):
        return (self.host, self.port)


class EjabberdBehindProxy(unittest.TestCase):
    """ejabberd C (c.test) behind s2s-proxy C with local.dns_responder; subclasses add the peer."""

    ejabberd_class = kit.Ejabberd       # its inetrc: the kit's ({lookup, [file, dns]}), DESIGN.md's recipe

    @classmethod
    def add_peer(cls):
        """Makes the peer's servers and settings; returns the ones to start with ejabberd."""
        raise NotImplementedError

    @classmethod
    def dns_started(cls):
        """Settings that need the dnsmasq's port (known once it runs)."""

    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            cls.t0 = time.monotonic()
            cls.ca, cls.certs = MODULE["ca"], MODULE["certs"]
            cls.zone = kit.Zone()
            cls.dns = kit.Dnsmasq(cls.procs, cls.zone)         # for the Prosody side
            # proxy C: [[listen.local]] on 127.0.0.1 (the SRV target is "localhost"), the responder too
            cls.pc = kit.S2SProxy(cls.procs, "c", ip=IP_PROXY_C, hosts=["c.test"], local_ip="127.0.0.1")
            cls.responder = ResponderAsDns(RESPONDER_IP, kit.free_port(RESPONDER_IP, udp=True))
            cls.pc.set("local.dns_responder", f"{RESPONDER_IP}:{cls.responder.port}")
            cls.c = cls.ejabberd_class(cls.procs, "c", ip=IP_EJABBERD_C, dns=cls.responder, ca=cls.ca,
                                       s2s_use_starttls="false", outgoing_s2s_port=cls.pc.local_port)
            cls.c.add_host("c.test", users={"carol": "carol-pw"}, cert=cls.certs["c.test"])
            cls.pc.local_server = (cls.c.ip, cls.c.s2s_port)
            peers = cls.add_peer()
            cls.dns.start()
            cls.dns_started()
            # the responder must answer before ejabberd asks: proxy C first, then the rest
            cls.pc.start()
            cls.pc.wait_log(rf"listening: local\.dns_responder on {re.escape(RESPONDER_IP)} port "
                            rf"{cls.responder.port} \(udp\)", 5)
            start_all(cls.c, *peers)
            cls.startup = time.monotonic() - cls.t0
            cls.carol = clients.Account.on(cls.c, "carol", "c.test")
            cls.c_mark = 0
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def setUp(self):
        # ejabberd keeps a failed outgoing s2s bouncing for a while: one failed test must not
        # fail the next ones for that reason
        cls = type(self)
        if re.search(r"bouncing for \d+ seconds", self.c.log_text(cls.c_mark)):
            self.c.restart()
            cls.c_mark = self.c.log_mark()

    def assertDelivered(self, r, sender, receiver):
        self.assertTrue(r.ok, r.describe())
        got = r.data["received"][0]
        self.assertEqual(got["to"], receiver.jid)
        self.assertTrue(got["from"].startswith(sender.jid + "/"), got)

    def both_ways(self, peer):
        for sender, receiver in ((self.carol, peer), (peer, self.carol)):
            r = clients.send_message(sender, receiver, timeout=T_MSG)
            self.assertDelivered(r, sender, receiver)

    def check_federation(self, peer, peer_domain):
        """messages, pings of both domains and of the peer's full JID, subscription: both ways."""
        self.both_ways(peer)
        r = clients.ping(self.carol, peer_domain, timeout=T_PING)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], peer_domain)
        r = clients.ping(peer, "c.test", timeout=T_PING)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], "c.test")
        for a, b in ((self.carol, peer), (peer, self.carol)):
            r = clients.ping_user(a, b, timeout=T_PING)
            self.assertTrue(r.ok, r.describe())
            self.assertEqual(r.data["reply_from"], r.data["target"])
        r = clients.subscribe_both(self.carol, peer, timeout=T_SUB)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["subscription"], {"carol@c.test": "both", peer.jid: "both"})

    def check_ejabberd_went_through_the_responder(self, remote):
        pc_log, c_log = self.pc.log_text(), self.c.log_text()
        # ejabberd asked the responder (never a real DNS server) and got localhost:<listen.local>
        self.assertRegex(pc_log, rf"dns-query: SRV _xmpp-server\._tcp\.{re.escape(remote)} from 127\.0\.0\.1 port "
                                 rf"\d+: NOERROR, 1 record \(srv\)")
        self.assertNotRegex(pc_log, r"dns-query: SRV _xmpp-server\._tcp\.c\.test .*NOERROR")
        # its outgoing stream for `remote` arrived on proxy C's local listener, c.test authenticated
        # by dialback there, and proxy C took stanzas from it
        self.assertRegex(pc_log, rf"\[c\d+ c\.test->{re.escape(remote)}\] local-accepted: ")
        self.assertRegex(pc_log, rf"\[c\d+ c\.test->{re.escape(remote)}\] local-authenticated: ")
        # ejabberd's own view: outbound to `remote` authenticated by dialback at localhost:<port>
        self.assertRegex(c_log, rf"Accepted outbound s2s dialback authentication c\.test -> {re.escape(remote)} "
                                rf"\((127\.0\.0\.1|localhost)[:)]")
        self.assertRegex(c_log, rf"Accepted inbound s2s dialback authentication {re.escape(remote)} -> c\.test")
        # and ejabberd never failed to reach the proxy (it would then bounce for a while)
        self.assertNotRegex(self.c.log_text(type(self).c_mark), r"bouncing for \d+ seconds")


def add_proxied_prosody_a(cls):
    """The peer of A_ProxiedProsody and C_ComponentMode: proxy A in front of a proxied Prosody A
    (a.test, alice), no TLS between the proxies. Returns the servers to start."""
    cls.pa = kit.S2SProxy(cls.procs, "a", ip=IP_PROXY_A, hosts=["a.test"])
    cls.a = kit.Prosody(cls.procs, "a", ip=IP_PROSODY_A, dns=cls.dns, ca=cls.ca, mode="proxied",
                        proxy=cls.pa.local_addr)
    cls.a.add_host("a.test", users={"alice": "alice-pw"}, cert=cls.certs["a.test"])
    cls.pa.local_server = (cls.a.ip, cls.a.s2s_port)
    cls.pa.route("c.test", *cls.pc.public_addr).plain()
    cls.pc.route("a.test", *cls.pa.public_addr).plain()
    cls.alice = None
    return [cls.a, cls.pa]


class A_ProxiedProsody(EjabberdBehindProxy):
    """(a) ejabberd C behind proxy C <-> proxy A in front of a proxied Prosody A (a.test); ejabberd
    reads config-examples/ejabberd/inetrc."""

    ejabberd_class = EjabberdWithOperatorInetrc

    @classmethod
    def add_peer(cls):
        return add_proxied_prosody_a(cls)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = clients.Account.on(cls.a, "alice", "a.test")

    def test_0_responder_answers(self):
        """The responder as a plain DNS client sees it (kit.dns.query: the stdlib encoder)."""
        server = self.responder.server
        ans = kit.dns.query("_xmpp-server._tcp.a.test", "SRV", server)
        self.assertEqual((ans.rcode, ans.records), ("NOERROR", [(0, 0, self.pc.local_port, "localhost")]))
        ans = kit.dns.query("_xmpp-server._tcp.anything.example", "SRV", server)
        self.assertEqual(ans.records, [(0, 0, self.pc.local_port, "localhost")])
        ans = kit.dns.query("localhost", "A", server)
        self.assertEqual((ans.rcode, ans.records), ("NOERROR", ["127.0.0.1"]))
        self.assertEqual(kit.dns.query("localhost", "AAAA", server).records, [])
        self.assertEqual(kit.dns.query("_xmpps-server._tcp.a.test", "SRV", server).rcode, "NOERROR")
        self.assertEqual(kit.dns.query("_xmpps-server._tcp.a.test", "SRV", server).records, [])
        self.assertEqual(kit.dns.query("_xmpp-server._tcp.c.test", "SRV", server).rcode, "NXDOMAIN")
        self.assertEqual(kit.dns.query("a.test", "A", server).rcode, "NXDOMAIN")
        short = kit.dns.dig("_xmpp-server._tcp.a.test", "SRV", server)   # None without bind9-dnsutils
        if short is not None:
            self.assertEqual(short, [f"0 0 {self.pc.local_port} localhost."])

    def test_1_message_c_to_a(self):
        r = clients.send_message(self.carol, self.alice, timeout=T_MSG)
        self.assertDelivered(r, self.carol, self.alice)

    def test_2_message_a_to_c(self):
        r = clients.send_message(self.alice, self.carol, timeout=T_MSG)
        self.assertDelivered(r, self.alice, self.carol)

    def test_3_pings_and_subscription_both_ways(self):
        self.check_federation(self.alice, "a.test")

    def test_4_ejabberd_went_through_the_responder(self):
        with open(os.path.join(self.c.config_dir, "inetrc")) as f:
            self.assertIn("{lookup, [file, native]}.", f.read())      # the operator kit's file
        self.both_ways(self.alice)
        self.check_ejabberd_went_through_the_responder("a.test")
        # ejabberd checked proxy C's dialback key over a verify-only connection of its own, which
        # also went through the responder to proxy C's local listener, and proxy C said valid
        self.assertRegex(self.pc.log_text(), r"\[c\d+ c\.test->a\.test\] (db-verify|local-verify)\S*: .*valid")
        # the proxied Prosody never looked s2s up in DNS
        with open(self.dns.proc.log_path) as f:
            self.assertNotIn("_xmpp-server._tcp", f.read())

    def test_5_ejabberd_restarts(self):
        """ejabberd goes away and comes back: proxy C's local link is made again, and ejabberd's
        new outgoing streams find the proxy through the responder again."""
        mark = self.pc.log_mark()
        self.c.restart()
        type(self).c_mark = self.c.log_mark()
        self.both_ways(self.alice)
        pc_log = self.pc.log_text(mark)
        self.assertRegex(pc_log, r"dns-query: SRV _xmpp-server\._tcp\.a\.test .*NOERROR, 1 record")
        self.assertRegex(pc_log, r"\[c\d+ c\.test->a\.test\] local-accepted: ")
        self.assertRegex(pc_log, r"\[c\d+ c\.test->a\.test\] local-authenticated: ")


class B_PlainProsody(EjabberdBehindProxy):
    """(b) ejabberd C behind proxy C <-> a plain federating Prosody D (d.test) over STARTTLS."""

    @classmethod
    def add_peer(cls):
        cls.d = kit.Prosody(cls.procs, "d", ip=IP_PROSODY_D, dns=cls.dns, ca=cls.ca, s2s_secure_auth=False)
        cls.d.add_host("d.test", users={"dave": "dave-pw"}, cert=cls.certs["d.test"])
        # c.test is wherever proxy C listens; d.test where Prosody D does; proxy C asks dnsmasq
        cls.zone.srv("_xmpp-server._tcp.c.test", "proxy.c.test", cls.pc.s2s_port).a("proxy.c.test", cls.pc.ip)
        cls.zone.absent("_xmpps-server._tcp.c.test")
        cls.zone.srv("_xmpp-server._tcp.d.test", "host.d.test", cls.d.s2s_port).a("host.d.test", cls.d.ip)
        cls.zone.absent("_xmpps-server._tcp.d.test")
        cls.pc.tls(cls.ca, mode="starttls", cert=cls.certs["c.test"], client_cert=False)
        cls.dave = None
        return [cls.d]

    @classmethod
    def dns_started(cls):
        # dnsmasq answers at once on loopback; a short DNS deadline (timeout x retries) also keeps
        # proxy C's stop quick (an answered query leaves the DNS client's deadline timer armed
        # until that deadline: common/dns/dns.cpp on_udns_result does not re-arm it)
        cls.pc.set("s2s.outgoing.dns.nameservers", [f"{cls.dns.host}:{cls.dns.port}"])
        cls.pc.set("s2s.outgoing.denied_networks", [])   # the answers are loopback addresses
        cls.pc.set("s2s.outgoing.dns.timeout", 1)
        cls.pc.set("s2s.outgoing.dns.retries", 1)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dave = clients.Account.on(cls.d, "dave", "d.test")

    def test_1_message_c_to_d(self):
        r = clients.send_message(self.carol, self.dave, timeout=T_MSG)
        self.assertDelivered(r, self.carol, self.dave)

    def test_2_message_d_to_c(self):
        r = clients.send_message(self.dave, self.carol, timeout=T_MSG)
        self.assertDelivered(r, self.dave, self.carol)

    def test_3_pings_and_subscription_both_ways(self):
        self.check_federation(self.dave, "d.test")

    def test_4_how_it_went(self):
        self.both_ways(self.dave)
        self.check_ejabberd_went_through_the_responder("d.test")
        pc_log, d_log = self.pc.log_text(), self.d.log_text()
        with open(self.dns.proc.log_path) as f:
            dns_log = f.read()
        # proxy C found d.test by SRV; Prosody D found c.test by SRV (-> proxy C's public listener)
        self.assertIn("query[SRV] _xmpp-server._tcp.d.test", dns_log)
        self.assertIn("query[SRV] _xmpp-server._tcp.c.test", dns_log)
        self.assertRegex(pc_log, r"\[c\d+ c\.test->d\.test\] tls: TLSv1\.[23], certificate of d\.test: authenticated")
        self.assertIn("Outgoing s2s connection d.test->c.test complete", d_log)
        self.assertIn("Incoming s2s connection c.test->d.test complete", d_log)

    def test_5_unknown_domain_bounces_through_ejabberd(self):
        """A domain DNS does not know: ejabberd hands the message to proxy C like any other (the
        responder knows every domain), proxy C's SRV/A lookups get NXDOMAIN, and carol gets the
        bounce, with proxy C's reason, through ejabberd."""
        r = clients.send(self.carol, "nobody@nowhere.test", ["into the void"], linger=8.0, timeout=20)
        self.assertFalse(r.ok, f"no bounce for an unknown domain: {r.describe()}")
        self.assertEqual(r.error_condition, "remote-server-not-found", r.describe())
        text = r.data["bounced"][0]["error"]["text"] or ""
        self.assertTrue(text.startswith("s2s to nowhere.test failed:"), f"bounce text: {text!r}")
        self.assertRegex(self.pc.log_text(), r"dns-query: SRV _xmpp-server\._tcp\.nowhere\.test .*NOERROR, 1 record")
        # and d.test still works afterwards (nothing in ejabberd is left bouncing)
        r = clients.send_message(self.carol, self.dave, timeout=T_MSG)
        self.assertDelivered(r, self.carol, self.dave)


class C_ComponentMode(EjabberdBehindProxy):
    """(c) proxy C in component mode (local.mode = "component", XEP-0114): what proxy C accepts for
    c.test goes into ejabberd's ejabberd_service listener as the component s2s-proxy.c.test
    (check_from: false), not over a local s2s stream; ejabberd's outgoing s2s still reaches proxy
    C's [[listen.local]] through the responder. The peer is proxy A in front of a proxied Prosody A."""

    ejabberd_class = EjabberdWithComponent
    password = "kit-component-secret"

    @classmethod
    def add_peer(cls):
        cls.c.component_port = kit.free_port(IP_EJABBERD_C)
        cls.c.component_password = cls.password
        cls.pc.local_server = (cls.c.ip, cls.c.component_port)
        cls.pc.set("local.mode", "component").set("local.component_name", COMPONENT)
        cls.pc.set("local.password", cls.password).set("local.queue_timeout", 4000)
        # ejabberd's keys on [[listen.local]] are checked at its s2s listener (not the component's)
        cls.pc.set("local.verify_server", f"{cls.c.ip}:{cls.c.s2s_port}")
        return add_proxied_prosody_a(cls)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice = clients.Account.on(cls.a, "alice", "a.test")

    def check_component_path(self):
        """Proxy C wrote to ejabberd over its component stream and never opened a local s2s stream."""
        m = self.pc.metrics()
        self.assertEqual(m.get('s2s_proxy_connections{kind="local_component",state="ready"}'), 1, m)
        self.assertEqual([k for k in m if k.startswith("s2s_proxy_connections{") and 'kind="local_out"' in k], [])
        self.assertGreaterEqual(m['s2s_proxy_stanzas_delivered_total{to="local"}'], 1)
        pc_log, c_log = self.pc.log_text(), self.c.log_text()
        self.assertRegex(pc_log, rf"component-ready: the local server at {re.escape(self.c.ip)}:"
                                 rf"{self.c.component_port} accepted the component handshake")
        self.assertNotRegex(pc_log, r"\] local-authenticated: ")     # a local_out stream's dialback
        self.assertNotIn(self.password, pc_log)
        self.assertRegex(c_log, rf"(?i)accepted external component .*{re.escape(COMPONENT)}")
        self.assertNotRegex(c_log, r"Accepted inbound s2s dialback authentication a\.test -> c\.test")

    def test_1_message_a_to_c(self):
        r = clients.send_message(self.alice, self.carol, timeout=T_MSG)
        self.assertDelivered(r, self.alice, self.carol)
        self.assertRegex(self.pc.log_text(), r"to-local: message \S+ alice@a\.test/\S+ -> carol@c\.test\S* "
                                             r"\(s2s-proxy -> local server, as component")
        self.check_component_path()

    def test_2_ping_a_to_c_and_the_answer(self):
        """alice pings carol's full JID: the iq goes in over the component, carol's answer comes out
        over ejabberd's outgoing s2s (proxy C's [[listen.local]])."""
        r = clients.ping_user(self.alice, self.carol, timeout=T_PING)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], r.data["target"])
        self.assertRegex(self.pc.log_text(), r"to-local: iq \S+ alice@a\.test/\S+ -> carol@c\.test/\S+ "
                                             r"\(s2s-proxy -> local server, as component")
        self.check_component_path()

    def test_3_reply_c_to_a(self):
        r = clients.send_message(self.carol, self.alice, timeout=T_MSG)
        self.assertDelivered(r, self.carol, self.alice)
        self.assertRegex(self.pc.log_text(), r"\[c\d+ c\.test->a\.test\] local-accepted: ")
        self.assertRegex(self.c.log_text(), r"Accepted outbound s2s dialback authentication c\.test -> a\.test")
        self.check_component_path()

    def test_4_the_component_address_offers_nothing(self):
        """carol pings s2s-proxy.c.test: ejabberd routes it to the component, proxy C answers
        service-unavailable."""
        clients.send_message(self.alice, self.carol, timeout=T_MSG)     # the component is connected
        before = self.pc.metrics().get('s2s_proxy_stanzas_dropped_total{reason="to_component"}', 0)
        r = clients.ping(self.carol, COMPONENT, timeout=T_PING)
        self.assertFalse(r.ok, r.describe())
        self.assertEqual(r.error_condition, "service-unavailable", r.describe())
        self.assertIn("s2s-proxy's component address offers no service", r.error or "")
        after = self.pc.metrics()['s2s_proxy_stanzas_dropped_total{reason="to_component"}']
        self.assertEqual(after, before + 1)

    def test_5_wrong_password_bounces_then_works_again(self):
        """Proxy C restarted with a password ejabberd does not know: alice's message bounces after
        local.queue_timeout with the reason; with the right one again, delivery works."""
        mark = self.pc.log_mark()
        try:
            self.pc.set("local.password", "not-the-component-secret")
            self.pc.restart()
            r = clients.send(self.alice, self.carol.jid, ["while the secret is wrong"], linger=15.0, timeout=30)
            self.assertFalse(r.ok, f"no bounce with a wrong component secret: {r.describe()}")
            self.assertEqual(r.error_condition, "remote-server-timeout", r.describe())
            text = r.data["bounced"][0]["error"]["text"] or ""
            self.assertIn("refused the component handshake (not-authorized", text)
            pc_log = self.pc.log_text(mark)
            self.assertRegex(pc_log, r"local-link-down: the local server refused the component handshake "
                                     r"\(not-authorized")
            self.assertGreaterEqual(len(re.findall(r"local-link-down: the local server refused", pc_log)), 2)  # retried
            self.assertNotIn("not-the-component-secret", pc_log)
        finally:
            self.pc.set("local.password", self.password)
            self.pc.restart()
        r = clients.send_message(self.alice, self.carol, timeout=T_MSG)
        self.assertDelivered(r, self.alice, self.carol)
        self.check_component_path()


if __name__ == "__main__":
    sys.exit(kit.runner.main())
