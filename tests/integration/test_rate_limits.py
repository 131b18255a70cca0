#!/usr/bin/python3
"""[antispam] rate limits per remote domain, end to end: a.test and b.test, each a Prosody behind
its own s2s-proxy; proxy A holds b.test to antispam.domain_rate = {rate = 10, burst = 10} and
antispam.subscription_rate = {rate = 1, burst = 2}.

  Stanzas       bob sends alice 40 messages, 20 ms apart (0.8 s): every one arrives, none twice,
                spread over about (40 - 10) / 10 = 3 s, never more than burst + rate * t (plus the
                slack of one read) by t seconds after the first.
  Contacts      alice asked bob for a subscription (proxy A saw it go out); bob's 8 requests to
                her are not counted, and his next message is not held.
  Subscriptions bob asks 8 JIDs of a.test for a subscription at once: proxy A stops reading his
                domain's stream, so a message he sends right after waits for the debt (6 s). Last:
                Prosody B sends those pending requests again whenever bob logs in.

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_rate_limits.py [Class[.test] ...]
    BUILD=build /usr/bin/python3 tests/integration/run_all.py test_rate_limits
Ends with `integration-summary: N passed, N failed`.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import Background, token  # noqa: E402

IP_PROSODY_A, IP_PROSODY_B = "127.0.0.2", "127.0.0.3"
IP_PROXY_A, IP_PROXY_B = "127.0.0.12", "127.0.0.13"

RATE, BURST = 10, 10              # antispam.domain_rate on proxy A
SUB_RATE, SUB_BURST = 1, 2        # antispam.subscription_rate on proxy A
READ_SLACK = 8                    # one held read (1 KB) of these ~150-byte messages

MODULE = {}


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "b.test"))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class RateLimits(kit.pair.ProxiedPair):
    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_B, IP_PROXY_A, IP_PROXY_B)

    @classmethod
    def configure(cls):
        cls.pa.set("antispam.domain_rate.rate", RATE).set("antispam.domain_rate.burst", BURST)
        cls.pa.set("antispam.subscription_rate.rate", SUB_RATE).set("antispam.subscription_rate.burst", SUB_BURST)

    def limited(self, what):
        return self.pa.metrics().get(f's2s_proxy_antispam_rate_limited_total{{what="{what}"}}', 0)

    def settle(self):
        """Lets the link come up and b.test's buckets fill again."""
        r = clients.send_message(self.bob, self.alice, timeout=20)
        self.assertTrue(r.ok, r.describe())
        time.sleep(max(BURST / RATE, SUB_BURST / SUB_RATE) + 0.5)

    def test_1_stanzas_all_arrive_no_faster_than_the_rate(self):
        self.settle()
        bodies = [token(f"rate-{i}") for i in range(40)]
        receiver = Background(clients.collect, self.alice, bodies, linger=1.0, timeout=30)
        time.sleep(3)                     # alice is online: nothing waits in offline storage
        held_before = self.limited("stanzas")
        sent = clients.send(self.bob, "alice@a.test", bodies, interval=0.02, linger=0.5, timeout=20)
        self.assertTrue(sent.ok, sent.describe())
        r = receiver.join_result(40)
        self.assertTrue(r.ok, r.describe())
        self.assertEqual(set(r.data["counts"].values()), {1}, r.data["counts"])   # none lost, none twice
        times = sorted(m["t"] for m in r.data["received"])
        spread = times[-1] - times[0]
        expected = (len(bodies) - BURST) / RATE
        self.assertGreaterEqual(spread, expected - 1.0, f"40 messages in {spread:.2f} s: not slowed")
        for i, t in enumerate(times):
            allowed = BURST + RATE * (t - times[0]) + READ_SLACK
            self.assertLessEqual(i + 1, allowed, f"{i + 1} messages {t - times[0]:.2f} s after the first")
        self.assertGreater(self.limited("stanzas"), held_before)

    def test_3_subscription_burst_is_slowed(self):
        self.settle()
        held_before = self.limited("subscriptions")
        strangers = [f"stranger{i}@a.test" for i in range(8)]
        r = clients.presences(self.bob, strangers, "subscribe", linger=0.2)
        self.assertTrue(r.ok, r.describe())
        m = clients.send_message(self.bob, self.alice, timeout=30)
        self.assertTrue(m.ok, m.describe())
        self.assertGreater(self.limited("subscriptions"), held_before)
        # 6 requests over the burst at 1/s: the stream reads again about 6 s after the burst;
        # logging both clients in took some of that.
        self.assertGreaterEqual(max(m.data["login_s"]) + m.data["latency_s"], 4.0,
                                f"the message after the burst was not held: {m.data}")

    def test_2_known_contact_is_exempt(self):
        self.settle()
        r = clients.presences(self.alice, ["bob@b.test"], "subscribe", linger=0.5)
        self.assertTrue(r.ok, r.describe())
        self.assertGreaterEqual(self.pa.metrics().get("s2s_proxy_antispam_contacts", 0), 1)
        held_before = self.limited("subscriptions")
        r = clients.presences(self.bob, ["alice@a.test"] * 8, "subscribe", linger=0.2)
        self.assertTrue(r.ok, r.describe())
        m = clients.send_message(self.bob, self.alice, timeout=30)
        self.assertTrue(m.ok, m.describe())
        self.assertEqual(self.limited("subscriptions"), held_before)
        self.assertLess(m.data["latency_s"], 2.0, m.data)


if __name__ == "__main__":
    sys.exit(kit.runner.main())
