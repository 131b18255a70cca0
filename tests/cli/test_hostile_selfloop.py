#!/usr/bin/python3
"""The binary from outside, on configs that would make s2s-proxy dial itself: an
s2s.outgoing.address override that leads to one of its own listeners is refused at load with the
key and the listener named; s2s.outgoing.denied_networks has its documented default, takes [] and
rejects a bad network. (A DNS answer that leads back in is tested with real peers in
tests/integration/test_hostile_dns.py.)

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_cli import ConfigFile, minimal, run  # noqa: E402

DEFAULT_DENIED = ('["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", '
                  '"::/128", "::1/128", "fe80::/10", "ff00::/8"]')


def with_override(ip, port=None, extra=""):
    entry = f'{{host = "x.example", ip_address = "{ip}"' + (f", port = {port}" if port else "") + "}"
    return minimal(s2s_port=5269, local_port=15270, admin_port=9269) + extra + f"[s2s]\n  outgoing.address = [{entry}]\n"


class OverrideIntoOwnListener(unittest.TestCase):
    def check(self, text):
        with ConfigFile(text) as path:
            return path, run("--check-config", "--config", path)

    def test_override_at_own_listeners_is_refused_naming_them(self):
        # minimal(): listen.s2s on 127.0.0.1:5269, listen.local on 127.0.0.1:15270, admin on 127.0.0.1:9269
        for ip, port, listener in (("127.0.0.1", 15270, "listen.local.0"), ("127.0.0.1", None, "listen.s2s.0"),
                                   ("::ffff:127.0.0.1", 15270, "listen.local.0"), ("127.0.0.1", 9269, "admin.listen")):
            with self.subTest(ip=ip, port=port):
                path, r = self.check(with_override(ip, port))
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertRegex(r.stderr, rf"{path}:\d+: s2s\.outgoing\.address\.0\.ip_address: \"{ip}\" port "
                                           rf"{port or 5269} is where s2s-proxy itself listens \({listener}\): a link "
                                           r"there would come back into s2s-proxy")

    def test_override_elsewhere_on_loopback_is_fine(self):
        for ip, port in (("127.0.0.2", 15270), ("127.0.0.1", 15271), ("::1", 5269)):
            with self.subTest(ip=ip, port=port):
                _, r = self.check(with_override(ip, port))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("config OK", r.stdout)


class DeniedNetworks(unittest.TestCase):
    def test_default_is_printed(self):
        with ConfigFile(minimal()) as path:
            r = run("--print-config", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"denied_networks = {DEFAULT_DENIED}", r.stdout)

    def test_empty_list_and_a_bad_network(self):
        with ConfigFile(minimal()) as path:
            ok = run("--check-config", "--config", path, "--s2s.outgoing.denied_networks=[]")
            bad = run("--check-config", "--config", path, '--s2s.outgoing.denied_networks=["10.1.0.0/8"]')
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(bad.returncode, 2, bad.stdout)
        self.assertIn("s2s.outgoing.denied_networks", bad.stderr)
        self.assertIn("did you mean 10.0.0.0/8?", bad.stderr)

    def test_help_explains_it(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"s2s\.outgoing\.denied_networks = \[\"0\.0\.0\.0/8\"")
        self.assertIn("no address where s2s-proxy itself listens is ever dialled", r.stdout)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
