#!/usr/bin/python3
"""Options the config accepts do what MongooseIM's documentation says, against the real binary:
command-line overrides of integer lists, address overrides for our own domains refused,
s2s.outgoing.state_timeout ending a stalled negotiation with connection-timeout (and 0 accepted),
check-config and a real start agreeing on extreme values, max_stanza_size "infinity" shown with
its cap, TOML syntax errors naming their table, the listener's access rule applied to remote
domains, and a listener shaper named through an access rule.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_cli as cli  # noqa: E402  (as a module: its test classes are not run here)

HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
          "xmlns:stream='http://etherx.jabber.org/streams' from='{frm}' to='{to}' version='1.0'>")


def check(text, *args):
    with cli.ConfigFile(text) as path:
        return path, cli.run("--check-config", "--config", path, *args)


class Running(unittest.TestCase):
    """One s2s-proxy per test with its log in a file."""

    def setUp(self):
        self.ports = dict(s2s_port=cli.free_port(), local_port=cli.free_port(), admin_port=cli.free_port(),
                          local_server_port=cli.free_port())
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.log_path = os.path.join(self.tmp.name, "s2s-proxy.log")
        self.proc = None

    def start(self, extra="", *args, wait=True):
        self.cfg = cli.ConfigFile(cli.minimal(**self.ports) + extra)
        self.path = self.cfg.__enter__()
        self.addCleanup(self.cfg.__exit__, None, None, None)
        log = open(self.log_path, "w")
        self.addCleanup(log.close)
        self.proc = subprocess.Popen([cli.PROXY, "--config", self.path, "--general.loglevel=info", *args],
                                     stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop)
        if wait:
            self.assertTrue(cli.Process.wait_listening(self.ports["admin_port"], self.proc, 15), self.log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, pattern, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log())
            if m:
                return m
            time.sleep(0.05)
        self.fail(f"no /{pattern}/ in the log within {seconds} s:\n{self.log()[-3000:]}")

    def metrics(self):
        code, text = cli.curl(f"http://127.0.0.1:{self.ports['admin_port']}/metrics")
        self.assertEqual(code, 200)
        return cli.parse_metrics(text)

    def open_stream(self, port, frm, to):
        """A raw peer's stream: (socket, what s2s-proxy sent up to its features)."""
        c = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.addCleanup(c.close)
        c.sendall(HEADER.format(frm=frm, to=to).encode())
        got = cli.read_until(c, lambda g: b"</stream:features>" in g or b"</stream:stream>" in g)
        return c, got


class ListOverrides(unittest.TestCase):
    """README: a VALUE that is not TOML is, for list keys, a comma-separated list."""

    def printed(self, *args):
        with cli.ConfigFile(cli.minimal()) as path:
            return cli.run("--print-config", "--config", path, *args)

    def test_comma_separated_integers(self):
        r = self.printed("--s2s.outgoing.ip_versions=6,4")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("outgoing.ip_versions = [6, 4]", r.stdout)

    def test_one_integer_is_a_list_of_one(self):
        r = self.printed("--s2s.outgoing.ip_versions=6")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("outgoing.ip_versions = [6]", r.stdout)

    def test_a_bad_item_is_named(self):
        r = self.printed("--s2s.outgoing.ip_versions=6,5")
        self.assertEqual(r.returncode, 2)
        self.assertIn("command line: --s2s.outgoing.ip_versions: \"5\" is not one of 4, 6", r.stderr)


class AddressOverrideForOwnDomain(unittest.TestCase):
    """MongooseIM: s2s.outgoing.address is for non-local domains."""

    def test_refused_in_both_layouts_naming_key_and_line(self):
        for key in ("outgoing.address", "address"):
            with self.subTest(key=key):
                text = (cli.minimal() + "[s2s]\n  " + key + " = [\n    {host = \"remote.test\", ip_address = "
                        "\"192.0.2.1\"},\n    {host = \"A.test\", ip_address = \"192.0.2.2\"}\n  ]\n")
                line = text.splitlines().index("    {host = \"A.test\", ip_address = \"192.0.2.2\"}") + 1
                path, r = check(text)
                self.assertEqual(r.returncode, 2, r.stdout)
                self.assertIn(f"{path}:{line}: s2s.{key}.1.host: \"a.test\" is one of general.hosts: an address "
                              "override is for a remote domain", r.stderr)

    def test_remote_domains_are_fine(self):
        _, r = check(cli.minimal() + "[s2s]\n  outgoing.address = [{host = \"b.test\", ip_address = \"192.0.2.1\"}]\n")
        self.assertEqual(r.returncode, 0, r.stderr)


class StateTimeout(Running):
    """s2s.outgoing.state_timeout: a remote server that stalls negotiation gets connection-timeout."""

    def stalled_remote(self):
        srv = socket.socket()
        self.addCleanup(srv.close)
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        srv.settimeout(20)
        return srv

    def local_sends_a_message(self):
        """The local server's side on [[listen.local]]: a.test authenticated, a message to b.test."""
        c, got = self.open_stream(self.ports["local_port"], "a.test", "b.test")
        self.assertIn(b"<stream:features>", got)
        c.sendall(b"<db:result from='a.test' to='b.test'>k</db:result>")
        self.assertIn(b"type='valid'", cli.read_until(c, lambda g: b"type=" in g or b"</stream:stream>" in g))
        c.sendall(b"<message from='alice@a.test' to='bob@b.test' id='m1'><body>hi</body></message>")
        return c

    def test_stalled_negotiation_ends_with_connection_timeout(self):
        srv = self.stalled_remote()
        self.start(f"[s2s]\n  outgoing.address = [{{host = \"b.test\", ip_address = \"127.0.0.1\", "
                   f"port = {srv.getsockname()[1]}}}]\n", "--local.verify_dialback=false",
                   "--s2s.outgoing.state_timeout=1000")
        self.local_sends_a_message()  # (its socket stays open until the test ends)
        conn, _ = srv.accept()
        self.addCleanup(conn.close)
        conn.settimeout(20)
        header = cli.read_until(conn, lambda g: b"<stream:stream" in g and b">" in g.split(b"<stream:stream")[-1])
        self.assertIn(b"to='b.test'", header)
        conn.sendall(HEADER.format(frm="b.test", to="a.test").replace("version='1.0'>", "version='1.0' id='s1'>").encode())
        start = time.monotonic()
        got = cli.read_until(conn, lambda g: b"</stream:stream>" in g)
        self.assertRegex(got, rb"<stream:error><connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
        self.assertIn(b"</stream:stream>", got)
        self.assertGreater(time.monotonic() - start, 0.5)
        self.wait_log(r"link-failed.*no answer from b\.test within 1000 ms")
        self.assertEqual(self.metrics().get('s2s_proxy_stream_errors_sent_total{condition="connection-timeout"}'), 1)

    def test_zero_is_accepted(self):
        _, r = check(cli.minimal(), "--s2s.outgoing.state_timeout=0")
        self.assertEqual(r.returncode, 0, r.stderr)
        with cli.ConfigFile(cli.minimal()) as path:
            p = cli.run("--print-config", "--config", path, "--s2s.outgoing.state_timeout=0")
        self.assertIn("outgoing.state_timeout = 0", p.stdout)

    def test_zero_times_out_at_once(self):
        srv = self.stalled_remote()
        self.start(f"[s2s]\n  outgoing.address = [{{host = \"b.test\", ip_address = \"127.0.0.1\", "
                   f"port = {srv.getsockname()[1]}}}]\n", "--local.verify_dialback=false",
                   "--s2s.outgoing.state_timeout=0")
        self.local_sends_a_message()  # (its socket stays open until the test ends)
        conn, _ = srv.accept()
        self.addCleanup(conn.close)
        conn.settimeout(20)
        got = cli.read_until(conn, lambda g: b"</stream:stream>" in g)
        self.assertIn(b"<connection-timeout", got)
        self.wait_log(r"link-failed.*no answer from b\.test within")


class CheckAgreesWithStart(Running):
    """Every value --check-config accepts also starts: the bounds are the DNS library's own."""

    def test_extreme_dns_values_start(self):
        servers = '["127.0.0.53:25353", "127.0.0.54", "127.0.0.55", "127.0.0.56", "127.0.0.57", "::1"]'
        for args in (("--s2s.outgoing.dns.timeout=300", "--s2s.outgoing.dns.retries=50"),
                     ("--s2s.outgoing.dns.timeout=1", "--s2s.outgoing.dns.retries=1"),
                     (f"--s2s.outgoing.dns.nameservers={servers}",)):
            with self.subTest(args=args):
                _, r = check(cli.minimal(**self.ports), *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.start("", *args)
                self.stop()
                self.assertEqual(self.proc.returncode, 0, self.log())

    def test_values_past_the_library_are_refused_at_check(self):
        seven = '["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"]'
        for arg, says in (("--s2s.outgoing.dns.timeout=301", "301 is out of range 1..300"),
                          ("--s2s.dns.retries=51", "51 is out of range 1..50"),
                          (f"--s2s.outgoing.dns.nameservers={seven}", "lists 7 servers; at most 6")):
            with self.subTest(arg=arg):
                _, r = check(cli.minimal(), arg)
                self.assertEqual(r.returncode, 2, r.stdout)
                self.assertIn(says, r.stderr)


class MaxStanzaSizeCap(unittest.TestCase):
    """max_stanza_size = "infinity" is capped at 16 MiB: --help says so, --print-config shows it,
    and no larger number is taken."""

    def test_help_names_the_cap(self):
        r = cli.run("--help")
        for key in ("s2s.outgoing.max_stanza_size", "listen.s2s.*.max_stanza_size", "listen.local.*.max_stanza_size"):
            self.assertRegex(r.stdout, re.escape(key) + r" = 524_288 .*at most 16_777_216, the hard limit, which is "
                                                        r"what \"infinity\" means here")

    def test_print_config_shows_what_infinity_means(self):
        with cli.ConfigFile(cli.minimal()) as path:
            r = cli.run("--print-config", "--config", path, "--listen.s2s.0.max_stanza_size=infinity",
                        "--s2s.outgoing.max_stanza_size=infinity")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('outgoing.max_stanza_size = "infinity"  # means 16777216 bytes (16 MiB), the hard limit', r.stdout)
        self.assertIn('\nmax_stanza_size = "infinity"  # means 16777216 bytes (16 MiB), the hard limit', r.stdout)
        with cli.ConfigFile(r.stdout) as printed:
            again = cli.run("--check-config", "--config", printed)
        self.assertEqual(again.returncode, 0, again.stderr)

    def test_a_number_above_the_cap_is_refused(self):
        for key in ("listen.s2s.0.max_stanza_size", "listen.local.0.max_stanza_size", "s2s.outgoing.max_stanza_size"):
            with self.subTest(key=key):
                _, ok = check(cli.minimal(), f"--{key}=16777216")
                self.assertEqual(ok.returncode, 0, ok.stderr)
                _, r = check(cli.minimal(), f"--{key}=16777217")
                self.assertEqual(r.returncode, 2, r.stdout)
                self.assertIn(f"--{key}: 16777217 is out of range 10000..16777216", r.stderr)


class SyntaxErrors(unittest.TestCase):
    """cpptoml gives a line only: the error also names the key there, or the key and table before it."""

    def test_the_key_on_the_line_is_named(self):
        path, r = check("[general]\n  hosts = [\"a.test\"]\n[s2s]\n  default_policy = deny\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:4: s2s.default_policy: TOML syntax error: ", r.stderr)

    def test_the_table_and_key_before_are_named(self):
        path, r = check("[general]\n  hosts = [\"a.test\"]\n[[listen.s2s]]\n  port = 5269\n\n  not a key\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:6: TOML syntax error (after listen.s2s.0.port on line 4, in listen.s2s.0): ", r.stderr)


ACCESS = """
[access]
  s2s = [{acl = "bad", value = "deny"}, {acl = "all", value = "allow"}]
[acl]
  bad = [{server = "bad.test"}]
"""


class ListenerAccess(Running):
    """[[listen.s2s]] access: a remote domain the rule denies is refused when it claims a pair;
    one it allows goes on to verification. Reloadable."""

    def setUp(self):
        super().setUp()
        closed = cli.free_port()  # nothing listens there: good.test's verification fails at once
        self.extra = ('[s2s]\n  outgoing.address = [\n'
                      f'    {{host = "good.test", ip_address = "127.0.0.1", port = {closed}}},\n'
                      f'    {{host = "bad.test", ip_address = "127.0.0.1", port = {closed}}},\n  ]\n' + ACCESS)

    def claim(self, domain):
        c, got = self.open_stream(self.ports["s2s_port"], domain, "a.test")
        self.assertIn(b"<stream:features>", got)
        c.sendall(f"<db:result from='{domain}' to='a.test'>some-key</db:result>".encode())
        return cli.read_until(c, lambda g: b"</db:result>" in g or b"/>" in g.split(b"<db:result")[-1]
                              or b"</stream:stream>" in g)

    def test_a_denied_domain_is_refused_and_an_allowed_one_verified(self):
        self.start(self.extra, "--listen.s2s.0.access=s2s")
        bad = self.claim("bad.test")
        self.assertRegex(bad, rb"<db:result from='a.test' to='bad.test' type='error'><error type='[a-z]+'>"
                              rb"<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>")
        good = self.claim("good.test")
        self.assertIn(b"type='error'", good)
        self.assertIn(b"remote-server-not-found", good)  # it went on to ask good.test's server
        self.assertNotIn(b"not-authorized", good)
        self.assertEqual(self.metrics().get('s2s_proxy_access_refusals_total{where="dialback"}'), 1)
        self.wait_log(r"bad\.test is not admitted by access rule s2s of listen\.s2s\.0")

    def test_the_rule_is_reloaded(self):
        self.start(self.extra)
        with open(self.path) as f:
            text = f.read()
        self.assertNotIn(b"not-authorized", self.claim("bad.test"))  # access = "all" by default
        with open(self.path, "w") as f:
            f.write(text.replace("[[listen.s2s]]\n", "[[listen.s2s]]\n  access = \"s2s\"\n", 1))
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log(r"change applied: listen\.s2s\.0\.access|changes applied: .*listen\.s2s\.0\.access")
        self.assertIn(b"not-authorized", self.claim("bad.test"))


class ListenerShaperByAccessRule(Running):
    """MongooseIM's c2s listener form: shaper names an access rule whose value is a shaper name."""

    RULES = """
[access]
  c2s_shaper = [{acl = "all", value = "normal"}]
  unshaped = [{acl = "all", value = "none"}]
[shaper.normal]
  max_rate = 25_000
"""

    def timed(self, rule):
        self.start(self.RULES, f"--listen.s2s.0.shaper={rule}", "--listen.s2s.0.state_timeout=30000")
        with socket.create_connection(("127.0.0.1", self.ports["s2s_port"]), timeout=20) as c:
            c.sendall(cli.STREAM_HEADER)
            elapsed, got = cli.timed_verify_through(c)
        self.assertIn(b"db:verify", got)
        return elapsed

    def test_the_rule_s_shaper_holds_the_peer_to_its_rate(self):
        """100 kB at 25 kB/s takes about 3 s after the 1 s burst."""
        elapsed = self.timed("c2s_shaper")
        self.assertGreater(elapsed, 2.4, "the shaper named by the access rule was not applied")
        self.assertLess(elapsed, 15)

    def test_a_rule_whose_value_is_none_does_not_shape(self):
        self.assertLess(self.timed("unshaped"), 2.0)

    def test_the_rule_is_evaluated_again_for_the_domain_that_authenticates(self):
        """Held to 25 kB/s when accepted (no domain known: "all" matches), unshaped once good.test,
        which the rule gives "none", has authenticated by dialback."""
        auth = socket.socket()  # good.test's authoritative server, reached by an address override
        self.addCleanup(auth.close)
        auth.bind(("127.0.0.1", 0))
        auth.listen(4)
        auth.settimeout(20)
        rules = self.RULES.replace("[access]\n", '[access]\n  per_domain = [{acl = "trusted", value = "none"}, '
                                                  '{acl = "all", value = "normal"}]\n') + ('[acl]\n  trusted = [{server = "good.test"}]\n[s2s]\n  outgoing.address = [{host = '
                              f'"good.test", ip_address = "127.0.0.1", port = {auth.getsockname()[1]}}}]\n')
        self.start(rules, "--listen.s2s.0.shaper=per_domain", "--listen.s2s.0.state_timeout=30000")
        c, got = self.open_stream(self.ports["s2s_port"], "good.test", "a.test")
        c.sendall(b"<db:result from='good.test' to='a.test'>some-key</db:result>")
        conn, _ = auth.accept()
        self.addCleanup(conn.close)
        conn.settimeout(20)
        cli.read_until(conn, lambda g: b"<stream:stream" in g and b">" in g.split(b"<stream:stream")[-1])
        conn.sendall(b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
                     b"xmlns:db='jabber:server:dialback' from='good.test' to='a.test' id='auth1'>")
        asked = cli.read_until(conn, lambda g: b"</db:verify>" in g)
        sid = re.search(rb"<db:verify [^>]*id='([^']+)'", asked).group(1)
        conn.sendall(b"<db:verify from='good.test' to='a.test' id='" + sid + b"' type='valid'/>")
        self.assertIn(b"type='valid'", cli.read_until(c, lambda g: b"type=" in g))
        elapsed, got = cli.timed_verify_through(c)
        self.assertIn(b"db:verify", got)
        self.assertLess(elapsed, 2.0, "the rule's value for good.test (none) was not applied")

    def test_a_name_that_is_neither_is_refused_naming_both_tables(self):
        _, r = check(cli.minimal() + self.RULES, "--listen.s2s.0.shaper=nosuch")
        self.assertEqual(r.returncode, 2)
        self.assertIn('--listen.s2s.0.shaper: no shaper or access rule "nosuch" is defined (shapers: none, normal; '
                      'access rules: c2s_shaper, unshaped)', r.stderr)

    def test_a_rule_value_that_is_not_a_shaper_is_refused(self):
        path, r = check(cli.minimal() + self.RULES.replace('value = "normal"', 'value = "slow"'),
                        "--listen.s2s.0.shaper=c2s_shaper")
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stderr, re.escape(path) + r':\d+: access\.c2s_shaper\.0\.value: "slow" is not a shaper')


class SeedExamples(unittest.TestCase):
    """config-examples/mongooseim-seed.toml holds MongooseIM's documentation examples and checks clean."""

    VERBATIM = [
        'default_policy = "deny"',
        '{host = "good.xmpp.org", policy = "allow"},',
        'shared = "82gc8b23ct7824"',
        '{host = "your.xmpp.org", ip_address = "192.0.1.100", port = 5271}',
        'ciphers = "TLSv1.2"',
        'max_retry_delay = 300',
        'outgoing.port = 5270',
        'outgoing.ip_versions = [6]',
        'outgoing.connection_timeout = 5000',
        'outgoing.state_timeout = 10_000',
        'dns.timeout = 30',
        'dns.retries = 1',
        'shaper = "s2s_shaper"',
        'max_stanza_size = 131072',
        'access = "c2s"',
        'shaper = "c2s_shaper"',
        'max_connections = 10000',
        'max_stanza_size = 65536',
        '[shaper.fast]\n  max_rate = 50_000',
    ]

    def test_the_examples_are_there_and_check_clean(self):
        path = os.path.join(cli.EXAMPLES, "mongooseim-seed.toml")
        with open(path) as f:
            text = f.read()
        for line in self.VERBATIM:
            self.assertIn(line, text)
        r = cli.run("--check-config", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        printed = cli.run("--print-config", "--config", path).stdout
        self.assertIn('shaper = "s2s_shaper"', printed)
        self.assertIn('host = "my.xmpp.org"', printed)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
