"""A real DNS server for the tests: dnsmasq (dnsmasq-base) on 127.0.0.53 on a free high port,
answering only from the records a test describes, never forwarding anywhere.

    zone = (Zone()
            .srv("_xmpp-server._tcp.b.test", "host.b.test", 5269, prio=10, weight=0)
            .a("host.b.test", "127.0.0.3")
            .absent("_xmpps-server._tcp.b.test"))      # SRV with the "." target
    dns = Dnsmasq(procs, zone).start()
    dns.host, dns.port, dns.unbound_forward            # "127.0.0.53", 2xxxx, "127.0.0.53@2xxxx"
    query("_xmpp-server._tcp.b.test", "SRV", dns.server)   # -> Answer(rcode, records)

Flags (verified, see DESIGN.md): --keep-in-foreground --no-resolv --no-hosts --bind-interfaces
--listen-address=127.0.0.53 --port=P --pid-file= --cache-size=0, `local=/test/` so names under .test
that have no record get NXDOMAIN (not REFUSED), and --user=root when we are root (dnsmasq-base has no
`dnsmasq` user). --conf-file points at our own file, so /etc/dnsmasq.conf is never read.
"""
import ipaddress
import os
import random
import shutil
import socket
import struct
import time

from .procs import KitError, Timeout, check_loopback, free_port, is_root

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DEFAULT_HOST = "127.0.0.53"


class Zone:
    """A description of the records dnsmasq serves; every method returns self (chainable)."""

    def __init__(self, local=("test",)):
        self.local = list(local)        # domains answered only locally (NXDOMAIN when no record)
        self._srv = []                  # (name, target|None, port, prio, weight)
        self._hosts = {}                # name -> [addresses] (A and AAAA, kept in order)
        self._address = []              # (domain, address): domain and every name under it
        self._cname = []
        self._txt = []

    def srv(self, name, target, port, prio=10, weight=0):
        self._srv.append((name, target, int(port), int(prio), int(weight)))
        return self

    def absent(self, name):
        """SRV with the "." target: the service is decidedly not available (RFC 2782)."""
        self._srv.append((name, None, 0, 0, 0))
        return self

    def a(self, name, address):
        ipaddress.IPv4Address(address)
        check_loopback(address)
        self._hosts.setdefault(name, []).append(address)
        return self

    def aaaa(self, name, address):
        ipaddress.IPv6Address(address)
        check_loopback(address)
        self._hosts.setdefault(name, []).append(address)
        return self

    def address(self, domain, address):
        """`address=/domain/ip`: domain and all names under it resolve to `address`."""
        check_loopback(address)
        self._address.append((domain, address))
        return self

    def cname(self, name, target):
        self._cname.append((name, target))
        return self

    def txt(self, name, text):
        self._txt.append((name, text))
        return self

    def host_records(self):
        """{name: [addresses]} of the A/AAAA records (e.g. for a hosts file)."""
        return {name: list(addrs) for name, addrs in self._hosts.items()}

    def lines(self):
        """The dnsmasq config lines for these records."""
        out = [f"local=/{d}/" for d in self.local]
        for name, target, port, prio, weight in self._srv:
            out.append(f"srv-host={name}" if target is None else f"srv-host={name},{target},{port},{prio},{weight}")
        for name, addrs in self._hosts.items():
            v4 = [a for a in addrs if ":" not in a]
            v6 = [a for a in addrs if ":" in a]
            # host-record takes at most one address of each family per line
            for i in range(max(len(v4), len(v6))):
                parts = ([v4[i]] if i < len(v4) else []) + ([v6[i]] if i < len(v6) else [])
                out.append(f"host-record={name},{','.join(parts)}")
        for domain, addr in self._address:
            out.append(f"address=/{domain}/{addr}")
        for name, target in self._cname:
            out.append(f"cname={name},{target}")
        for name, text in self._txt:
            out.append(f'txt-record={name},"{text}"')
        return out


class Dnsmasq:
    """dnsmasq serving `zone` on host:port (a free port in the kit's range unless given)."""

    def __init__(self, procs, zone, *, host=DEFAULT_HOST, port=None, name="dnsmasq", log_queries=True):
        self.procs = procs
        self.zone = zone
        self.host = check_loopback(host)
        self.port = port
        self.name = name
        self.log_queries = log_queries
        self.dir = procs.mkdir(name)
        self.conf = os.path.join(self.dir, "dnsmasq.conf")
        self.proc = None

    @property
    def server(self):
        return (self.host, self.port)

    @property
    def unbound_forward(self):
        """The `forward` value for Prosody's `unbound` option."""
        return f"{self.host}@{self.port}"

    def _write_conf(self):
        with open(self.conf, "w") as f:
            f.write("# written by tests/integration/kit/dns.py\n")
            f.write("\n".join(self.zone.lines()) + "\n")

    def argv(self):
        args = [DNSMASQ, f"--conf-file={self.conf}", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                "--no-poll", "--bind-interfaces", f"--listen-address={self.host}", f"--port={self.port}",
                "--pid-file=", "--cache-size=0", "--log-facility=-"]
        if self.log_queries:
            args.append("--log-queries")
        if is_root():
            args.append("--user=root")
        return args

    def start(self, timeout=10.0):
        if not os.path.exists(DNSMASQ):
            raise KitError(f"{DNSMASQ} not found: install dnsmasq-base")
        fixed = self.port is not None
        for attempt in range(3):
            if not fixed:
                self.port = free_port(self.host, udp=True)
            self._write_conf()
            self.proc = self.procs.start(self.name, self.argv())
            try:
                self.wait_ready(timeout)
                return self
            except KitError:
                if fixed or self.proc.alive() or attempt == 2:
                    raise
                self.proc.stop()     # most likely the port was taken meanwhile: try another
        return self

    def wait_ready(self, timeout=10.0):
        """Until dnsmasq answers a query for a name under its first local domain (any rcode)."""
        probe = f"kit-probe.{self.zone.local[0] if self.zone.local else 'test'}"
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if not self.proc.alive():
                from .procs import ProcessDied
                raise ProcessDied(f"{self.name} exited with {self.proc.returncode}\n{self.proc.tail()}")
            try:
                query(probe, "A", self.server, timeout=0.3)
                return
            except (OSError, KitError) as e:
                last = e
            time.sleep(0.05)
        raise Timeout(f"{self.name} on {self.host}:{self.port} did not answer within {timeout}s ({last})\n"
                      f"{self.proc.tail()}")

    def restart(self, zone=None):
        """Stop, optionally replace the records, start again on the same port."""
        if zone is not None:
            self.zone = zone
        if self.proc:
            self.proc.stop()
        self._write_conf()
        self.proc = self.procs.start(self.name, self.argv())
        self.wait_ready()
        return self

    def stop(self):
        if self.proc:
            self.proc.stop()


# --- a small DNS client (stdlib only), for checks ----------------------------------------------

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "TXT": 16, "AAAA": 28, "SRV": 33}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class Answer:
    def __init__(self, rcode, records):
        self.rcode = rcode          # "NOERROR", "NXDOMAIN", ...
        self.records = records      # A/AAAA: "127.0.0.3"; SRV: (prio, weight, port, target); other: bytes

    def __repr__(self):
        return f"<Answer {self.rcode} {self.records}>"


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\0"


def _read_name(msg, off):
    labels, jumped, end = [], False, None
    for _ in range(128):
        n = msg[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0 == 0xC0:
            ptr = ((n & 0x3F) << 8) | msg[off + 1]
            if not jumped:
                end = off + 2
            jumped = True
            off = ptr
            continue
        labels.append(msg[off + 1: off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    return ".".join(labels) or ".", (end if jumped else off)


def query(name, qtype, server, timeout=2.0):
    """One UDP query of `name`/`qtype` ("A", "AAAA", "SRV", ...) to `server` (host, port), loopback
    only. Returns an Answer; raises OSError/socket.timeout when nothing answers."""
    host, port = server
    check_loopback(host)
    qid = random.randrange(65536)
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + _encode_name(name) + \
        struct.pack(">HH", QTYPES[qtype], 1)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        while True:
            msg, _ = s.recvfrom(4096)
            if len(msg) >= 12 and struct.unpack(">H", msg[:2])[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", msg[:12])
    off = 12
    for _ in range(qd):
        _, off = _read_name(msg, off)
        off += 4
    records = []
    for _ in range(an):
        _, off = _read_name(msg, off)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        if rtype == 1:
            records.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == 28:
            records.append(socket.inet_ntop(socket.AF_INET6, rdata))
        elif rtype == 33:
            prio, weight, port_ = struct.unpack(">HHH", rdata[:6])
            target, _ = _read_name(msg, off + 6)
            records.append((prio, weight, port_, target))
        elif rtype == 5:
            records.append(_read_name(msg, off)[0])
        else:
            records.append(rdata)
        off += rdlen
    return Answer(RCODES.get(flags & 0xF, str(flags & 0xF)), records)


def dig(name, qtype, server, timeout=5.0):
    """The same question asked with dig (bind9-dnsutils), if installed: its +short output lines,
    or None when dig is missing."""
    exe = shutil.which("dig")
    if not exe:
        return None
    from .procs import run
    host, port = server
    check_loopback(host)
    cp = run([exe, f"@{host}", "-p", str(port), "+short", "+time=1", "+tries=2", name, qtype], timeout=timeout)
    return [line for line in cp.stdout.splitlines() if line.strip()]
