#!/usr/bin/python3
"""End-to-end: a real jabberd2 2.7 (router, sm, c2s, s2s; sqlite) fronted by s2s-proxy, its s2s
component's resolver (udns) pointed at the proxy's built-in DNS responder by its environment, the
recipe of config-examples/jabberd2/ (s2s.xml and the s2s-proxy.conf drop-in as shipped, only
addresses and ports changed) and config-examples/jabberd2-sidecar.toml (likewise, for proxy J):

    juliet -- jabberd2 J (127.0.0.6) == s2s-proxy J (127.0.0.16) ~~~~ proxy A (127.0.0.12) == Prosody A (127.0.0.2)
              j.test, plain s2s      local link: jabberd2's s2s listener <- proxy J's local_out       a.test -- alice
              on 127.0.0.6           jabberd2's outgoing s2s -> NAMESERVERS/RES_OPTIONS = proxy J's
                                     responder (127.0.0.1:P) -> SRV _xmpp-server._tcp.<any> =
                                     localhost:<proxy J's [[listen.local]] port on 127.0.0.1>
                                                                  ~~~~ Prosody D (127.0.0.5) -- dave
                                                                       d.test, plain federating, STARTTLS

  JabberdBehindProxy  both peers at once: proxy A in front of a proxied Prosody A (no TLS between
                      the proxies) and a plain Prosody D (proxy J finds d.test by SRV in the test
                      dnsmasq, Prosody D finds j.test there -> proxy J's public listener, STARTTLS
                      with the test CA). Messages, pings (domains and full JIDs) and presence
                      subscriptions both ways with each; jabberd2's lookups went to the responder
                      only and its streams to proxy J only; both remote domains over one outgoing
                      stream of jabberd2 (out-conn-reuse); a domain DNS does not know bounces
                      through jabberd2 with proxy J's reason; jabberd2 (all four processes)
                      restarted while both peers write to juliet: proxy J holds their messages and
                      delivers them once jabberd2 is back, then messages flow both ways again;
                      s2s-proxy J restarted under jabberd2: messages flow both ways again;
                      without the <pemfile> of s2s.xml jabberd2's outgoing header is pre-1.0 (no
                      domains, no version): proxy J takes the domains from each db:result

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_jabberd2.py [Class[.test] ...]
The binary is $S2S_PROXY_BIN, else $BUILD/s2s-proxy, else build/e2e/s2s-proxy, else build/s2s-proxy.
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.jabberd2 import Jabberd2  # noqa: E402
from kit.suite import Background, start_all, token  # noqa: E402

IP_PROSODY_A, IP_PROSODY_D, IP_JABBERD2 = "127.0.0.2", "127.0.0.5", "127.0.0.6"
IP_PROXY_A, IP_PROXY_J = "127.0.0.12", "127.0.0.16"
RESPONDER_IP = "127.0.0.1"         # what the operator kit's drop-in says (NAMESERVERS)

MODULE = {}
T_MSG, T_PING, T_SUB = 15, 15, 20

SIDECAR_TOML = os.path.join(kit.proxy.REPO, "config-examples", "jabberd2-sidecar.toml")


def require_jabberd2():
    try:
        kit.jabberd2.check_installed()
    except kit.KitError as e:
        raise unittest.SkipTest(str(e))


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "d.test", "j.test"), check=require_jabberd2)


def tearDownModule():
    kit.suite.module_teardown(MODULE)


def replace_once(text, pattern, repl, what):
    text, n = re.subn(pattern, repl, text)
    if n != 1:
        raise kit.KitError(f"{what}: expected one /{pattern}/, found {n}")
    return text


class SidecarProxy(kit.S2SProxy):
    """kit.S2SProxy whose config file is config-examples/jabberd2-sidecar.toml as shipped, with
    only its domain, addresses, ports and log settings changed; what else the test needs (the admin
    endpoint, routes, TLS, the dialback secret) is added after it or given on the command line
    (--KEY=VALUE, as the kit does for any setting)."""

    def config_text(self):
        with open(SIDECAR_TOML) as f:
            text = f.read()
        what = SIDECAR_TOML
        lip, lport = self.local_server
        text = replace_once(text, r'hosts = \["example\.com"\]', f"hosts = {kit.proxy.toml_value(self.hosts)}", what)
        text = replace_once(text, r'loglevel = "info"', f"loglevel = {kit.proxy.toml_value(self.loglevel)}", what)
        text = replace_once(text, r'log_format = "json"', 'log_format = "text"', what)   # what the checks read
        text = replace_once(text, r'server = "127\.0\.0\.1:15269"', f'server = "{lip}:{lport}"', what)
        text = replace_once(text, r'dns_responder = "127\.0\.0\.1:15353"',
                            f'dns_responder = "{self.responder[0]}:{self.responder[1]}"', what)
        text = replace_once(text, r"(\[\[listen\.s2s\]\]\n\s*)port = 5269\n",
                            rf'\g<1>port = {self.s2s_port}\n  ip_address = "{self.ip}"\n', what)
        text = replace_once(text, r"(\[\[listen\.local\]\][^\n]*\n\s*)port = 15270\n",
                            rf"\g<1>port = {self.local_port}\n", what)
        if not re.search(rf'\[\[listen\.local\]\][^\[]*ip_address = "{re.escape(self.local_ip)}"', text):
            raise kit.KitError(f"{what}: [[listen.local]] is not on {self.local_ip}")
        out = [text, "", "# added by tests/integration/test_jabberd2.py", "[admin]",
               f"listen = {kit.proxy.toml_value(f'{self.ip}:{self.admin_port}')}"]
        for domain, (ip, port) in self.routes.items():
            out += ["", "[[s2s.outgoing.address]]", f"host = {kit.proxy.toml_value(domain)}",
                    f"ip_address = {kit.proxy.toml_value(ip)}", f"port = {port}"]
        return "\n".join(out) + "\n"

    def argv(self):
        extra = {"general.shutdown_timeout": 3000, "s2s.shared": self.shared}
        if self.use_starttls is not None:
            extra["s2s.use_starttls"] = self.use_starttls
        extra.update({f"s2s.outgoing.tls.{k}": v for k, v in self.outgoing_tls.items()})
        extra.update({f"listen.s2s.0.tls.{k}": v for k, v in self.listener_tls.items()})
        return super().argv() + [f"--{k}={kit.proxy.toml_value(v)}" for k, v in extra.items()]


class JabberdBehindProxy(unittest.TestCase):
    """jabberd2 J (j.test) behind s2s-proxy J with local.dns_responder, federating with a proxied
    Prosody A (through proxy A) and a plain Prosody D."""

    @classmethod
    def setUpClass(cls):
        cls.procs = kit.Procs()
        try:
            cls.t0 = time.monotonic()
            cls.ca, cls.certs = MODULE["ca"], MODULE["certs"]
            cls.zone = kit.Zone()
            cls.dns = kit.Dnsmasq(cls.procs, cls.zone)          # for proxy J and Prosody D
            # proxy J: [[listen.local]] on 127.0.0.1 (the SRV target is "localhost"), the responder too
            # (config-examples/jabberd2-sidecar.toml)
            cls.pj = SidecarProxy(cls.procs, "j", ip=IP_PROXY_J, hosts=["j.test"], local_ip="127.0.0.1")
            cls.responder_port = kit.free_port(RESPONDER_IP, udp=True)
            cls.pj.responder = (RESPONDER_IP, cls.responder_port)
            cls.j = Jabberd2(cls.procs, "j", ip=IP_JABBERD2, ca=cls.ca, nameserver=(RESPONDER_IP, cls.responder_port))
            cls.j.add_host("j.test", users={"juliet": "juliet-pw"}, cert=cls.certs["j.test"])
            cls.pj.local_server = (cls.j.ip, cls.j.s2s_port)
            # (a) proxy A in front of a proxied Prosody A, no TLS between the proxies
            cls.pa = kit.S2SProxy(cls.procs, "a", ip=IP_PROXY_A, hosts=["a.test"])
            cls.a = kit.Prosody(cls.procs, "a", ip=IP_PROSODY_A, dns=cls.dns, ca=cls.ca, mode="proxied",
                                proxy=cls.pa.local_addr)
            cls.a.add_host("a.test", users={"alice": "alice-pw"}, cert=cls.certs["a.test"])
            cls.pa.local_server = (cls.a.ip, cls.a.s2s_port)
            cls.pa.route("j.test", *cls.pj.public_addr).plain()
            cls.pj.route("a.test", *cls.pa.public_addr)
            # (b) a plain federating Prosody D; proxy J's public side: STARTTLS, the test CA
            cls.d = kit.Prosody(cls.procs, "d", ip=IP_PROSODY_D, dns=cls.dns, ca=cls.ca, s2s_secure_auth=False)
            cls.d.add_host("d.test", users={"dave": "dave-pw"}, cert=cls.certs["d.test"])
            cls.zone.srv("_xmpp-server._tcp.j.test", "proxy.j.test", cls.pj.s2s_port).a("proxy.j.test", cls.pj.ip)
            cls.zone.absent("_xmpps-server._tcp.j.test")
            cls.zone.srv("_xmpp-server._tcp.d.test", "host.d.test", cls.d.s2s_port).a("host.d.test", cls.d.ip)
            cls.zone.absent("_xmpps-server._tcp.d.test")
            cls.pj.tls(cls.ca, mode="starttls", cert=cls.certs["j.test"], client_cert=False)
            # proxy A talks plain to proxy J: proxy J's outgoing STARTTLS is only offered, not
            # required (use_starttls "optional"), and its listener lets plain peers in
            cls.dns.start()
            cls.pj.set("s2s.outgoing.dns.nameservers", [f"{cls.dns.host}:{cls.dns.port}"])
            cls.pj.set("s2s.outgoing.denied_networks", [])     # the answers are loopback addresses
            cls.pj.set("s2s.outgoing.dns.timeout", 1)
            cls.pj.set("s2s.outgoing.dns.retries", 1)
            # the responder must answer before jabberd2 asks: proxy J first, then the rest
            cls.pj.start()
            cls.pj.wait_log(rf"listening: local\.dns_responder on {re.escape(RESPONDER_IP)} port "
                            rf"{cls.responder_port} \(udp\)", 5)
            start_all(cls.j, cls.a, cls.pa, cls.d)
            cls.startup = time.monotonic() - cls.t0
            cls.juliet = clients.Account.on(cls.j, "juliet", "j.test")
            cls.alice = clients.Account.on(cls.a, "alice", "a.test")
            cls.dave = clients.Account.on(cls.d, "dave", "d.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close()

    def assertDelivered(self, r, sender, receiver):
        self.assertTrue(r.ok, r.describe())
        got = r.data["received"][0]
        # jabberd2's sm hands a message for the bare JID to the session with its full JID as `to`
        self.assertEqual(got["to"].split("/")[0], receiver.jid)
        if receiver is not self.juliet:
            self.assertEqual(got["to"], receiver.jid)
        self.assertTrue(got["from"].startswith(sender.jid + "/"), got)

    def both_ways(self, peer):
        for sender, receiver in ((self.juliet, peer), (peer, self.juliet)):
            r = clients.send_message(sender, receiver, timeout=T_MSG)
            self.assertDelivered(r, sender, receiver)

    def check_federation(self, peer, peer_domain):
        """pings of both domains and of both full JIDs, a subscription: both ways."""
        r = clients.ping(self.juliet, peer_domain, timeout=T_PING)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], peer_domain)
        r = clients.ping(peer, "j.test", timeout=T_PING)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["reply_from"], "j.test")
        for a, b in ((self.juliet, peer), (peer, self.juliet)):
            r = clients.ping_user(a, b, timeout=T_PING)
            self.assertTrue(r.ok, r.describe())
            self.assertEqual(r.data["reply_from"], r.data["target"])
        r = clients.subscribe_both(self.juliet, peer, timeout=T_SUB)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(r.data["subscription"], {"juliet@j.test": "both", peer.jid: "both"})

    def test_0_the_operator_files_agree(self):
        """config-examples: jabberd2's s2s.xml, the s2s-proxy.conf drop-in and
        jabberd2-sidecar.toml name the same addresses and ports (the test changes them together),
        and systemd-analyze (when installed) takes the drop-in beside Debian's units."""
        import tomllib
        import xml.etree.ElementTree as ET
        with open(SIDECAR_TOML, "rb") as f:
            toml = tomllib.load(f)
        s2s = ET.parse(kit.jabberd2.OPERATOR_S2S_XML).getroot()
        env = kit.jabberd2.read_env_file(kit.jabberd2.OPERATOR_ENV)
        # proxy -> jabberd2: [local] server is jabberd2's s2s listener
        self.assertEqual(toml["local"]["server"], f"{s2s.findtext('local/ip')}:{s2s.findtext('local/port')}")
        # jabberd2 -> proxy: its resolver asks the responder, which names [[listen.local]]
        port = re.search(r"port:(\d+)", env["RES_OPTIONS"]).group(1)
        self.assertEqual(toml["local"]["dns_responder"], f"{env['NAMESERVERS']}:{port}")
        self.assertEqual(toml["listen"]["local"][0]["ip_address"], "127.0.0.1")    # "localhost"
        self.assertEqual([e.text for e in s2s.findall("lookup/srv")], ["xmpp-server"])
        self.assertIsNone(s2s.find("lookup/resolve-ipv6"))
        self.assertIsNotNone(s2s.find("local/pemfile"))       # the header names both domains
        self.assertIsNone(s2s.find("security/require_tls"))
        # systemd takes the drop-in as it is (beside Debian's units), if systemd-analyze is here
        analyze = shutil.which("systemd-analyze")
        if analyze and os.path.exists("/lib/systemd/system/jabberd-s2s.service"):
            units = self.procs.mkdir("units")
            for name in os.listdir("/lib/systemd/system"):
                if name.startswith("jabberd") and name.endswith(".service"):
                    shutil.copyfile(os.path.join("/lib/systemd/system", name), os.path.join(units, name))
            os.makedirs(os.path.join(units, "jabberd-s2s.service.d"), exist_ok=True)
            shutil.copyfile(kit.jabberd2.OPERATOR_ENV, os.path.join(units, "jabberd-s2s.service.d", "s2s-proxy.conf"))
            cp = kit.procs.run([analyze, "verify", os.path.join(units, "jabberd-s2s.service")], timeout=60,
                               env={"SYSTEMD_UNIT_PATH": units + ":"}, cwd=units, check=False)
            self.assertEqual(cp.returncode, 0, cp.stdout + cp.stderr)
            self.assertNotIn("s2s-proxy.conf", cp.stdout + cp.stderr)
        # and what runs here is those files: jabberd2's s2s.xml and environment
        with open(self.j.path("s2s.xml")) as f:
            self.assertIn(f"<port>{self.j.s2s_port}</port>", f.read())
        self.assertEqual(self.j.s2s_env()["RES_OPTIONS"], f"port:{self.responder_port}")

    def test_1_messages_with_proxied_prosody(self):
        self.both_ways(self.alice)

    def test_2_pings_and_subscription_with_proxied_prosody(self):
        self.check_federation(self.alice, "a.test")

    def test_3_messages_with_plain_prosody(self):
        self.both_ways(self.dave)

    def test_4_pings_and_subscription_with_plain_prosody(self):
        self.check_federation(self.dave, "d.test")

    def test_5_jabberd2_went_through_the_responder(self):
        self.both_ways(self.alice)
        self.both_ways(self.dave)
        pj_log, s2s_log = self.pj.log_text(), self.j.log_text()
        accepted_on = {}
        for remote in ("a.test", "d.test"):
            # jabberd2 (udns, EDNS on) asked the responder and got localhost:<listen.local>
            self.assertRegex(pj_log, rf"dns-query: SRV _xmpp-server\._tcp\.{re.escape(remote)} (\(EDNS\) )?"
                                     rf"from 127\.0\.0\.\d+ port \d+: NOERROR, 1 record \(srv\)")
            # its outgoing stream for `remote` arrived on proxy J's local listener, and j.test's
            # key there was confirmed by jabberd2's own listener (local-verify)
            m = re.search(rf"\[(c\d+) j\.test->{re.escape(remote)}\] local-accepted: "
                          r".*key confirmed by the local server", pj_log)
            self.assertTrue(m, pj_log[-3000:])
            accepted_on[remote] = m.group(1)
            # proxy J's stream into jabberd2 was accepted for `remote`: jabberd2 checked proxy
            # J's key with a db:verify over its outgoing stream, which proxy J answered valid
            self.assertRegex(pj_log, rf"\[{m.group(1)} j\.test->{re.escape(remote)}\] local-verify: valid")
            self.assertRegex(pj_log, rf"\[c\d+ j\.test->{re.escape(remote)}\] local-authenticated: ")
            self.assertRegex(s2s_log, rf"incoming route 'j\.test/{re.escape(remote)}' is now valid")
            self.assertRegex(s2s_log, rf"outgoing route 'j\.test/{re.escape(remote)}' is now valid")
            self.assertRegex(s2s_log, rf"checking dialback verification from {re.escape(remote)}: sending valid")
        # the SRV target's address came from the responder too (udns asks A; no AAAA without
        # <resolve-ipv6/>), and jabberd2 never looked its own domain up
        self.assertRegex(pj_log, r"dns-query: A localhost (\(EDNS\) )?from 127\.0\.0\.\d+ port \d+: NOERROR, 1 record")
        self.assertNotRegex(pj_log, r"dns-query: \S+ \S*j\.test")
        # jabberd2's own view: every outgoing stream went to proxy J's [[listen.local]], and with
        # <out-conn-reuse/> one stream carried both remote domains
        outgoing = re.findall(r"\[\d+\] \[([0-9.]+), port=(\d+)\] (?:outgoing|using) connection for '([^']+)'", s2s_log)
        self.assertTrue(outgoing, s2s_log[-3000:])
        for ip, port, _ in outgoing:
            self.assertEqual((ip, int(port)), self.pj.local_addr, outgoing)
        self.assertRegex(s2s_log, r"using connection for '[ad]\.test'")
        self.assertEqual(accepted_on["a.test"], accepted_on["d.test"], "both remote domains over one local stream")
        # the plain Prosody and proxy J found each other in the test DNS; TLS on the public side
        with open(self.dns.proc.log_path) as f:
            dns_log = f.read()
        self.assertIn("query[SRV] _xmpp-server._tcp.d.test", dns_log)
        self.assertIn("query[SRV] _xmpp-server._tcp.j.test", dns_log)
        self.assertRegex(pj_log, r"\[c\d+ j\.test->d\.test\] tls: TLSv1\.[23], certificate of d\.test: authenticated")
        # every listener of jabberd2's four processes is on its loopback address
        pids = [p.pid for p in self.j.procs_by_component.values()]
        for proto, ip, port, _ in kit.procs.listening_sockets(pids):
            if proto.startswith("tcp"):
                self.assertEqual(ip, self.j.ip, (proto, ip, port))

    def test_6_unknown_domain_bounces_through_jabberd2(self):
        """A domain DNS does not know: jabberd2 hands the message to proxy J like any other (the
        responder knows every domain), proxy J's lookups get NXDOMAIN, and juliet gets the bounce,
        with proxy J's reason, through jabberd2."""
        r = clients.send(self.juliet, "nobody@nowhere.test", ["into the void"], linger=8.0, timeout=20)
        self.assertFalse(r.ok, f"no bounce for an unknown domain: {r.describe()}")
        self.assertEqual(r.error_condition, "remote-server-not-found", r.describe())
        text = r.data["bounced"][0]["error"]["text"] or ""
        self.assertTrue(text.startswith("s2s to nowhere.test failed:"), f"bounce text: {text!r}")
        self.assertRegex(self.pj.log_text(), r"dns-query: SRV _xmpp-server\._tcp\.nowhere\.test .*NOERROR, 1 record")
        # and the others still work afterwards
        r = clients.send_message(self.juliet, self.alice, timeout=T_MSG)
        self.assertDelivered(r, self.juliet, self.alice)

    def test_7_jabberd2_restarts_mid_run(self):
        """jabberd2's four processes go away while alice and dave write to juliet: proxy J holds
        their messages (local.queue_timeout) and delivers them once jabberd2 is back (juliet gets
        them as offline messages); proxy J's local link is made again, and jabberd2's new
        outgoing streams find the proxy through the responder again: messages flow both ways."""
        self.both_ways(self.alice)                              # links up, mid-conversation
        mark, s2s_mark = self.pj.log_mark(), self.j.log_mark()
        self.j.stop()
        bodies = {peer: [token(f"while-down-{peer.domain}") for _ in range(2)] for peer in (self.alice, self.dave)}
        jobs = [Background(clients.send, peer, "juliet@j.test", b, linger=2.0, timeout=20)
                for peer, b in bodies.items()]
        for job in jobs:
            r = job.join_result(30)
            self.assertTrue(r.ok, f"messages bounced while jabberd2 restarts: {r.describe()}")
        self.j.start()
        r = clients.receive(self.juliet, bodies[self.alice] + bodies[self.dave], timeout=30)
        self.assertTrue(r.ok, f"{r.describe()}\nproxy J since the restart:\n{self.pj.log_text(mark)[-4000:]}")
        self.both_ways(self.alice)
        self.both_ways(self.dave)
        pj_log = self.pj.log_text(mark)
        self.assertRegex(pj_log, r"dns-query: SRV _xmpp-server\._tcp\.a\.test .*NOERROR, 1 record")
        for remote in ("a.test", "d.test"):
            self.assertRegex(pj_log, rf"\[c\d+ j\.test->{re.escape(remote)}\] local-accepted: ")
            self.assertRegex(pj_log, rf"\[c\d+ j\.test->{re.escape(remote)}\] local-authenticated: ")
        self.assertRegex(self.j.log_text(s2s_mark), r"starting up")

    def test_8_the_proxy_restarts(self):
        """s2s-proxy J restarts under jabberd2 (same ports): jabberd2's streams to it break,
        proxy J's local link to jabberd2 is made again, and jabberd2's next outgoing stream
        reaches the new proxy J (from its DNS cache, or through the responder again)."""
        self.both_ways(self.alice)
        s2s_mark = self.j.log_mark()
        self.pj.restart()
        mark = self.pj.log_mark()
        self.both_ways(self.alice)
        self.both_ways(self.dave)
        pj_log = self.pj.log_text(mark)
        for remote in ("a.test", "d.test"):
            self.assertRegex(pj_log, rf"\[c\d+ j\.test->{re.escape(remote)}\] local-accepted: ")
        self.assertRegex(self.j.log_text(s2s_mark), r"outgoing connection for '[ad]\.test'")

    def test_9_without_a_pemfile_the_streams_are_pre_1_0(self):
        """Without a <pemfile>, jabberd2 2.7 opens its outgoing streams with the pre-1.0 header
        (no to, from or version), as servers of the dialback era did: proxy J's [[listen.local]]
        answers in kind (no features) and takes the domains from each db:result, so juliet's
        messages still go out, to a proxied and to a plain peer. (s2s.xml keeps its pemfile: the
        1.0 header is the better stream.)"""
        import xml.etree.ElementTree as ET
        root = ET.parse(kit.jabberd2.OPERATOR_S2S_XML).getroot()
        local = root.find("local")
        local.remove(local.find("pemfile"))
        no_pem = os.path.join(self.j.dir, "s2s-no-pemfile.xml")
        ET.ElementTree(root).write(no_pem)
        self.j.s2s_xml = no_pem
        try:
            self.j.restart()
            mark = self.pj.log_mark()
            for peer in (self.alice, self.dave):
                r = clients.send_message(self.juliet, peer, timeout=T_MSG)
                self.assertDelivered(r, self.juliet, peer)
            pj_log = self.pj.log_text(mark)
            for remote in ("a.test", "d.test"):
                self.assertRegex(pj_log, rf"\[c\d+ j\.test->{re.escape(remote)}\] local-authenticated: ")
            self.assertNotRegex(pj_log, r"local-stream-error")
        finally:
            self.j.s2s_xml = kit.jabberd2.OPERATOR_S2S_XML
            self.j.restart()


if __name__ == "__main__":
    sys.exit(kit.runner.main())
