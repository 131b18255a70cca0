"""The integration-test kit: real peers on loopback for s2s-proxy's end-to-end tests.

Modules: procs (processes, ports, deadlines, cleanup), ca (throwaway CAs with openssl), dns
(dnsmasq + a tiny DNS client), dnssec (nsd with zones signed at test time behind a validating
unbound), prosody, ejabberd, jabberd2 (real servers from Debian), haproxy (a real load
balancer sending the PROXY protocol), clients (slixmpp clients in a subprocess), peer (a raw
scripted XMPP peer), relay (a TCP relay the test can pause to cut a
connection without FIN), proxy (s2s-proxy, the binary under test), runner (unittest with log dumps and
the `integration-summary:` line), suite (the module fixture and helpers the test files share), pair
(two proxied Prosody servers, each behind its own s2s-proxy: the fixture most files start from). See
tests/integration/README.md.

Run everything with /usr/bin/python3 (Debian's, which has python3-slixmpp) as root.
"""
from . import ca, clients, dns, dnssec, ejabberd, haproxy, jabberd2, pair, peer, procs, prosody, proxy, relay, runner, suite
from .ca import CA, self_signed
from .clients import Account
from .dns import Dnsmasq, Zone
from .ejabberd import Ejabberd
from .haproxy import Haproxy
from .jabberd2 import Jabberd2
from .peer import RawPeer, stream_header
from .procs import KitError, ProcessDied, Procs, Timeout, free_port, wait_port, wait_until
from .prosody import Prosody
from .proxy import S2SProxy
from .relay import Relay

__all__ = ["ca", "clients", "dns", "dnssec", "ejabberd", "haproxy", "jabberd2", "peer", "procs", "prosody", "proxy", "relay", "runner", "S2SProxy", "Relay",
           "CA", "self_signed", "Account", "Dnsmasq", "Zone", "Ejabberd", "Jabberd2", "Haproxy", "RawPeer", "stream_header",
           "KitError", "ProcessDied", "Procs", "Timeout", "free_port", "wait_port", "wait_until", "Prosody"]
