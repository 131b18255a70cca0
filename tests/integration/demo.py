#!/usr/bin/python3
"""make demo: two federated XMPP domains, each a real Prosody behind its own s2s-proxy, on loopback.

    alice@a.test -- Prosody A == s2s-proxy A ~~ STARTTLS, dialback ~~ s2s-proxy B == Prosody B -- bob@b.test

It makes a throwaway CA, starts everything (dnsmasq too, so that nothing is looked up outside),
sends a message from alice to bob and bob's reply with real XMPP clients, prints the path each took
(one line per hop, from the proxies' logs), and stops everything it started. Run as root with
Debian's python (Prosody runs as its own user); the binary is $BUILD/s2s-proxy.
"""
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kit  # noqa: E402
from kit import clients  # noqa: E402

HOPS = [  # (event in the proxy's debug log, how to say it)
    ("from-local", "{proxy}: took it from its local Prosody ({local} -> s2s-proxy, local link)"),
    ("to-remote", "{proxy}: sent it to {remote} over the public link (TLS, dialback)"),
    ("from-remote", "{proxy}: accepted it from {remote} (authenticated on that stream)"),
    ("to-local", "{proxy}: handed it to its local Prosody (s2s-proxy -> {local}, local link)"),
]


def path_of(message_id, proxies, since):
    """The hops of one message, in time order, from both proxies' logs."""
    hops = []
    for p in proxies:
        for line in p.log_text(since[p.name]).splitlines():
            m = re.match(r"(\S+) debug \[c\d+ (\S+)->(\S+)\] (\S+): \S+ " + re.escape(message_id) + r" ", line)
            if not m:
                continue
            stamp, local, remote, event = m.groups()
            for order, (name, text) in enumerate(HOPS):
                if event == name:
                    hops.append((order, stamp, text.format(proxy=f"s2s-proxy {p.name.upper()}", local=local, remote=remote)))
    return [text for _, _, text in sorted(hops)]  # a message passes the hops in HOPS order


def main():
    t0 = time.monotonic()
    with kit.Procs() as procs:
        print("== making a throwaway CA and certificates for a.test and b.test")
        ca = kit.CA(procs.mkdir("ca"))
        certs = {d: ca.issue(d) for d in ("a.test", "b.test")}
        dns = kit.Dnsmasq(procs, kit.Zone()).start()
        pa = kit.S2SProxy(procs, "a", ip="127.0.0.12", hosts=["a.test"])
        pb = kit.S2SProxy(procs, "b", ip="127.0.0.13", hosts=["b.test"])
        a = kit.Prosody(procs, "a", ip="127.0.0.2", dns=dns, ca=ca, mode="proxied", proxy=pa.local_addr)
        a.add_host("a.test", users={"alice": "alice-pw"}, cert=certs["a.test"])
        b = kit.Prosody(procs, "b", ip="127.0.0.3", dns=dns, ca=ca, mode="proxied", proxy=pb.local_addr)
        b.add_host("b.test", users={"bob": "bob-pw"}, cert=certs["b.test"])
        pa.local_server = (a.ip, a.s2s_port)
        pb.local_server = (b.ip, b.s2s_port)
        pa.route("b.test", *pb.public_addr)
        pb.route("a.test", *pa.public_addr)
        for p, domain in ((pa, "a.test"), (pb, "b.test")):
            p.tls(ca, mode="starttls", cert=certs[domain], client_cert=False)
        print("== starting Prosody A (a.test) and B (b.test), s2s-proxy A and B")
        with ThreadPoolExecutor(4) as ex:
            for f in [ex.submit(s.start) for s in (a, b, pa, pb)]:
                f.result()
        print(f"   s2s-proxy A: public {pa.public_addr[0]}:{pa.public_addr[1]}, local {pa.local_addr[0]}:{pa.local_addr[1]}")
        print(f"   s2s-proxy B: public {pb.public_addr[0]}:{pb.public_addr[1]}, local {pb.local_addr[0]}:{pb.local_addr[1]}")
        alice = clients.Account.on(a, "alice", "a.test")
        bob = clients.Account.on(b, "bob", "b.test")
        ok = True
        for sender, receiver, text in ((alice, bob, "Hello Bob, this is Alice."), (bob, alice, "Hi Alice! Bob here.")):
            since = {p.name: p.log_mark() for p in (pa, pb)}
            print(f"\n== {sender.jid} -> {receiver.jid}: {text!r}")
            r = clients.send_message(sender, receiver, body=text, timeout=15)
            if not r.ok:
                print("   NOT DELIVERED: " + r.describe())
                ok = False
                continue
            print(f"   delivered to {r.data['received'][0]['to']} in {r.data.get('latency_s', 0) * 1000:.0f} ms; its path:")
            time.sleep(0.2)  # the last log lines reach the files
            for i, hop in enumerate(path_of(r.data["sent"]["id"], (pa, pb), since), 1):
                print(f"   {i}. {hop}")
        print(f"\n== stopping everything ({time.monotonic() - t0:.1f} s in all)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
