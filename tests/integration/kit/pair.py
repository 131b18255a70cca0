"""The fixture most end-to-end files start from: a.test and b.test, each a Prosody in proxied mode
behind its own s2s-proxy, each proxy routing the other's domain to the other proxy's public
listener (s2s.outgoing.address), dnsmasq as Prosody's resolver, alice on a.test and bob on b.test.

    class Pair(kit.pair.ProxiedPair):
        module = MODULE                                   # kit.suite.module_setup's store
        ips = ("127.0.0.2", "127.0.0.3", "127.0.0.12", "127.0.0.13")   # Prosody A, B; proxy A, B

        @classmethod
        def configure(cls):                               # before anything starts
            cls.pa.set("s2s.outgoing.max_retry_delay", 2)

Hooks, in the order setUpClass calls them: configure() (the routes are set unless routes = False; the zone, the
proxies' settings, anything that must exist before dnsmasq starts), dns_started() (settings that
need dnsmasq's port). Then every server starts in parallel and the accounts are made.
cls.startup is how long that took. A failure dumps every log and stops what was started.
"""
import time
import unittest

from . import clients
from .dns import Dnsmasq, Zone
from .procs import Procs
from .prosody import Prosody
from .proxy import S2SProxy
from .suite import start_all


def proxied_prosody(cls, name, ip, proxy, user, extra_global=""):
    """Prosody `name` serving NAME.test in proxied mode behind `proxy`, with one user (password
    USER-pw), on the fixture's procs, dnsmasq, CA and certificates."""
    server = Prosody(cls.procs, name, ip=ip, dns=cls.dns, ca=cls.ca, mode="proxied", proxy=proxy.local_addr,
                     extra_global=extra_global)
    domain = name + ".test"
    server.add_host(domain, users={user: user + "-pw"}, cert=cls.certs[domain])
    return server


class ProxiedPair(unittest.TestCase):
    module = None            # the test file's MODULE: "ca" and "certs" for a.test and b.test
    ips = None               # (Prosody A, Prosody B, proxy A, proxy B), loopback addresses
    prosody_extra = {}       # "a" / "b": extra_global lines for that Prosody
    routes = True            # each proxy routes the other's domain to it; False: by DNS (the zone)

    @classmethod
    def configure(cls):
        """Everything that must be set before dnsmasq and the servers start."""

    @classmethod
    def dns_started(cls):
        """Settings that need dnsmasq's port (after it started, before the servers start)."""

    @classmethod
    def setUpClass(cls):
        cls.procs = Procs()
        try:
            t0 = time.monotonic()
            ip_a, ip_b, ip_pa, ip_pb = cls.ips
            cls.ca, cls.certs = cls.module["ca"], cls.module["certs"]
            cls.zone = Zone()
            cls.dns = Dnsmasq(cls.procs, cls.zone)     # Prosody's resolver: nothing leaves loopback
            cls.pa = S2SProxy(cls.procs, "a", ip=ip_pa, hosts=["a.test"])
            cls.pb = S2SProxy(cls.procs, "b", ip=ip_pb, hosts=["b.test"])
            cls.a = proxied_prosody(cls, "a", ip_a, cls.pa, "alice", cls.prosody_extra.get("a", ""))
            cls.b = proxied_prosody(cls, "b", ip_b, cls.pb, "bob", cls.prosody_extra.get("b", ""))
            cls.pa.local_server = (cls.a.ip, cls.a.s2s_port)
            cls.pb.local_server = (cls.b.ip, cls.b.s2s_port)
            if cls.routes:
                cls.pa.route("b.test", *cls.pb.public_addr)
                cls.pb.route("a.test", *cls.pa.public_addr)
            cls.configure()
            cls.dns.start()
            cls.dns_started()
            start_all(cls.a, cls.b, cls.pa, cls.pb)
            cls.startup = time.monotonic() - t0
            cls.alice = clients.Account.on(cls.a, "alice", "a.test")
            cls.bob = clients.Account.on(cls.b, "bob", "b.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def assertDelivered(self, r, sender, receiver):
        """r is a client job's result: one message from sender reached receiver."""
        self.assertTrue(r.ok, r.describe())
        got = r.data["received"][0]
        self.assertEqual(got["to"], receiver.jid)
        self.assertTrue(got["from"].startswith(sender.jid + "/"), got)


class ProxiedAndDirect(unittest.TestCase):
    """a.test, a proxied Prosody behind s2s-proxy A, and c.test, a Prosody federating on its own
    (TLS with the test CA, dialback allowed). In dnsmasq's zone a.test is at proxy A's public
    listener and c.test at Prosody C; proxy A reaches c.test by an s2s.outgoing.address override.
    alice on a.test, carol on c.test.

    Hooks: configure() before dnsmasq and the servers start (proxy A's TLS and settings), started()
    once all three are up, before the accounts are made.
    """
    module = None            # the test file's MODULE: "ca" and "certs" for a.test and c.test
    ips = None               # (Prosody A, Prosody C, proxy A), loopback addresses
    c_modules = ()           # extra Prosody modules for c.test (e.g. "s2s_bidi")

    @classmethod
    def configure(cls):
        """Everything that must be set before dnsmasq and the servers start."""

    @classmethod
    def started(cls):
        """Right after the servers started."""

    @classmethod
    def setUpClass(cls):
        cls.procs = Procs()
        try:
            ip_a, ip_c, ip_pa = cls.ips
            cls.ca, cls.certs = cls.module["ca"], cls.module["certs"]
            cls.zone = Zone()
            cls.dns = Dnsmasq(cls.procs, cls.zone)
            cls.pa = S2SProxy(cls.procs, "a", ip=ip_pa, hosts=["a.test"])
            cls.a = proxied_prosody(cls, "a", ip_a, cls.pa, "alice")
            cls.c = Prosody(cls.procs, "c", ip=ip_c, dns=cls.dns, ca=cls.ca, s2s_secure_auth=False,
                            modules=list(cls.c_modules))
            cls.c.add_host("c.test", users={"carol": "carol-pw"}, cert=cls.certs["c.test"])
            cls.pa.local_server = (cls.a.ip, cls.a.s2s_port)
            cls.pa.route("c.test", cls.c.ip, cls.c.s2s_port)
            (cls.zone
             .srv("_xmpp-server._tcp.a.test", "proxy.a.test", cls.pa.s2s_port).a("proxy.a.test", cls.pa.ip)
             .absent("_xmpps-server._tcp.a.test")
             .srv("_xmpp-server._tcp.c.test", "host.c.test", cls.c.s2s_port).a("host.c.test", cls.c.ip)
             .absent("_xmpps-server._tcp.c.test"))
            cls.configure()
            cls.dns.start()
            start_all(cls.a, cls.c, cls.pa)
            cls.started()
            cls.alice = clients.Account.on(cls.a, "alice", "a.test")
            cls.carol = clients.Account.on(cls.c, "carol", "c.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()
