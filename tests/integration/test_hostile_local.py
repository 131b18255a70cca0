#!/usr/bin/python3
"""A hostile process on the local link: any process that can connect to s2s-proxy's [[listen.local]]
(in a pod: any container) tries to speak for one of our domains with a key it made up.

a.test and b.test, each a real Prosody 0.12 in "proxied" mode behind its own s2s-proxy, as in
test_federation.py; bob@b.test is where a forged message would land:

    alice -- Prosody A (127.0.0.32) == s2s-proxy A (127.0.0.42) ~~~~ s2s-proxy B (127.0.0.43) == Prosody B (127.0.0.33) -- bob
                                          ^
                      a raw local process on [[listen.local]]: db:result from a.test, junk key

  A_Checked   the default (local.verify_dialback = true): proxy A asks Prosody A, the authority for
              a.test, with a db:verify; Prosody says the key is not its own, the db:result is answered
              invalid, the forged message ends the stream with invalid-from and never reaches bob,
              while alice's own messages still go both ways (Prosody's keys are confirmed by Prosody)
  B_Unchecked local.verify_dialback = false: the warning at start, and the attack as it worked before
              the check: the junk key is taken and the forged message reaches bob

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_hostile_local.py [Class[.test] ...]
Ends with `integration-summary: N passed, N failed`.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import Background, token  # noqa: E402

IP_PROSODY_A, IP_PROSODY_B = "127.0.0.32", "127.0.0.33"
IP_PROXY_A, IP_PROXY_B = "127.0.0.42", "127.0.0.43"
T_MSG = 10

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "b.test"))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class ProxiedPair(kit.pair.ProxiedPair):
    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_B, IP_PROXY_A, IP_PROXY_B)
    verify_dialback = True

    @classmethod
    def configure(cls):
        if not cls.verify_dialback:
            cls.pa.set("local.verify_dialback", False)

    def forge(self, body):
        """As a local process: claim a.test toward b.test on proxy A's [[listen.local]] with a key
        Prosody A never issued, then send a message as alice whatever the answer. Returns (the
        db:result answer's type, the raw peer)."""
        peer = kit.RawPeer(*self.pa.local_addr)
        self.addCleanup(peer.close)
        peer.open_stream(to="b.test", from_="a.test")
        self.assertRegex(peer.received, r"<stream:stream [^>]*id='[0-9a-f]{32}'")
        peer.send("<db:result from='a.test' to='b.test'>0123456789abcdef-not-a-key-of-prosody</db:result>")
        m = peer.read_until(r"<db:result [^>]*type='(\w+)'", timeout=15)
        peer.send(f"<message from='alice@a.test/forged' to='bob@b.test' type='chat' id='forged'>"
                  f"<body>{body}</body></message>")
        return m.group(1), peer

    def deliver_after(self, forged, own):
        """alice's own message `own` to bob through Prosody A; bob logs in and collects. Whatever
        went the same way before it (the forged one, if it was let through) arrives first."""
        job = Background(clients.collect, self.bob, [own], linger=1.0, timeout=30)
        r = clients.send(self.alice, "bob@b.test", [own], linger=0.5, timeout=T_MSG)
        self.assertTrue(r.ok, r.describe())
        got = job.join_result(40)
        self.assertTrue(got.ok, got.describe())
        return forged in got.data.get("other_bodies", []) or forged in got.data.get("counts", {})


class A_Checked(ProxiedPair):
    def test_1_a_made_up_key_is_refused_by_prosody_and_nothing_is_forwarded(self):
        mark_pa, mark_a = self.pa.log_mark(), self.a.log_mark()
        forged = token("forged")
        answer, peer = self.forge(forged)
        self.assertEqual(answer, "invalid", peer.received[-800:])
        peer.expect_stream_error("invalid-from")
        # The answer came from Prosody A, asked on a connection of proxy A's own.
        self.pa.wait_log(r"local-dialback-invalid: the local server did not issue the key", 10, since=mark_pa)
        self.a.wait_log(r"(?i)dialback key that was incorrect|imposter", 10, since=mark_a)
        m = self.pa.metrics()
        self.assertGreaterEqual(m.get('s2s_proxy_dialback_total{role="local_receiving",result="invalid"}', 0), 1, m)
        self.assertFalse(self.deliver_after(forged, token("own")), "the forged message reached bob")

    def test_2_prosodys_own_keys_are_confirmed_by_prosody(self):
        mark = self.pa.log_mark()
        for sender, receiver in ((self.alice, self.bob), (self.bob, self.alice)):
            r = clients.send_message(sender, receiver, timeout=T_MSG)
            self.assertTrue(r.ok, r.describe())
        self.assertRegex(self.pa.log_text(), r"local-accepted: outgoing s2s from the local server \(key confirmed by "
                                             r"the local server\)")
        m = self.pa.metrics()
        self.assertGreaterEqual(m.get('s2s_proxy_dialback_total{role="local_receiving",result="valid"}', 0), 1, m)
        self.assertNotIn("local-unverified", self.pa.log_text(since=mark))


class B_Unchecked(ProxiedPair):
    verify_dialback = False

    def test_1_the_warning_and_the_old_behaviour(self):
        self.pa.wait_log(r"local-unverified: local\.verify_dialback is false: .*any process that can connect to "
                         r"\[\[listen\.local\]\] may send as any user of general\.hosts", 5)
        forged = token("forged")
        answer, peer = self.forge(forged)
        self.assertEqual(answer, "valid", peer.received[-800:])
        self.assertTrue(self.deliver_after(forged, token("own")), "with the check off the forged message is let through")
        m = self.pa.metrics()
        self.assertGreaterEqual(m.get('s2s_proxy_dialback_total{role="local_receiving",result="unchecked"}', 0), 1, m)


if __name__ == "__main__":
    sys.exit(kit.runner.main())
