"""s2s-proxy itself (the binary under test) for the integration tests.

    px = S2SProxy(procs, "a", ip="127.0.0.12", hosts=["a.test"])      # ports chosen now
    prosody_a = Prosody(procs, "a", ip="127.0.0.2", dns=dns, ca=ca, mode="proxied", proxy=px.local_addr)
    px.local_server = (prosody_a.ip, prosody_a.s2s_port)                # its loopback plain s2s port
    px.route("b.test", other_px.ip, other_px.s2s_port)                 # s2s.outgoing.address override
    px.tls(ca, mode="starttls", cert=ca.issue("a.test"), client_cert=True)
    px.deny("evil.test"); px.set("local.queue_timeout", 30_000)        # any other key, dotted
    px.start()                                                          # both listeners up, log lines seen
    px.wait_log(r"authenticated.*dialback"); px.log_text(since=mark); px.kill(); px.restart()

The config is a TOML file in the proxy's own dir (`px.config_path`), written at start() from the
settings above, so one object can be stopped, reconfigured and started again on the same ports.
The public listener [[listen.s2s]] is on `ip`:`s2s_port`; the local listener [[listen.local]] on
`local_ip` (default: the same address):`local_port`. The log (stdout+stderr, loglevel debug) is
`px.log_path`. The binary is $S2S_PROXY_BIN, else $BUILD/s2s-proxy (BUILD relative to the repo),
else build/e2e/s2s-proxy, else build/s2s-proxy.
"""
import json
import os
import re
import signal
import time

from .procs import KitError, LogWatch, check_loopback, free_port, run, tail_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def find_binary():
    env = os.environ.get("S2S_PROXY_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise KitError(f"S2S_PROXY_BIN={env} is not an executable")
        return env
    candidates = []
    if os.environ.get("BUILD"):
        b = os.environ["BUILD"]
        candidates.append(os.path.join(b if os.path.isabs(b) else os.path.join(REPO, b), "s2s-proxy"))
    candidates += [os.path.join(REPO, "build", "e2e", "s2s-proxy"), os.path.join(REPO, "build", "s2s-proxy")]
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    raise KitError("s2s-proxy binary not found (tried " + ", ".join(candidates) +
                   "); build it (make BUILD=build/e2e all) or set S2S_PROXY_BIN")


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)            # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML form for {v!r}")


class S2SProxy(LogWatch):
    def __init__(self, procs, name, *, ip, hosts, local_server=None, s2s_port=None, local_ip=None,
                 local_port=None, shared=None, loglevel="debug", binary=None):
        self.procs = procs
        self.name = name
        self.ip = check_loopback(ip)
        self.hosts = list(hosts)
        self.s2s_port = s2s_port or free_port(ip)
        self.local_ip = check_loopback(local_ip or ip)
        self.local_port = local_port or free_port(self.local_ip)
        self.admin_port = free_port(self.ip)         # [admin] listen: /healthz, /readyz, /metrics
        self.local_server = local_server            # (ip, port) of the local server's plain s2s port
        self.shared = shared or f"kit-dialback-secret-{name}"
        self.loglevel = loglevel
        self.binary = binary
        self.routes = {}                            # remote domain -> (ip, port)
        self.policy = {}                            # remote domain -> "allow" | "deny"
        self.settings = {}                          # dotted key -> value (anything else)
        self.listener_tls = {}                      # listen.s2s.0.tls.*
        self.outgoing_tls = {}                      # s2s.outgoing.tls.*
        self.use_starttls = "false"                 # None: not written (the proxy's own default)
        self.extra_listeners = []                   # more [[listen.s2s]] tables (dicts)
        self.dir = procs.mkdir(f"s2s-proxy-{name}")
        self.config_path = os.path.join(self.dir, "s2s-proxy.toml")
        self.log_path = os.path.join(self.dir, "s2s-proxy.log")
        self.proc = None

    # -- configuration ------------------------------------------------------------------------
    @property
    def local_addr(self):
        """(ip, port) of [[listen.local]]: what the local server's redirect points at."""
        return (self.local_ip, self.local_port)

    @property
    def public_addr(self):
        return (self.ip, self.s2s_port)

    def route(self, domain, ip, port):
        """s2s.outgoing.address override: reach `domain` at ip:port."""
        self.routes[domain] = (check_loopback(ip), int(port))
        return self

    def deny(self, domain):
        self.policy[domain] = "deny"
        return self

    def set(self, key, value):
        """Any other option by its dotted key (as on the command line), e.g. "local.queue_timeout"."""
        self.settings[key] = value
        return self

    def plain(self):
        """No TLS between proxies: s2s.use_starttls = "false", no tls.* settings."""
        self.use_starttls = "false"
        self.listener_tls, self.outgoing_tls = {}, {}
        return self

    def tls(self, ca, *, mode="starttls", cert=None, client_cert=False, verify_mode="peer",
            disconnect_on_failure=False):
        """TLS on the public listener (`mode`: starttls, starttls_required or tls) with `cert` (a
        kit.ca.Issued) and the same mode outgoing; both trust `ca` (a kit.ca.CA or a CA cert path).
        `client_cert`: present `cert` on outgoing links too (SASL EXTERNAL possible); otherwise the
        outgoing side has no certificate (dialback after TLS). `disconnect_on_failure`: the
        listener's tls.disconnect_on_failure; False (here) lets peers without a client certificate
        in, True (the proxy's default) refuses them at the handshake when verify_mode is "peer"."""
        ca_path = ca if isinstance(ca, str) else ca.cert
        self.use_starttls = "optional"
        self.listener_tls = {"mode": mode, "cacertfile": ca_path, "verify_mode": verify_mode,
                             "disconnect_on_failure": disconnect_on_failure}
        if cert is not None:
            self.listener_tls.update(certfile=cert.chain, keyfile=cert.key)
        self.outgoing_tls = {"mode": mode, "cacertfile": ca_path, "verify_mode": verify_mode}
        if client_cert:
            if cert is None:
                raise ValueError("client_cert=True needs cert=")
            self.outgoing_tls.update(certfile=cert.chain, keyfile=cert.key)
        return self

    def config_text(self):
        if not self.local_server:
            raise KitError(f"s2s-proxy {self.name}: local_server (ip, port) not set")
        lip, lport = self.local_server
        out = ["# written by tests/integration/kit/proxy.py", "",
               "[general]",
               f"hosts = {toml_value(self.hosts)}",
               f"loglevel = {toml_value(self.loglevel)}",
               "shutdown_timeout = 3000       # a drain may hold the stop this long (kit's stop waits 10 s)",
               "",
               "[local]",
               f"server = {toml_value(f'{lip}:{lport}')}",
               "",
               "[admin]",
               f"listen = {toml_value(f'{self.ip}:{self.admin_port}')}",
               "",
               "[s2s]"]
        if self.use_starttls is not None:
            out.append(f"use_starttls = {toml_value(self.use_starttls)}")
        out.append(f"shared = {toml_value(self.shared)}")
        if self.policy:
            out.append("host_policy = [" + ", ".join(
                toml_value({"host": d, "policy": p}) for d, p in self.policy.items()) + "]")
        for key, value in sorted(self.outgoing_tls.items()):
            out.append(f"outgoing.tls.{key} = {toml_value(value)}")
        for domain, (ip, port) in self.routes.items():
            out += ["", "[[s2s.outgoing.address]]", f"host = {toml_value(domain)}",
                    f"ip_address = {toml_value(ip)}", f"port = {port}"]
        out += ["", "[[listen.s2s]]", f"port = {self.s2s_port}", f"ip_address = {toml_value(self.ip)}"]
        for key, value in sorted(self.listener_tls.items()):
            out.append(f"tls.{key} = {toml_value(value)}")
        for extra in self.extra_listeners:
            out += ["", "[[listen.s2s]]"] + [f"{k} = {toml_value(v)}" for k, v in extra.items()]
        out += ["", "[[listen.local]]", f"port = {self.local_port}", f"ip_address = {toml_value(self.local_ip)}"]
        return "\n".join(out) + "\n"

    def metrics(self):
        """The /metrics samples as {'name{labels}': value}."""
        import urllib.request
        with urllib.request.urlopen(f"http://{self.ip}:{self.admin_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def argv(self):
        """The command line: the file, then every extra setting as --KEY=VALUE (TOML value)."""
        args = [self.binary or find_binary(), "--config", self.config_path]
        for key, value in self.settings.items():
            args.append(f"--{key}={toml_value(value)}")
        return args

    def write_config(self):
        with open(self.config_path, "w") as f:
            f.write(self.config_text())
        return self.config_path

    def check_config(self, timeout=10):
        """--check-config of the current settings (raises KitError with its output if rejected)."""
        self.write_config()
        return run(self.argv() + ["--check-config"], timeout=timeout, what=f"s2s-proxy {self.name} --check-config")

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout=10.0):
        self.write_config()
        mark = self.log_mark()
        self.proc = self.procs.start(f"s2s-proxy-{self.name}", self.argv(), cwd=self.dir, log_path=self.log_path,
                                     extra_logs={"config": self.config_path})
        end = time.monotonic() + timeout
        self.procs.wait_port(self.ip, self.s2s_port, max(0.1, end - time.monotonic()), self.proc)
        self.procs.wait_port(self.local_ip, self.local_port, max(0.1, end - time.monotonic()), self.proc)
        # ...and it is this process that listens there
        for name, ip, port in (("listen.s2s.0", self.ip, self.s2s_port),
                               ("listen.local.0", self.local_ip, self.local_port)):
            self.wait_log(rf"listening: {re.escape(name)} on {re.escape(ip)} port {port}\b",
                          max(0.5, end - time.monotonic()), since=mark)
        return self

    def stop(self):
        if self.proc:
            return self.proc.stop()

    def kill(self):
        """SIGKILL the proxy (a crash: no stream closes, no bounces from it)."""
        if self.proc and not self.proc.stopped:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.stop(timeout=5)

    def restart(self, timeout=10.0):
        self.stop()
        return self.start(timeout)

    def alive(self):
        return bool(self.proc) and self.proc.alive()

    def signal(self, sig):
        """Send `sig` to the proxy (SIGHUP: reload the config file; SIGTERM: drain, then exit)."""
        os.kill(self.proc.pid, sig)

    def wait_exit(self, timeout):
        """Wait (deadline) until the proxy has exited by itself; returns its exit status."""
        from .procs import wait_until
        wait_until(lambda: self.proc.popen.poll() is not None, timeout, f"s2s-proxy {self.name} to exit")
        return self.proc.stop()     # reaps it and its group; the status is the one it exited with

    def admin_get(self, path):
        """(status, body) of GET `path` on the admin endpoint."""
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://{self.ip}:{self.admin_port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def tail(self, lines=40):
        return self.proc.tail(lines) if self.proc else tail_file(self.log_path, lines)
