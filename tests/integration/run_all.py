#!/usr/bin/python3
"""Every integration suite in one run with one summary line: the kit's smoke test (test_kit.py)
and the end-to-end tests of s2s-proxy (test_federation.py: Prosody behind s2s-proxy;
test_ejabberd.py: ejabberd behind s2s-proxy through its built-in DNS responder; test_jabberd2.py:
jabberd2 behind s2s-proxy, its s2s resolver pointed at that responder; test_failover.py:
a certificate for the wrong domain, a remote proxy found through DNS going away and coming back;
test_lifecycle.py: SIGTERM drain and SIGHUP reload; test_balancer.py: behind HAProxy sending the
PROXY protocol; test_hostile_dns.py: DNS that leads back into s2s-proxy; test_hostile_local.py: a
process on [[listen.local]] claiming one of our domains; test_hostile_tls.py: secure domains without
TLS or with the wrong certificate, a revoked peer resuming its TLS session after SIGHUP;
test_local_tls.py: a local Prosody that requires TLS on s2s, reached over local.tls and
connecting to [[listen.local]] with STARTTLS; test_rate_limits.py: [antispam] rate limits per remote
domain, measured over a burst; test_tls_semantics.py: outgoing STARTTLS by default, a
listener that refuses peers without a valid client certificate; test_chaos.py: faults injected
while messages flow, every message delivered exactly once or bounced with a reason; test_dane.py:
DANE for outgoing links against a zone signed at test time behind a validating unbound;
test_antispam.py: the [antispam] list files against a third, "spam" Prosody, edited while the
proxy runs; test_stream_limits.py: XEP-0478 between two proxies, a stanza over the remote's
max-bytes bounced with the reason and an idle link kept alive past the remote's idle timeout).

    /usr/bin/python3 tests/integration/run_all.py                          # everything
    /usr/bin/python3 tests/integration/run_all.py test_federation.A_Plain  # dotted names
    BUILD=build/e2e /usr/bin/python3 tests/integration/run_all.py          # which s2s-proxy binary

Last line: `integration-summary: N passed, N failed` (", N skipped" when some were). Run as root
with Debian's python (the one with python3-slixmpp).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import kit  # noqa: E402
import test_antispam  # noqa: E402
import test_balancer  # noqa: E402
import test_chaos  # noqa: E402
import test_dane  # noqa: E402
import test_dns_redirect  # noqa: E402
import test_ejabberd  # noqa: E402
import test_failover  # noqa: E402
import test_federation  # noqa: E402
import test_hostile_dns  # noqa: E402
import test_hostile_local  # noqa: E402
import test_hostile_tls  # noqa: E402
import test_jabberd2  # noqa: E402
import test_kit  # noqa: E402
import test_lifecycle  # noqa: E402
import test_local_tls  # noqa: E402
import test_rate_limits  # noqa: E402
import test_stream_limits  # noqa: E402
import test_tls_semantics  # noqa: E402

if __name__ == "__main__":
    sys.exit(kit.runner.main([test_kit, test_federation, test_ejabberd, test_jabberd2, test_failover, test_lifecycle,
                              test_balancer, test_hostile_dns, test_dns_redirect, test_hostile_local, test_hostile_tls,
                              test_local_tls, test_tls_semantics, test_dane, test_antispam, test_stream_limits,
                              test_rate_limits, test_chaos]))
