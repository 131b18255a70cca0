#!/usr/bin/python3
"""[antispam] end to end: a.test and b.test, each a proxied Prosody behind its own s2s-proxy, and a
third, "spam" server: c.test (with sub.c.test), a plain federating Prosody that proxy A reaches by an
s2s.outgoing.address route and that finds a.test by SRV in the kit's dnsmasq. Proxy A reads the
list files (spam_domains_file, spam_jids_file, whitelist_domains_file); every case edits them while
it runs, and each edit must be in force within a second (the proxy logs the entries it read).

- a listed domain cannot authenticate inbound (carol's message to alice never arrives; proxy A's
  log and antispam_refusals_total say why) and our users' stanzas to it bounce with the reason;
- a parent-domain entry blocks its subdomains, and a SHA-256 entry blocks like the plain one;
- the whitelist wins over the domain list;
- a listed JID's stanzas are refused with a stanza error while the rest of its domain gets through;
- a list removed lets the domain back in; a broken edit keeps the list in force (logged, counted).

    BUILD=build /usr/bin/python3 tests/integration/run_all.py test_antispam
Ends with `integration-summary: N passed, N failed`.
"""
import hashlib
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.prosody import Prosody  # noqa: E402
from kit.suite import Background  # noqa: E402

IP_PROSODY_A, IP_PROSODY_B, IP_PROSODY_C = "127.0.0.50", "127.0.0.51", "127.0.0.52"
IP_PROXY_A, IP_PROXY_B = "127.0.0.60", "127.0.0.61"
T_MSG = 10
T_RELOAD = 1.0       # an edit is in force within this many seconds

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "b.test", "c.test", "sub.c.test"))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class Antispam(kit.pair.ProxiedPair):
    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_B, IP_PROXY_A, IP_PROXY_B)

    @classmethod
    def configure(cls):
        for p, d in ((cls.pa, "a.test"), (cls.pb, "b.test")):
            p.tls(cls.ca, mode="starttls", cert=cls.certs[d], client_cert=False)
        cls.lists = cls.procs.mkdir("antispam")
        cls.files = {}
        for key in ("spam_domains_file", "spam_jids_file", "whitelist_domains_file"):
            cls.files[key] = os.path.join(cls.lists, key.replace("_file", ".txt"))
            with open(cls.files[key], "w") as f:
                f.write("# empty\n")
            cls.pa.set("antispam." + key, cls.files[key])
        cls.c = Prosody(cls.procs, "c", ip=IP_PROSODY_C, dns=cls.dns, ca=cls.ca, s2s_secure_auth=False)
        cls.c.add_host("c.test", users={"carol": "carol-pw", "spammer": "spammer-pw"}, cert=cls.certs["c.test"])
        cls.c.add_host("sub.c.test", users={"dave": "dave-pw"}, cert=cls.certs["sub.c.test"])
        for d in ("c.test", "sub.c.test"):
            cls.pa.route(d, cls.c.ip, cls.c.s2s_port)
        (cls.zone
         .srv("_xmpp-server._tcp.a.test", "proxy.a.test", cls.pa.s2s_port).a("proxy.a.test", cls.pa.ip)
         .absent("_xmpps-server._tcp.a.test"))

    @classmethod
    def dns_started(cls):
        cls.c_start = Background(cls.c.start)    # beside the four the fixture starts

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.c_start.join(30)
            if cls.c_start.exc:
                raise cls.c_start.exc
            cls.carol = clients.Account.on(cls.c, "carol", "c.test")
            cls.spammer = clients.Account.on(cls.c, "spammer", "c.test")
            cls.dave = clients.Account.on(cls.c, "dave", "sub.c.test")
        except BaseException:
            cls.procs.dump_logs()
            cls.procs.close()
            raise

    # -- helpers ------------------------------------------------------------------------------
    def edit(self, key, lines, *, rename=False):
        """Writes list file `key` (in place, or a new file renamed over it) and waits for proxy A
        to have read it: the edit must be in force within T_RELOAD. Returns the log mark before."""
        mark = self.pa.log_mark()
        path = self.files[key]
        text = "".join(line + "\n" for line in lines)
        t0 = time.monotonic()
        if rename:
            with open(path + ".new", "w") as f:
                f.write(text)
            os.rename(path + ".new", path)
        else:
            with open(path, "w") as f:
                f.write(text)
        entries = len([line for line in lines if line and not line.startswith("#")])
        self.pa.wait_log(rf"antispam: antispam\.{key}: {re.escape(path)}: {entries} entries", 5, since=mark)
        took = time.monotonic() - t0
        self.assertLess(took, T_RELOAD, f"{key} read again {took:.2f} s after the edit")
        return mark

    def clear(self):
        for key in self.files:
            self.edit(key, [])

    def refusals(self, lst, what):
        return self.pa.metrics().get(f's2s_proxy_antispam_refusals_total{{list="{lst}",what="{what}"}}', 0)

    def assertRefusedInbound(self, sender, mark):
        """sender's message to alice never reaches her; proxy A's log says why."""
        r = clients.send_message(sender, self.alice, timeout=4)
        self.assertFalse(r.ok, r.describe())
        self.assertFalse(r.data.get("received"), r.describe())
        self.pa.wait_log(rf"{re.escape(sender.domain)} is listed as a spam domain \(antispam\.spam_domains_file\)",
                         5, since=mark)

    def assertBounced(self, sender, receiver, text):
        r = clients.send_message(sender, receiver, timeout=T_MSG)
        self.assertFalse(r.ok, r.describe())
        self.assertEqual(r.error_condition, "policy-violation", r.describe())
        self.assertIn(text, r.error, r.describe())

    def assertDeliveredTo(self, sender, receiver):
        r = clients.send_message(sender, receiver, timeout=T_MSG)
        self.assertTrue(r.ok, f"{sender.jid} -> {receiver.jid}: {r.describe()}")

    # -- cases --------------------------------------------------------------------------------
    def test_1_a_listed_domain_is_refused_both_ways(self):
        before = self.refusals("spam_domains_file", "domain")
        mark = self.edit("spam_domains_file", ["# throwaway servers", "c.test"])
        self.assertRefusedInbound(self.carol, mark)
        self.assertBounced(self.alice, self.carol, "c.test is listed as a spam domain")
        self.assertGreater(self.refusals("spam_domains_file", "domain"), before)
        self.assertDeliveredTo(self.alice, self.bob)   # b.test is not concerned

    def test_2_a_parent_entry_and_a_hashed_entry_block_the_same(self):
        mark = self.edit("spam_domains_file", ["c.test"], rename=True)
        self.assertRefusedInbound(self.dave, mark)      # sub.c.test, under the entry
        self.assertBounced(self.alice, self.dave, "sub.c.test is listed as a spam domain")
        mark = self.edit("spam_domains_file", [hashlib.sha256(b"c.test").hexdigest()])
        self.assertRefusedInbound(self.carol, mark)
        self.assertBounced(self.alice, self.dave, "sub.c.test is listed as a spam domain")

    def test_3_the_whitelist_wins(self):
        self.edit("spam_domains_file", ["c.test"])
        self.edit("whitelist_domains_file", ["sub.c.test"])
        self.assertDeliveredTo(self.dave, self.alice)
        self.assertDeliveredTo(self.alice, self.dave)
        self.assertBounced(self.alice, self.carol, "c.test is listed as a spam domain")
        self.clear()

    def test_4_a_listed_jid_gets_a_stanza_error_and_its_domain_goes_on(self):
        self.clear()
        before = self.refusals("spam_jids_file", "jid")
        mark = self.edit("spam_jids_file", ["spammer@c.test"])
        self.assertBounced(self.spammer, self.alice, "spammer@c.test is listed as a spammer")
        self.assertDeliveredTo(self.carol, self.alice)
        self.assertDeliveredTo(self.alice, self.carol)
        self.assertEqual(self.refusals("spam_jids_file", "jid"), before + 1)
        self.assertRegex(self.pa.log_text(mark), r"refused: message \S+ from spammer@c\.test/\S+ bounced: "
                                                 r"spammer@c\.test is listed as a spammer")
        self.edit("spam_jids_file", [])
        self.assertDeliveredTo(self.spammer, self.alice)

    def test_5_added_and_removed_while_running_a_broken_edit_keeps_the_list(self):
        self.clear()
        self.assertDeliveredTo(self.alice, self.carol)
        self.edit("spam_domains_file", ["c.test"])
        self.assertBounced(self.alice, self.carol, "c.test is listed as a spam domain")
        refused = self.pa.metrics().get('s2s_proxy_antispam_reloads_total{result="refused"}', 0)
        mark = self.pa.log_mark()
        with open(self.files["spam_domains_file"], "w") as f:
            f.write("c.test\nnot a domain\n")
        self.pa.wait_log(r"line 2: 'not a domain' is not a domain .*the lists in force stay", 5, since=mark)
        self.assertEqual(self.pa.metrics().get('s2s_proxy_antispam_reloads_total{result="refused"}', 0), refused + 1)
        self.assertBounced(self.alice, self.carol, "c.test is listed as a spam domain")
        self.edit("spam_domains_file", [])
        self.assertDeliveredTo(self.alice, self.carol)
        self.assertDeliveredTo(self.carol, self.alice)


if __name__ == "__main__":
    sys.exit(kit.runner.main())
