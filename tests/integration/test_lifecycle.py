#!/usr/bin/python3
"""s2s-proxy's process lifecycle with real peers on loopback: SIGTERM drains what is queued, SIGHUP
reloads the config (a new certificate, a policy) without dropping links.

The setup is test_failover.py's: a.test and b.test are each a real Prosody 0.12 in "proxied" mode
behind its own s2s-proxy, with real slixmpp clients alice@a.test and bob@b.test:

    alice -- Prosody A (127.0.0.2) == s2s-proxy A (127.0.0.12) ~~~~ s2s-proxy B (127.0.0.13) == Prosody B (127.0.0.3) -- bob

  Drain   proxy A finds b.test in a real dnsmasq: SRV priority 10 stall.b.test (a blackhole:
          connects hang until the test releases it, then are refused), priority 20 proxy B.
          Proxies authenticate with certificates (SASL EXTERNAL), so proxy B never needs to call
          back to proxy A's public listener, which a drain closes.
          (1) alice's messages wait in proxy A's queue for b.test; SIGTERM; while it drains the
              admin endpoint says not ready and the public port is closed; the blackhole is
              released, the messages go out, and the process exits well before
              general.shutdown_timeout.
          (2) the same with the blackhole kept: after general.shutdown_timeout the message comes
              back to alice with a text saying that s2s-proxy is shutting down, and the process
              exits within the documented bound.
  Reload  routes by s2s.outgoing.address; proxy B's listener certificate is a file the test
          replaces. (1) SIGHUP: a new connection gets the new certificate, while a TLS connection
          made before and the A->B link (same connection) keep working. (2) A config with an error
          is refused, the running one stays. (3) A denied host and a new dialback secret: the
          policy applies at once, the secret is reported as waiting for a restart, never shown.

Run as root with Debian's python:
    /usr/bin/python3 tests/integration/test_lifecycle.py [Class[.test] ...]
"""
import os
import re
import shutil
import signal
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
import test_failover as base  # noqa: E402
from kit import clients  # noqa: E402
from kit.suite import Background, token  # noqa: E402
from test_failover import Pair  # noqa: E402

setUpModule = base.setUpModule
tearDownModule = base.tearDownModule

FROM_LOCAL = r"\[c\d+ a\.test->b\.test\] from-local: message \S+ \S+ -> bob@b\.test "


class Drain(Pair):
    @classmethod
    def configure(cls):
        base.stall_then_proxy_b(cls)
        cls.pa.tls(cls.ca, mode="starttls", cert=cls.certs["a.test"], client_cert=True)
        cls.pb.tls(cls.ca, mode="starttls", cert=cls.certs["b.test"], client_cert=True)
        cls.pa.set("s2s.outgoing.connection_timeout", 20_000)   # the stalled attempt outlasts the test's wait

    @classmethod
    def dns_started(cls):
        base.use_test_dns(cls)

    def restart_a(self, shutdown_timeout):
        self.pa.set("general.shutdown_timeout", shutdown_timeout)
        if self.pa.alive():
            self.pa.stop()
        self.pa.start()

    def queue_for_bob(self, mark, bodies, linger):
        """alice sends `bodies` to bob while proxy A's attempt hangs on stall.b.test (the hole must
        be open); returns the client job once proxy A holds them all."""
        job = Background(clients.send, self.alice, "bob@b.test", bodies, linger=linger, timeout=40)
        self.pa.wait_log(r"\[c\d+ a\.test->b\.test\] connecting: to stall\.b\.test", 10, since=mark)
        kit.wait_until(lambda: len(re.findall(FROM_LOCAL, self.pa.log_text(mark))) >= len(bodies), 10,
                       f"{len(bodies)} messages for bob at proxy A", proc=self.pa.proc)
        return job

    def test_1_sigterm_lets_queued_stanzas_go_out(self):
        self.restart_a(10_000)
        mark = self.pa.log_mark()
        bodies = [token("drain") for _ in range(2)]
        self.hole.open()
        try:
            job = self.queue_for_bob(mark, bodies, linger=8.0)
            t0 = time.monotonic()
            self.pa.signal(signal.SIGTERM)
            self.pa.wait_log(r"draining: SIGTERM: public listeners closed; up to 10000 ms for 2 queued stanzas",
                             5, since=mark)
            # still answering probes, not ready; nothing new accepted from the network
            self.assertEqual(self.pa.admin_get("/healthz")[0], 200)
            self.assertEqual(self.pa.admin_get("/readyz"), (503, "not ready: shutting down\n"))
            self.assertEqual(self.pa.metrics()["s2s_proxy_draining"], 1)
            with self.assertRaises(OSError):
                socket.create_connection(self.pa.public_addr, timeout=2).close()
            time.sleep(0.5)
            self.assertTrue(self.pa.alive(), "proxy A exited with stanzas queued and time left")
        finally:
            self.hole.close()       # the stalled target now refuses: proxy A goes on to proxy B
        rc = self.pa.wait_exit(15)
        elapsed = time.monotonic() - t0
        log = self.pa.log_text(mark)
        self.assertEqual(rc, 0, log[-3000:])
        self.assertLess(elapsed, 8, "the drain should end once the queue is empty, not at the deadline")
        r = job.join_result(40)
        self.assertTrue(r.ok, f"a message was bounced during the drain: {r.describe()}")
        r = clients.collect(self.bob, bodies, linger=1.0, timeout=15)
        self.assertEqual(r.data["counts"], {b: 1 for b in bodies}, r.describe())
        self.assertEqual(len(re.findall(r"\] to-remote: message \S+ \S+ -> bob@b\.test \(s2s-proxy -> b\.test, "
                                        r"was queued\)", log)), 2, log)
        self.assertRegex(log, r"drained: nothing left queued")
        self.assertNotRegex(log, r"\] bounced: |drain-timeout")

    def test_2_sigterm_bounces_what_cannot_go_out_in_time(self):
        self.restart_a(2000)
        mark = self.pa.log_mark()
        body = token("drain-late")
        self.hole.open()
        try:
            job = self.queue_for_bob(mark, [body], linger=15.0)
            t0 = time.monotonic()
            self.pa.signal(signal.SIGTERM)
            rc = self.pa.wait_exit(20)
            elapsed = time.monotonic() - t0
        finally:
            self.hole.close()
        log = self.pa.log_text(mark)
        self.assertEqual(rc, 0, log[-3000:])
        self.assertGreater(elapsed, 1.8, "proxy A did not wait for general.shutdown_timeout")
        # 2 s drain + 3 s for bounces + 5 s flush + 1 s margin is the bound; it should be far less
        self.assertLess(elapsed, 2 + 3 + 5 + 1, log[-3000:])
        self.assertRegex(log, r"drain-timeout: general\.shutdown_timeout passed with 1 stanza for remote domains "
                              r"still queued: bouncing")
        r = job.join_result(40)
        bounced = r.data.get("bounced") or []
        self.assertEqual(len(bounced), 1, f"alice should get her message back: {r.describe()}\n{log[-3000:]}")
        self.assertIn("s2s-proxy is shutting down", bounced[0]["error"]["text"] or "", r.describe())
        self.assertRegex(log, rf"bounced: message {re.escape(r.data['sent'][0]['id'])}: ")


class Reload(Pair):
    @classmethod
    def configure(cls):
        cls.pa.route("b.test", *cls.pb.public_addr)
        cls.pb.route("a.test", *cls.pa.public_addr)
        cls.pa.tls(cls.ca, mode="starttls", cert=cls.certs["a.test"], client_cert=True)
        cls.pb.tls(cls.ca, mode="starttls", cert=cls.certs["b.test"], client_cert=True)
        # proxy B's listener reads its certificate from files the test replaces
        cls.first, cls.second = cls.certs["b.test"], cls.ca.issue("b.test")
        cls.cert_path = os.path.join(cls.pb.dir, "listener.crt")
        cls.key_path = os.path.join(cls.pb.dir, "listener.key")
        cls.install(cls.first)
        cls.pb.listener_tls.update(certfile=cls.cert_path, keyfile=cls.key_path)

    @classmethod
    def install(cls, issued):
        shutil.copyfile(issued.chain, cls.cert_path)
        shutil.copyfile(issued.key, cls.key_path)

    @staticmethod
    def der(issued):
        with open(issued.cert) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    def tls_peer(self):
        """A STARTTLS connection to proxy B's public listener, as a server for c.test would open."""
        p = kit.RawPeer(self.pb.ip, self.pb.s2s_port)
        p.open_stream(to="b.test", from_="c.test")
        p.starttls(server_hostname="b.test", ca=self.ca.cert)
        return p

    def sighup_b(self, expect):
        mark = self.pb.log_mark()
        self.pb.signal(signal.SIGHUP)
        self.pb.wait_log(expect, 10, since=mark)
        return self.pb.log_text(mark)

    def link_ids(self, since):
        return re.findall(r"\[(c\d+) a\.test->b\.test\] to-remote: message ", self.pa.log_text(since))

    def test_1_new_certificate_for_new_connections_old_ones_keep_working(self):
        mark = self.pa.log_mark()
        self.assertDelivered(clients.send_message(self.alice, self.bob, timeout=10), self.alice, self.bob)
        before = self.link_ids(mark)
        self.assertEqual(len(set(before)), 1, self.pa.log_text(mark))
        old = self.tls_peer()
        try:
            self.assertEqual(old.peer_cert, self.der(self.first))
            self.install(self.second)
            log = self.sighup_b(r"reloaded: SIGHUP: certificates and keys read again; 0 changes applied; "
                                r"0 changes wait for a restart")
            self.assertNotRegex(log, r"\] closed: ", "a reload must not drop links")
            new = self.tls_peer()
            new.close()
            self.assertEqual(new.peer_cert, self.der(self.second), "a new connection still gets the old certificate")
            self.assertNotEqual(self.der(self.first), self.der(self.second))
            # the connection made before the reload goes on: a new stream over its TLS session
            old.open_stream(to="b.test", from_="c.test")
            self.assertIn("<stream:features", old.received)
        finally:
            old.close()
        # ...and so does the A->B link: the next message takes the same connection
        mark2 = self.pa.log_mark()
        self.assertDelivered(clients.send_message(self.alice, self.bob, timeout=10), self.alice, self.bob)
        self.assertEqual(self.link_ids(mark2), before[:1], self.pa.log_text(mark2))
        self.assertNotRegex(self.pa.log_text(mark2), r"\] connecting: ")
        self.assertEqual(self.pb.metrics()['s2s_proxy_config_reloads_total{result="applied"}'], 1)

    def test_2_config_with_errors_is_refused(self):
        text = self.pb.config_text().replace('use_starttls = "optional"', 'use_starttls = "sometimes"')
        self.assertIn("sometimes", text)
        line = text[:text.index("sometimes")].count("\n") + 1
        with open(self.pb.config_path, "w") as f:
            f.write(text)
        try:
            log = self.sighup_b(r"reload-refused: SIGHUP: 1 error in the config; the running config stays")
        finally:
            self.pb.write_config()
        self.assertIn(f"{self.pb.config_path}:{line}: s2s.use_starttls: ", log)
        self.assertNotRegex(log, r"reloaded: ")
        self.assertDelivered(clients.send_message(self.alice, self.bob, timeout=10), self.alice, self.bob)
        self.assertEqual(self.pb.metrics()['s2s_proxy_config_reloads_total{result="refused"}'], 1)

    def test_3_policy_applies_at_once_secret_waits_for_restart(self):
        self.pb.deny("a.test")
        self.pb.shared = "a-new-dialback-secret-for-b"
        self.pb.write_config()
        log = self.sighup_b(r"reloaded: SIGHUP: certificates and keys read again; 2 changes applied: "
                            r"s2s\.host_policy\.0\.host, s2s\.host_policy\.0\.policy; 1 change waits for a restart")
        self.assertRegex(log, r"s2s\.shared changed; it takes effect only after a restart")
        self.assertNotIn("a-new-dialback-secret", log)
        self.assertNotIn(self.pb.shared, self.pb.log_text())
        # the policy: what a.test sends now is refused, over the link it already has
        mark = self.pb.log_mark()
        body = token("after-deny")
        clients.send(self.alice, "bob@b.test", [body], linger=2.0, timeout=15)
        self.pb.wait_log(r"a\.test is denied by s2s\.host_policy", 10, since=mark)
        r = clients.collect(self.bob, [body], linger=0.5, timeout=6)
        self.assertEqual(r.data.get("counts", {}).get(body, 0), 0, f"a denied domain's message arrived: {r.describe()}")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"integration-summary: {result.testsRun - bad} passed, {bad} failed")
