#!/usr/bin/python3
"""Stream limits (XEP-0478) between two s2s-proxies, each in front of a real Prosody 0.12 (which
advertises no limits of its own: the limits here are the proxies').

    alice -- Prosody A == s2s-proxy A ~~~~ s2s-proxy B == Prosody B -- bob

Proxy B's listener has max_stanza_size = 10_000 and an idle timeout of 3 s
(s2s.outgoing.stream_timeout), both listed in its features; no TLS between the proxies.
  A_Honoured   (1) a message small enough reaches bob; one larger than 10,000 bytes comes back to
               alice with policy-violation and a text naming b.test's limit, and the link is not
               cut: the next small message takes the same link. (2) The link stays up while idle
               for three times B's idle timeout: proxy A writes whitespace keepalives
               (stream_limits_total{action="keepalive"}), and the next message takes the same link.
  B_NotListed  the control: proxy B with s2s.stream_limits = false lists nothing, proxy A sends no
               keepalive, and B closes the idle link after 3 s (a new one carries the next message).

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_stream_limits.py [Class[.test] ...]
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402

IP_PROSODY_A, IP_PROSODY_B = "127.0.0.2", "127.0.0.3"
IP_PROXY_A, IP_PROXY_B = "127.0.0.12", "127.0.0.13"

MODULE = {}
T_MSG = 10
IDLE_MS = 3000           # proxy B's idle timeout: idle-seconds 3, so keepalives every 2 s
READY = r"(?m)\[c\d+ a\.test->b\.test\] ready: stream \w+ negotiated$"


def setUpModule():
    kit.suite.module_setup(MODULE, ("a.test", "b.test"))


def tearDownModule():
    kit.suite.module_teardown(MODULE)


class LimitedPair(kit.pair.ProxiedPair):
    module = MODULE
    ips = (IP_PROSODY_A, IP_PROSODY_B, IP_PROXY_A, IP_PROXY_B)
    listed = True        # proxy B's s2s.stream_limits

    @classmethod
    def configure(cls):
        cls.pa.plain()
        cls.pb.plain()
        cls.pb.set("listen.s2s.0.max_stanza_size", 10_000)
        cls.pb.set("s2s.outgoing.stream_timeout", IDLE_MS)
        cls.pb.set("s2s.stream_limits", cls.listed)

    def links_made(self):
        return len(re.findall(READY, self.pa.log_text()))

    def keepalives(self):
        return self.pa.metrics().get('s2s_proxy_stream_limits_total{action="keepalive"}', 0)

    def small_message_delivered(self):
        self.assertDelivered(clients.send_message(self.alice, self.bob, timeout=T_MSG), self.alice, self.bob)


class A_Honoured(LimitedPair):
    """(a) proxy A reads proxy B's limits and honours them."""

    def test_1_too_large_bounced_link_kept(self):
        self.small_message_delivered()
        links = self.links_made()
        self.assertEqual(links, 1, self.pa.tail())
        r = clients.send_message(self.alice, self.bob, body="x" * 12_000, timeout=T_MSG)
        self.assertFalse(r.ok, f"a 12,000-byte message should not reach bob: {r.describe()}")
        self.assertTrue(r.data.get("bounced"), f"alice should get a bounce, not silence: {r.describe()}")
        self.assertEqual(r.error_condition, "policy-violation", r.describe())
        text = r.data["bounced"][0]["error"]["text"] or ""
        self.assertRegex(text, r"^b\.test accepts stanzas of at most 10000 bytes \(XEP-0478 stream limits\); "
                               r"this one has \d+$")
        self.assertGreaterEqual(self.pa.metrics().get('s2s_proxy_stream_limits_total{action="too_large"}', 0), 1)
        # The link was not cut: proxy B never saw the stanza, the next message takes the same link.
        self.small_message_delivered()
        self.assertEqual(self.links_made(), links, self.pa.tail())
        self.assertNotRegex(self.pb.log_text(), r"policy-violation", "proxy B should never have seen it")

    def test_2_idle_link_kept_alive(self):
        self.small_message_delivered()
        links, keepalives, mark = self.links_made(), self.keepalives(), self.pa.log_mark()
        time.sleep(3 * IDLE_MS / 1000)
        self.assertGreaterEqual(self.keepalives(), keepalives + 3, self.pa.tail())
        self.assertNotRegex(self.pa.log_text(mark), r"\] link-failed: ", self.pa.tail())
        self.small_message_delivered()
        self.assertEqual(self.links_made(), links, self.pa.tail())


class B_NotListed(LimitedPair):
    """(b) the control: nothing listed, no keepalive, and proxy B closes the idle link."""
    listed = False

    def test_1_idle_link_closed_by_the_remote(self):
        self.small_message_delivered()
        links, keepalives, mark = self.links_made(), self.keepalives(), self.pa.log_mark()
        self.pa.wait_log(r"\[c\d+ a\.test->b\.test\] link-failed: b\.test closed the stream", timeout=3 * IDLE_MS / 1000,
                         since=mark)
        self.assertEqual(self.keepalives(), keepalives)
        self.small_message_delivered()
        self.assertEqual(self.links_made(), links + 1, self.pa.tail())


if __name__ == "__main__":
    sys.exit(kit.runner.main())
