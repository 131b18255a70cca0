#!/usr/bin/python3
"""s2s-proxy behind a real TCP load balancer that sends the PROXY protocol: HAProxy 2.6 (Debian 12)
in front of proxy B's public listener, on loopback.

The setup is test_failover.py's pair, with HAProxy between proxy A and proxy B:

    alice -- Prosody A (127.0.0.2) == s2s-proxy A (127.0.0.12) ~~> HAProxy (127.0.0.33)
             ~~> [from 127.0.0.40, PROXY header first] s2s-proxy B (127.0.0.13) == Prosody B (127.0.0.3) -- bob

  Proxy B's [[listen.s2s]] has proxy_protocol = true and proxy_trusted = ["127.0.0.40/32"];
  HAProxy's server line has `source 127.0.0.40`, so all it sends to proxy B comes from there.
  Proxy A reaches b.test at HAProxy's address (s2s.outgoing.address); proxy B reaches a.test at
  proxy A directly (dialback verification, its own outgoing link).

  Plain     no TLS between the proxies, HAProxy with `send-proxy-v2`.
  StartTls  STARTTLS with the test CA's certificates both ways (SASL EXTERNAL, bidi), HAProxy
            with `send-proxy` (v1): the header comes before the first TLS byte.

  In both: (1) alice -> bob and bob -> alice are delivered through the balancer; proxy B logs and
  counts the client the header names, which is the address proxy A's connection to HAProxy came
  from (HAProxy's log line and proxy A's own socket in /proc agree), with 127.0.0.40 beside it as
  the sender. (2) A connection straight to proxy B from 127.0.0.41 (outside proxy_trusted) that
  starts with a PROXY v1 header is closed without a byte of answer and counted as refused; proxy B
  goes on serving. (3) The same sender without a header is served as a direct stream.

Run as root with Debian's python:
    cd tests/integration && BUILD=build /usr/bin/python3 test_balancer.py [Class[.test] ...]
The binary is $S2S_PROXY_BIN, else $BUILD/s2s-proxy, else build/e2e/s2s-proxy, else build/s2s-proxy.
Ends with `integration-summary: N passed, N failed`.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
import test_failover as base  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import token  # noqa: E402
from test_failover import Pair  # noqa: E402

setUpModule = base.setUpModule
tearDownModule = base.tearDownModule

IP_BALANCER = "127.0.0.33"          # HAProxy's frontend
IP_BALANCER_SOURCE = "127.0.0.40"   # where HAProxy's connections to proxy B come from
IP_STRANGER = "127.0.0.41"          # a sender outside proxy_trusted
IP_CLAIMED = "127.0.0.99"           # only text in the stranger's header

T_MSG = 15
ACCEPTED = 's2s_proxy_proxy_protocol_headers_total{result="accepted",reason="proxied"}'
REFUSED_UNTRUSTED = 's2s_proxy_proxy_protocol_headers_total{result="refused",reason="untrusted_sender"}'


def fmt(addr):
    """"127.0.0.1:40000" (s2s-proxy's and HAProxy's form of an IPv4 address and port)."""
    return f"{addr[0]}:{addr[1]}"


class BalancerChecks:
    """The tests; a subclass says how the proxies talk (configure_tls) and which header HAProxy sends."""

    proxy_version = 2
    tls = False

    @classmethod
    def configure(cls):
        cls.lb = kit.Haproxy(cls.procs, backend=cls.pb.public_addr, host=IP_BALANCER, source=IP_BALANCER_SOURCE,
                             proxy_version=cls.proxy_version).start()
        cls.pb.set("listen.s2s.0.proxy_protocol", True)
        cls.pb.set("listen.s2s.0.proxy_trusted", [f"{IP_BALANCER_SOURCE}/32"])
        cls.pa.route("b.test", *cls.lb.addr)
        cls.pb.route("a.test", *cls.pa.public_addr)
        cls.configure_tls()

    @classmethod
    def configure_tls(cls):
        cls.pa.plain()
        cls.pb.plain()

    def proxied_streams(self, since):
        """[(conn id, client, sender)] from proxy B's proxy-header lines after `since`."""
        rx = (rf"\[(c\d+)[^\]]*\] proxy-header: PROXY v{self.proxy_version} header for client (\S+), "
              rf"from ({re.escape(IP_BALANCER_SOURCE)}:\d+)$")
        return re.findall(rx, self.pb.log_text(since), re.M)

    def test_1_messages_both_ways_through_the_balancer(self):
        self.assertTrue(self.lb.alive())
        marks = {p: p.log_mark() for p in (self.pa, self.pb, self.lb)}
        before = self.pb.metrics().get(ACCEPTED, 0)
        self.assertDelivered(clients.send_message(self.alice, self.bob, timeout=T_MSG), self.alice, self.bob)
        self.assertDelivered(clients.send_message(self.bob, self.alice, timeout=T_MSG), self.bob, self.alice)

        # HAProxy's side: proxy A came in on the frontend, HAProxy went on from 127.0.0.40 to proxy B
        conns = self.lb.connections(since=marks[self.lb])
        self.assertGreaterEqual(len(conns), 1, self.lb.log_text())
        for c in conns:
            self.assertEqual(c.frontend, self.lb.addr, c)
            self.assertEqual(c.server, self.pb.public_addr, c)
            self.assertEqual(c.source[0], IP_BALANCER_SOURCE, c)
            self.assertNotEqual(c.client[0], IP_BALANCER_SOURCE, c)
        # proxy B's side: every one of them arrived with a header naming HAProxy's client, sent
        # from HAProxy's source address; the accept line shows the balancer, then the header the client
        pb_log = self.pb.log_text(marks[self.pb])
        streams = self.proxied_streams(marks[self.pb])
        self.assertEqual(sorted((client, sender) for _, client, sender in streams),
                         sorted((fmt(c.client), fmt(c.source)) for c in conns), pb_log)
        for cid, client, sender in streams:
            self.assertRegex(pb_log, rf"\[{cid}[^\]]*\] accepted: listen\.s2s\.0 from {re.escape(sender)} "
                                     r"\(in proxy_trusted: a PROXY header must come first\)")
        self.assertNotRegex(pb_log, r"\] proxy-refused: ")
        self.assertEqual(self.pb.metrics()[ACCEPTED] - before, len(conns))
        # ...and that client is proxy A: its own socket to HAProxy's frontend has that address
        pa_links = {local for local, remote in kit.procs.established_connections(self.pa.proc.pid) if remote == self.lb.addr}
        self.assertTrue(pa_links & {c.client for c in conns},
                        f"proxy A's connections to the balancer: {pa_links}; HAProxy's clients: {conns}")
        # the stream that came through the balancer is the one a.test authenticated on
        cid = streams[0][0]
        self.assertRegex(pb_log, rf"(?m)\[{cid} b\.test->a\.test\] authenticated: "
                                 rf"{'SASL EXTERNAL' if self.tls else 'dialback'}$")
        self.assertRegex(pb_log, rf"\[{cid} b\.test->a\.test\] from-remote: message \S+ \S+ -> bob@b\.test ")
        if self.tls:
            # the header came first, then TLS on the same connection
            at_header = re.search(rf"\[{cid}[^\]]*\] proxy-header: ", pb_log).start()
            m = re.search(rf"\[{cid} [^\]]*\] tls: TLSv1\.[23] \S+, peer certificate: valid", pb_log)
            self.assertIsNotNone(m, pb_log)
            self.assertLess(at_header, m.start())

    def test_2_header_from_outside_proxy_trusted_is_refused(self):
        mark = self.pb.log_mark()
        before = self.pb.metrics().get(REFUSED_UNTRUSTED, 0)
        with kit.RawPeer(self.pb.ip, self.pb.s2s_port, source=IP_STRANGER) as p:
            p.send(f"PROXY TCP4 {IP_CLAIMED} {self.pb.ip} 40000 {self.pb.s2s_port}\r\n" +
                   kit.stream_header(to="b.test", from_="a.test"))
            p.expect_closed(timeout=5)
            self.assertEqual(p.received, "", "a PROXY header from outside proxy_trusted got an answer")
        self.pb.wait_log(r"proxy-refused: ", 5, since=mark)
        log = self.pb.log_text(mark)
        self.assertRegex(log, rf"accepted: listen\.s2s\.0 from {re.escape(IP_STRANGER)}:\d+ "
                              r"\(outside proxy_trusted: no PROXY header allowed\)")
        self.assertRegex(log, rf"warning \[c\d+[^\]]*\] proxy-refused: a PROXY header from a sender outside "
                              rf"proxy_trusted, from {re.escape(IP_STRANGER)}:\d+: connection closed")
        self.assertNotIn(IP_CLAIMED, log)
        self.assertEqual(self.pb.metrics()[REFUSED_UNTRUSTED] - before, 1)
        # proxy B goes on serving, through the balancer: the message comes in on a stream whose
        # PROXY header HAProxy sent
        self.assertTrue(self.pb.alive())
        mark = self.pb.log_mark()
        r = clients.send_message(self.alice, self.bob, body=token("after-refusal"), timeout=T_MSG)
        self.assertDelivered(r, self.alice, self.bob)
        came_in = re.findall(rf"\[(c\d+) b\.test->a\.test\] from-remote: message {re.escape(r.data['sent']['id'])} ",
                             self.pb.log_text(mark))
        self.assertEqual(len(came_in), 1, self.pb.log_text(mark))
        self.assertIn(came_in[0], [cid for cid, _, _ in self.proxied_streams(0)], self.pb.log_text())

    def test_3_direct_connection_from_outside_proxy_trusted_is_served(self):
        mark = self.pb.log_mark()
        with kit.RawPeer(self.pb.ip, self.pb.s2s_port, source=IP_STRANGER) as p:
            p.open_stream(to="b.test", from_="c.test")
            self.assertIn("<stream:stream", p.received)
            self.assertIn("<stream:features", p.received)
        log = self.pb.log_text(mark)
        self.assertRegex(log, rf"proxy-direct: no PROXY header from a sender outside proxy_trusted: served as a "
                              rf"direct connection \({re.escape(IP_STRANGER)}:\d+\)")


class Plain(BalancerChecks, Pair):
    """No TLS between the proxies; HAProxy sends PROXY v2 (send-proxy-v2)."""


class StartTls(BalancerChecks, Pair):
    """STARTTLS with certificates both ways (SASL EXTERNAL); HAProxy sends PROXY v1 (send-proxy)."""

    proxy_version = 1
    tls = True

    @classmethod
    def configure_tls(cls):
        cls.pa.tls(cls.ca, mode="starttls", cert=cls.certs["a.test"], client_cert=True)
        cls.pb.tls(cls.ca, mode="starttls", cert=cls.certs["b.test"], client_cert=True)


if __name__ == "__main__":
    sys.exit(kit.runner.main())
