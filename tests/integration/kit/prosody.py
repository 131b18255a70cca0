"""Prosody 0.12 (Debian's `prosody` package) as a real peer for the integration tests.

    p = Prosody(procs, "a", ip="127.0.0.2", dns=dns, ca=ca)
    p.add_host("a.test", users={"alice": "pw-a"})            # cert issued by `ca` for a.test
    p.start()                                               # config written, users registered, ports up
    p.c2s_port, p.s2s_port, p.log_path, p.config_path
    zone.srv("_xmpp-server._tcp.a.test", "host.a.test", p.s2s_port).a("host.a.test", p.ip)

Everything lives in the test's temp dir (config, data, logs, certs); the server binds only `ip`
(loopback) and resolves only through the test dnsmasq via libunbound (lua-unbound):
`unbound = { resolvconf = false; hoststxt = false; forward = "<dnsmasq>@<port>";
options = { ["local-zone:"] = "test. transparent" } }` (the recipe verified in DESIGN.md).
It runs as the `prosody` user (Prosody refuses root) in the foreground; stop() is SIGTERM by PID.

Modes:
  mode="federating" (implemented): a normal federating server. s2s over TLS
      (s2s_require_encryption) with the test CA trusted (ssl.cafile, no system CA path), dialback
      and SASL EXTERNAL available, s2s_secure_auth on or off.
  mode="proxied": the server fronted by s2s-proxy as in DESIGN.md "The local link": s2s on its
      loopback address without TLS (s2s_require_encryption = false, s2s_secure_auth = false, no
      certificate on the s2s side), dialback, and the operator plugin shipped in
      config-examples/prosody/mod_s2s_proxy.lua (copied into the server's dir, loaded from
      plugin_paths) sending every outgoing s2s connection to s2s-proxy's [[listen.local]]:
          Prosody(procs, "a", ip=..., dns=dns, ca=ca, mode="proxied", proxy=("127.0.0.12", 25270))
      `proxy` (ip, port) may also be set later with `p.proxy = (ip, port)`, before start().
      c2s keeps its TLS (certificate from `ca`) for the clients.
"""
import glob
import os
import re
import shutil
import signal
import time

from .procs import KitError, LogWatch, check_loopback, free_port, run, tail_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROXY_PLUGIN = os.path.join(REPO, "config-examples", "prosody", "mod_s2s_proxy.lua")

PROSODY = shutil.which("prosody") or "/usr/bin/prosody"
PROSODYCTL = shutil.which("prosodyctl") or "/usr/bin/prosodyctl"
USER = "prosody"


def lua_str(s):
    """A Lua string literal."""
    s = str(s)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def lua_list(items):
    return "{ " + "; ".join(lua_str(i) if isinstance(i, str) else str(i) for i in items) + " }"


def lua_bool(b):
    return "true" if b else "false"


def check_installed():
    if not os.path.exists(PROSODY):
        raise KitError("prosody not installed (Debian package prosody)")
    # Without lua-unbound Prosody falls back to its old resolver, which reads /etc/resolv.conf and
    # would send the tests' lookups off the machine: refuse to start then.
    if not glob.glob("/usr/lib/*/lua/5.4/lunbound.so") and not glob.glob("/usr/lib/lua/5.4/lunbound.so"):
        raise KitError("lua-unbound for Lua 5.4 is missing (Debian package lua-unbound): Prosody would use "
                       "/etc/resolv.conf instead of the test DNS")


class VHost:
    def __init__(self, domain, users, cert, extra):
        self.domain, self.users, self.cert, self.extra = domain, dict(users or {}), cert, extra


class Prosody(LogWatch):
    def __init__(self, procs, name, *, ip, dns, ca=None, c2s_port=None, s2s_port=None,
                 mode="federating", s2s_secure_auth=False, s2s_require_encryption=True,
                 s2s_secure_domains=(), s2s_insecure_domains=(), trust_cas=None,
                 modules=(), plugin_paths=(), extra_global="", log_level="debug", tls_profile=None,
                 proxy=None):
        """`dns`: a started kit.dns.Dnsmasq. `ca`: kit.ca.CA used to issue host certs when
        add_host() gets none. `trust_cas`: CA cert paths trusted for s2s (default: [ca.cert]).
        `modules`: extra modules_enabled; `extra_global`: raw Lua lines for the global section.
        `proxy`: (ip, port) of s2s-proxy's [[listen.local]] (mode="proxied" only)."""
        if mode not in ("federating", "proxied"):
            raise ValueError(f"mode must be 'federating' or 'proxied', not {mode!r}")
        self.procs = procs
        self.name = name
        self.ip = check_loopback(ip)
        self.dns = dns
        self.ca = ca
        self.c2s_port = c2s_port or free_port(ip)
        self.s2s_port = s2s_port or free_port(ip)
        self.mode = mode
        self.s2s_secure_auth = s2s_secure_auth
        self.s2s_require_encryption = s2s_require_encryption
        self.s2s_secure_domains = list(s2s_secure_domains)
        self.s2s_insecure_domains = list(s2s_insecure_domains)
        self.trust_cas = list(trust_cas) if trust_cas is not None else ([ca.cert] if ca else [])
        self.modules = list(modules)
        self.plugin_paths = list(plugin_paths)
        self.extra_global = extra_global
        self.log_level = log_level
        self.tls_profile = tls_profile
        if proxy is not None and mode != "proxied":
            raise ValueError("proxy= is only for mode='proxied'")
        self.proxy = proxy
        self.hosts = []
        self.dir = procs.mkdir(f"prosody-{name}", owner=USER)
        self.data_dir = procs.mkdir(f"prosody-{name}", "data", owner=USER, mode=0o750)
        self.cert_dir = procs.mkdir(f"prosody-{name}", "certs", owner=USER)
        self.config_path = os.path.join(self.dir, "prosody.cfg.lua")
        self.log_path = os.path.join(self.dir, "prosody.log")
        self.proc = None

    # -- configuration ------------------------------------------------------------------------
    def add_host(self, domain, *, users=None, cert=None, extra=""):
        """A VirtualHost with `users` {name: password}; `cert`: a kit.ca.Issued (default: issued by
        the CA for `domain`); `extra`: raw Lua lines inside the VirtualHost section."""
        if cert is None and self.ca is not None:
            cert = self.ca.issue(domain)
        self.hosts.append(VHost(domain, users, cert, extra))
        return self

    def _copy_cert(self, issued):
        """Copies of the cert (chain) and key inside our dir, readable by prosody."""
        dst_cert = os.path.join(self.cert_dir, os.path.basename(issued.chain))
        dst_key = os.path.join(self.cert_dir, os.path.basename(issued.key))
        shutil.copyfile(issued.chain, dst_cert)
        shutil.copyfile(issued.key, dst_key)
        for p in (dst_cert, dst_key):
            os.chmod(p, 0o644)
        return dst_cert, dst_key

    def _s2s_config_federating(self):
        lines = [
            f"s2s_require_encryption = {lua_bool(self.s2s_require_encryption)}",
            f"s2s_secure_auth = {lua_bool(self.s2s_secure_auth)}",
        ]
        if self.s2s_secure_domains:
            lines.append(f"s2s_secure_domains = {lua_list(self.s2s_secure_domains)}")
        if self.s2s_insecure_domains:
            lines.append(f"s2s_insecure_domains = {lua_list(self.s2s_insecure_domains)}")
        return lines

    def _s2s_config_proxied(self):
        """s2s plain on our loopback address, dialback only, every outgoing s2s connection sent
        to s2s-proxy's local listener by mod_s2s_proxy (DESIGN.md, "The local link")."""
        if not self.proxy:
            raise KitError(f"Prosody {self.name}: mode='proxied' needs proxy=(ip, port) of s2s-proxy's [[listen.local]]")
        ip, port = self.proxy
        check_loopback(ip)
        if not os.path.exists(PROXY_PLUGIN):
            raise KitError(f"{PROXY_PLUGIN} is missing")
        plugins = os.path.join(self.dir, "plugins")
        os.makedirs(plugins, exist_ok=True)
        os.chmod(plugins, 0o755)
        dst = os.path.join(plugins, "mod_s2s_proxy.lua")
        shutil.copyfile(PROXY_PLUGIN, dst)
        os.chmod(dst, 0o644)
        if plugins not in self.plugin_paths:
            self.plugin_paths.append(plugins)
        if "s2s_proxy" not in self.modules:
            self.modules.append("s2s_proxy")
        return [
            "s2s_require_encryption = false",
            "s2s_secure_auth = false",
            f"s2s_proxy_address = {lua_str(ip)}",
            f"s2s_proxy_port = {int(port)}",
        ]

    def config_text(self):
        s2s = self._s2s_config_federating() if self.mode == "federating" else self._s2s_config_proxied()
        modules = ["roster", "saslauth", "tls", "dialback", "disco", "ping", "presence"] + self.modules
        cafile = None
        if self.trust_cas:
            cafile = os.path.join(self.cert_dir, "trusted-cas.crt")
            with open(cafile, "w") as out:
                for path in self.trust_cas:
                    with open(path) as f:
                        out.write(f.read())
            os.chmod(cafile, 0o644)
        ssl_global = [("capath", "false")]   # never the system CAs: only the test CAs
        if cafile:
            ssl_global.append(("cafile", lua_str(cafile)))
        lines = [
            "-- written by tests/integration/kit/prosody.py",
            "daemonize = false",
            f"pidfile = {lua_str(os.path.join(self.data_dir, 'prosody.pid'))}",
            f"data_path = {lua_str(self.data_dir)}",
            f"certificates = {lua_str(self.cert_dir)}",
            f"interfaces = {lua_list([self.ip])}",
            f"local_interfaces = {lua_list([self.ip])}",
            "use_ipv6 = false",
            f"c2s_ports = {{ {self.c2s_port} }}",
            f"c2s_interfaces = {lua_list([self.ip])}",
            f"s2s_ports = {{ {self.s2s_port} }}",
            f"s2s_interfaces = {lua_list([self.ip])}",
            "c2s_direct_tls_ports = { }",
            "s2s_direct_tls_ports = { }",
            "component_ports = { }",
            "http_ports = { }",
            "https_ports = { }",
            "log = {",
            f"  {{ levels = {{ min = {lua_str(self.log_level)} }}, to = \"file\", filename = {lua_str(self.log_path)} }};",
            "  { levels = { min = \"error\" }, to = \"console\" };",
            "}",
            f"modules_enabled = {lua_list(modules)}",
            "authentication = \"internal_hashed\"",
            "storage = \"internal\"",
            "c2s_require_encryption = true",
            "allow_registration = false",
            "ssl = { " + "; ".join(f"{k} = {v}" for k, v in ssl_global) + " }",
            "unbound = {",
            "  resolvconf = false; hoststxt = false;",
            f"  forward = {lua_str(self.dns.unbound_forward)};",
            "  options = { [\"local-zone:\"] = \"test. transparent\" };",
            "}",
        ]
        if self.tls_profile:
            lines.append(f"tls_profile = {lua_str(self.tls_profile)}")
        if self.plugin_paths:
            lines.append(f"plugin_paths = {lua_list(self.plugin_paths)}")
        lines += s2s
        if self.extra_global:
            lines.append(self.extra_global)
        for h in self.hosts:
            lines.append("")
            lines.append(f"VirtualHost {lua_str(h.domain)}")
            if h.cert is not None:
                cert, key = self._copy_cert(h.cert)
                lines.append(f"  ssl = {{ certificate = {lua_str(cert)}; key = {lua_str(key)} }}")
            if h.extra:
                lines.append(h.extra)
        return "\n".join(lines) + "\n"

    def write_config(self):
        text = self.config_text()
        with open(self.config_path, "w") as f:
            f.write(text)
        os.chmod(self.config_path, 0o644)
        return self.config_path

    # -- users ----------------------------------------------------------------------------------
    def register(self, user, domain, password, timeout=20):
        """prosodyctl register (works with the server stopped or running)."""
        run([PROSODYCTL, "--config", self.config_path, "register", user, domain, password],
            user=USER, timeout=timeout, cwd=self.dir, what=f"prosodyctl register {user}@{domain}")

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout=20.0):
        check_installed()
        if not self.hosts:
            raise KitError("Prosody.start(): no hosts; call add_host() first")
        self.write_config()
        for h in self.hosts:
            for user, password in h.users.items():
                self.register(user, h.domain, password)
        mark = self.log_mark()
        self.proc = self.procs.start(f"prosody-{self.name}", [PROSODY, "--config", self.config_path, "-F"],
                                     user=USER, cwd=self.dir, env={"HOME": self.dir},
                                     log_path=os.path.join(self.dir, "stdout.log"),
                                     extra_logs={"prosody.log": self.log_path})
        end = time.monotonic() + timeout
        self.procs.wait_port(self.ip, self.c2s_port, max(0.1, end - time.monotonic()), self.proc)
        self.procs.wait_port(self.ip, self.s2s_port, max(0.1, end - time.monotonic()), self.proc)
        # ...and it is Prosody that listens there (a failed bind is only logged, not fatal)
        if self.log_level in ("debug", "info"):
            for service, port in (("c2s", self.c2s_port), ("s2s", self.s2s_port)):
                self.wait_log(re.escape(f"Activated service '{service}' on [{self.ip}]:{port}"),
                              max(1.0, end - time.monotonic()), since=mark)
        if self.log_level == "debug":
            # net/unbound.lua logs this when its resolver is set up at "server-started"
            self.wait_log("Setting up net.server event handling", max(1.0, end - time.monotonic()), since=mark)
        return self

    def stop(self):
        if self.proc:
            return self.proc.stop()

    def kill(self):
        """SIGKILL Prosody's process group (a crash: no stream closes, nothing flushed); restart()
        brings it back with its data."""
        if self.proc and not self.proc.stopped:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.stop(timeout=5)

    def restart(self, timeout=20.0):
        """Stop and start again with the same config and ports (data kept)."""
        self.stop()
        self.proc = None
        users = [(h, dict(h.users)) for h in self.hosts]
        for h, _ in users:
            h.users = {}          # already registered
        try:
            return self.start(timeout)
        finally:
            for h, u in users:
                h.users = u

    def tail(self, lines=40):
        return self.proc.tail(lines) if self.proc else tail_file(self.log_path, lines)
