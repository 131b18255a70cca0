#!/usr/bin/python3
"""The admin endpoint under a hostile client on loopback: idle connections cannot starve the
probes (/healthz must keep answering while a client holds many connections open without sending
a request), a request must arrive within a short deadline, and one source address holds only a
few connections at once.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli as cli  # noqa: E402
from test_cli import curl, parse_metrics  # noqa: E402


def idle_connections(port, count, source="127.0.0.1"):
    """`count` TCP connections to the admin port that never send anything."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def closed_by_server(sock, seconds):
    """Whether the server closes `sock` within `seconds` (anything it sends first is read)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except (socket.timeout, TimeoutError):
        return False
    except OSError:
        return True


class AdminUnderAttack(unittest.TestCase):
    """s2s-proxy with a minimal config and its admin endpoint up (the set-up of test_cli.Admin)."""

    setUp = cli.Admin.setUp
    tearDown = cli.Admin.tearDown

    def hold(self, count, source="127.0.0.1"):
        socks = idle_connections(self.ports["admin_port"], count, source)
        for s in socks:
            self.addCleanup(s.close)
        time.sleep(0.2)  # let the proxy accept them all before the probe comes
        return socks

    def test_idle_connections_from_one_address_do_not_starve_the_probe(self):
        self.hold(40)
        start = time.monotonic()
        self.assertEqual(curl(self.base + "/healthz"), (200, "ok\n"))
        self.assertLess(time.monotonic() - start, 1.5)

    def test_idle_connections_from_many_addresses_do_not_starve_the_probe(self):
        for i in range(2, 12):
            self.hold(4, source=f"127.0.0.{i}")
        self.assertEqual(curl(self.base + "/healthz"), (200, "ok\n"))

    def test_a_silent_connection_is_closed_within_the_request_deadline(self):
        [s] = self.hold(1)
        start = time.monotonic()
        self.assertTrue(closed_by_server(s, 6), "a connection that sends no request is kept open")
        self.assertLess(time.monotonic() - start, 3.5)

    def test_one_address_holds_a_few_connections_and_evictions_are_counted(self):
        socks = self.hold(20, source="127.0.0.5")
        evicted = [s for s in socks if closed_by_server(s, 0.05)]
        self.assertGreaterEqual(len(evicted), 12, "one address kept more than 8 idle connections")
        m = parse_metrics(curl(self.base + "/metrics")[1])
        self.assertGreaterEqual(m.get('s2s_proxy_admin_connections_dropped_total{reason="evicted"}', 0), 12)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
