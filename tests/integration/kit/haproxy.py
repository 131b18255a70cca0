"""A real TCP load balancer for the tests: HAProxy (Debian 12's haproxy, 2.6) in front of one
backend server, sending the PROXY protocol header on every connection it makes to that server.

    lb = Haproxy(procs, backend=pb.public_addr, host="127.0.0.33").start()    # a free port unless given
    lb.addr                                   # ("127.0.0.33", 2xxxx): where peers connect
    lb.connections(since=mark)                # [Connection(client, frontend, source, server)] from its log
    lb.stop()

What it runs: `haproxy -db -f CONFIG` in the foreground (no daemon, no master-worker), as the
test's own user (no `user`/`group`/`chroot`/`daemon` in `global`). The config, written into its own
dir, is `mode tcp`, one frontend bound on host:port, one backend with one server line:

    server s2s <backend ip>:<port> send-proxy-v2 source <source>      # or send-proxy (v1)

`source` makes every connection to the backend come from a known loopback address (the one the
backend lists in proxy_trusted). Timeouts: connect 5s, client and server 60s; `maxconn` small;
no stats, no health checks (so no connection reaches the backend unless a peer made one). Its log
goes to stdout (`log stdout format raw`, i.e. its own log file), one line per connection as soon as
the backend connection is up (`option logasap`), naming the client, frontend, balancer-side source
and server address:port. Readiness is seen in /proc (its listening socket), not by connecting, so
starting it sends nothing to the backend. The config is checked with `haproxy -c` first.
Stopped by PID (SIGTERM to its process group) like every kit process. Loopback addresses only.
"""
import collections
import os
import re
import shutil

from .procs import KitError, LogWatch, check_loopback, free_port, listening_sockets, run, wait_until

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
DEFAULT_HOST = "127.0.0.33"
DEFAULT_SOURCE = "127.0.0.40"

Connection = collections.namedtuple("Connection", "client frontend source server")

# One log line per connection (log-format below): "conn client=IP:PORT frontend=IP:PORT ..."
_CONN_RE = re.compile(r"(?m)^conn client=(\S+) frontend=(\S+) source=(\S+) server=(\S+)$")


def split_addr(text):
    """("127.0.0.1", 40000) from "127.0.0.1:40000" (HAProxy's IPv4 form in its log)."""
    ip, _, port = text.rpartition(":")
    return ip, int(port)


class Haproxy(LogWatch):
    """HAProxy on host:port (a free port unless given) forwarding every TCP connection to `backend`
    (ip, port) from `source`, with a PROXY header of version `proxy_version` (2: send-proxy-v2,
    1: send-proxy)."""

    def __init__(self, procs, *, backend, host=DEFAULT_HOST, port=None, source=DEFAULT_SOURCE,
                 proxy_version=2, name="haproxy", maxconn=64):
        if proxy_version not in (1, 2):
            raise ValueError("proxy_version is 1 (send-proxy) or 2 (send-proxy-v2)")
        self.procs = procs
        bip, bport = backend
        self.backend = (check_loopback(bip), int(bport))
        self.host = check_loopback(host)
        self.port = port
        self.source = check_loopback(source)
        self.proxy_version = proxy_version
        self.name = name
        self.maxconn = int(maxconn)
        self.dir = procs.mkdir(name)
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        self.log_path = os.path.join(self.dir, "haproxy.log")
        self.proc = None

    @property
    def addr(self):
        return (self.host, self.port)

    def config_text(self):
        bip, bport = self.backend
        send = "send-proxy-v2" if self.proxy_version == 2 else "send-proxy"
        return "\n".join([
            "# written by tests/integration/kit/haproxy.py",
            "global",
            f"    maxconn {self.maxconn}",
            "    nbthread 1",
            "    log stdout format raw local0 info",
            "",
            "defaults",
            "    mode tcp",
            "    log global",
            "    option logasap",
            '    log-format "conn client=%ci:%cp frontend=%fi:%fp source=%bi:%bp server=%si:%sp"',
            "    timeout connect 5s",
            "    timeout client 60s",
            "    timeout server 60s",
            "",
            "frontend fe",
            f"    bind {self.host}:{self.port}",
            "    default_backend be",
            "",
            "backend be",
            f"    server s2s {bip}:{bport} {send} source {self.source}",
            "",
        ])

    def _write_conf(self):
        with open(self.conf, "w") as f:
            f.write(self.config_text())

    def argv(self):
        return [HAPROXY, "-db", "-f", self.conf]

    def check_config(self, timeout=10.0):
        """`haproxy -c` of the current config (KitError with its output if rejected)."""
        self._write_conf()
        return run([HAPROXY, "-c", "-q", "-f", self.conf], timeout=timeout, what=f"{self.name} -c")

    def _listening(self):
        return any(proto.startswith("tcp") and ip == self.host and port == self.port
                   for proto, ip, port, _ in listening_sockets([self.proc.pid]))

    def start(self, timeout=10.0):
        if not os.path.exists(HAPROXY):
            raise KitError(f"{HAPROXY} not found: install haproxy (make deps)")
        fixed = self.port is not None
        for attempt in range(3):
            if not fixed:
                self.port = free_port(self.host)
            self.check_config()
            self.proc = self.procs.start(self.name, self.argv(), cwd=self.dir, log_path=self.log_path,
                                         extra_logs={"config": self.conf})
            try:
                wait_until(self._listening, timeout, f"{self.name} listening on {self.host}:{self.port}",
                           proc=self.proc)
                return self
            except KitError:
                if fixed or self.proc.alive() or attempt == 2:
                    raise
                self.proc.stop()     # most likely the port was taken meanwhile: try another
        return self

    def stop(self):
        if self.proc:
            return self.proc.stop()

    def alive(self):
        return bool(self.proc) and self.proc.alive()

    def connections(self, since=0):
        """The connections HAProxy logged after `since` (a log_mark()), oldest first, as
        Connection(client, frontend, source, server), each an (ip, port)."""
        return [Connection(*(split_addr(a) for a in m.groups())) for m in _CONN_RE.finditer(self.log_text(since))]

    def wait_connection(self, timeout=10.0, since=0):
        """Until HAProxy has logged a connection after `since`; returns the first one."""
        found = wait_until(lambda: self.connections(since), timeout, f"a connection through {self.name}",
                           proc=self.proc)
        return found[0]

    def tail(self, lines=40):
        return self.proc.tail(lines) if self.proc else ""
