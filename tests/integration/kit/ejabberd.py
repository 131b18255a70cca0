"""ejabberd 23.01 (Debian's `ejabberd` package) as a real peer for the integration tests.

    e = Ejabberd(procs, "c", ip="127.0.0.4", dns=dns, ca=ca)
    e.add_host("c.test", users={"carol": "pw-c"})
    e.start()          # config + inetrc + ejabberdctl.cfg written, node started, users registered
    e.ctl("registered_users", "c.test")      # any ejabberdctl command against this node

Isolation from any system ejabberd: `ejabberdctl --config-dir DIR --logs DIR --spool DIR --node NAME`
with every directory in the test's temp dir, a node name and cookie of its own, and Erlang
distribution on a fixed loopback port without epmd (ERL_DIST_PORT in DIR/ejabberdctl.cfg makes
ejabberdctl pass `-erl_epmd_port P -start_epmd false`, and `-dist_listen false` to its clients), so
no epmd daemon is started and nothing listens beyond 127.0.0.x. It runs as the `ejabberd` user in
the foreground (`ejabberdctl foreground`), stopped by SIGTERM to its process group.

DNS, two halves:
- SRV: DIR/inetrc = {resolv_conf,""}. {hosts_file,""}. {nameserver,{127,0,0,53},PORT}.
  {lookup,[file,dns]}. (the recipe in DESIGN.md: without resolv_conf "" ejabberd sends lookups off
  the machine), plus {host,{127,0,0,1},["localhost",<hostname>]} so the node name resolves without
  DNS. Erlang's inet_res (SRV lookups) uses this.
- A/AAAA of the SRV target: Debian's erlang-p1-xmpp 1.6.1 resolves it with net:getaddrinfo, i.e.
  glibc (/etc/hosts, then /etc/resolv.conf's nameserver: OFF the machine), ignoring inetrc; a
  `.test` target fails with "DNS lookup failed: enoname" after asking the outside resolver. So by
  default (hermetic_dns=True) ejabberd runs in a private mount namespace (`unshare --mount`) where
  /etc/hosts holds the A/AAAA records of the test Zone (plus localhost), /etc/nsswitch.conf says
  `hosts: files` and /etc/resolv.conf names 127.0.0.1: its getaddrinfo never leaves the machine.
  After changing A/AAAA records in the Zone, call refresh_hosts() (the file is rewritten in place).
  With hermetic_dns=False only `localhost` SRV targets resolve without leaving the machine.
Outgoing s2s leaves from `ip` (outgoing_s2s_ipv4_address).

ejabberd caches s2s failures ("bouncing for N seconds"): restart it between cases that need a
fresh start (restart() keeps config, data and ports).

Fronted by s2s-proxy (DESIGN.md "The local link"): no separate mode is needed, the parameters are
there: s2s_use_starttls="false", outgoing_s2s_port=<s2s-proxy's local port>, and Zone records that
send `_xmpp-server._tcp.<remote>` to `localhost` (in the private /etc/hosts) at that port.
"""
import os
import pwd
import re
import secrets
import shutil
import socket
import time

from .procs import KitError, LogWatch, Timeout, check_loopback, free_port, run, tail_file

EJABBERDCTL = shutil.which("ejabberdctl") or "/usr/sbin/ejabberdctl"
USER = "ejabberd"


def yaml_str(s):
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Ejabberd(LogWatch):
    def __init__(self, procs, name, *, ip, dns, ca=None, c2s_port=None, s2s_port=None,
                 s2s_use_starttls="optional", trust_cas=None, s2s_dialback=True, loglevel="info",
                 s2s_max_retry_delay=None, outgoing_s2s_port=None, s2s_dns_timeout=3, s2s_dns_retries=1,
                 hermetic_dns=True, extra_config="", extra_modules=""):
        """`dns`: a kit.dns.Dnsmasq (its port must be known; it may start later). `s2s_use_starttls`:
        false | optional | required (YAML value as a string). `trust_cas`: CA certs for s2s
        (default [ca.cert]). `extra_config`/`extra_modules`: raw YAML appended at top level / under
        `modules:` (indented two spaces)."""
        self.procs = procs
        self.name = name
        self.ip = check_loopback(ip)
        self.dns = dns
        self.ca = ca
        self.c2s_port = c2s_port or free_port(ip)
        self.s2s_port = s2s_port or free_port(ip)
        self.dist_port = free_port("127.0.0.1")
        self.s2s_use_starttls = str(s2s_use_starttls).lower() if not isinstance(s2s_use_starttls, bool) \
            else ("true" if s2s_use_starttls else "false")
        self.trust_cas = list(trust_cas) if trust_cas is not None else ([ca.cert] if ca else [])
        self.s2s_dialback = s2s_dialback
        self.loglevel = loglevel
        self.s2s_max_retry_delay = s2s_max_retry_delay
        self.outgoing_s2s_port = outgoing_s2s_port
        self.s2s_dns_timeout = s2s_dns_timeout
        self.s2s_dns_retries = s2s_dns_retries
        self.hermetic_dns = hermetic_dns
        self.extra_config = extra_config
        self.extra_modules = extra_modules
        self.hosts = []                       # (domain, users, Issued)
        self.node = f"kit_{name}_{secrets.token_hex(3)}@localhost"
        self.cookie = secrets.token_hex(16)
        self.dir = procs.mkdir(f"ejabberd-{name}", owner=USER)
        self.config_dir = procs.mkdir(f"ejabberd-{name}", "etc", owner=USER)
        self.log_dir = procs.mkdir(f"ejabberd-{name}", "log", owner=USER)
        self.spool_dir = procs.mkdir(f"ejabberd-{name}", "spool", owner=USER, mode=0o700)
        self.cert_dir = procs.mkdir(f"ejabberd-{name}", "certs", owner=USER)
        self.etc_dir = procs.mkdir(f"ejabberd-{name}", "private-etc")
        self.config_path = os.path.join(self.config_dir, "ejabberd.yml")
        self.log_path = os.path.join(self.log_dir, "ejabberd.log")
        self.error_log_path = os.path.join(self.log_dir, "error.log")
        self.proc = None

    def add_host(self, domain, *, users=None, cert=None):
        if cert is None and self.ca is not None:
            cert = self.ca.issue(domain)
        self.hosts.append((domain, dict(users or {}), cert))
        return self

    # -- files ------------------------------------------------------------------------------------
    def _write(self, name, text):
        path = os.path.join(self.config_dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def config_text(self):
        certfiles = []
        for domain, _, cert in self.hosts:
            if cert is not None:
                dst = os.path.join(self.cert_dir, os.path.basename(cert.pem))
                shutil.copyfile(cert.pem, dst)
                os.chmod(dst, 0o644)
                certfiles.append(dst)
        cafile = None
        if self.trust_cas:
            cafile = os.path.join(self.cert_dir, "trusted-cas.crt")
            with open(cafile, "w") as out:
                for path in self.trust_cas:
                    with open(path) as f:
                        out.write(f.read())
            os.chmod(cafile, 0o644)
        y = ["# written by tests/integration/kit/ejabberd.py",
             "hosts:"] + [f"  - {yaml_str(d)}" for d, _, _ in self.hosts] + [
            f"loglevel: {self.loglevel}",
            "log_rotate_count: 0",
            "hide_sensitive_log_data: false",
        ]
        if certfiles:
            y += ["certfiles:"] + [f"  - {yaml_str(c)}" for c in certfiles]
        if cafile:
            y += [f"ca_file: {yaml_str(cafile)}", f"s2s_cafile: {yaml_str(cafile)}"]
        y += [
            "listen:",
            f"  - port: {self.c2s_port}",
            f"    ip: {yaml_str(self.ip)}",
            "    module: ejabberd_c2s",
            "    starttls_required: true",
            "    max_stanza_size: 262144",
            "    shaper: none",
            "    access: c2s",
            f"  - port: {self.s2s_port}",
            f"    ip: {yaml_str(self.ip)}",
            "    module: ejabberd_s2s_in",
            "    max_stanza_size: 524288",
            "    shaper: none",
            f"s2s_use_starttls: {self.s2s_use_starttls}",
            "s2s_access: s2s",
            "outgoing_s2s_families: [ipv4]",
            f"outgoing_s2s_ipv4_address: {yaml_str(self.ip)}",
            "outgoing_s2s_timeout: 10",          # seconds
            f"s2s_dns_timeout: {self.s2s_dns_timeout}",
            f"s2s_dns_retries: {self.s2s_dns_retries}",
        ]
        if self.outgoing_s2s_port:
            y.append(f"outgoing_s2s_port: {self.outgoing_s2s_port}")
        if self.s2s_max_retry_delay is not None:
            y.append(f"s2s_max_retry_delay: {self.s2s_max_retry_delay}")
        y += [
            "auth_method: internal",
            "auth_password_format: plain",
            "default_db: mnesia",
            "acl:",
            "  local:",
            "    user_regexp: \"\"",
            "  loopback:",
            "    ip: [127.0.0.0/8, \"::1/128\"]",
            "access_rules:",
            "  local:",
            "    allow: local",
            "  c2s:",
            "    allow: all",
            "  s2s:",
            "    allow: all",
            "shaper_rules:",
            "  c2s_shaper: none",
            "  s2s_shaper: none",
            "modules:",
            "  mod_disco: {}",
            "  mod_ping: {}",
            "  mod_roster: {}",
            "  mod_offline: {}",
        ]
        if self.s2s_dialback:
            y.append("  mod_s2s_dialback: {}")
        if self.extra_modules:
            y.append(self.extra_modules.rstrip("\n"))
        if self.extra_config:
            y.append(self.extra_config.rstrip("\n"))
        return "\n".join(y) + "\n"

    def inetrc_text(self):
        if self.dns.port is None:
            raise KitError("Ejabberd: the Dnsmasq needs its port before ejabberd's inetrc is written")
        a, b, c, d = self.dns.host.split(".")
        return ('{resolv_conf, ""}.\n'
                '{hosts_file, ""}.\n'
                f'{{nameserver, {{{a},{b},{c},{d}}}, {self.dns.port}}}.\n'
                '{lookup, [file, dns]}.\n'
                f'{{host, {{127,0,0,1}}, ["localhost", "{socket.gethostname()}"]}}.\n')

    # -- the private /etc for getaddrinfo (hermetic_dns) ------------------------------------------
    def hosts_text(self):
        lines = ["# written by tests/integration/kit/ejabberd.py from the test Zone",
                 "127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
                 f"127.0.0.1 {socket.gethostname()}"]
        for name, addrs in self.dns.zone.host_records().items():
            for a in addrs:
                lines.append(f"{a} {name}")
        return "\n".join(lines) + "\n"

    def refresh_hosts(self):
        """Rewrite (in place: the bind mount follows the inode) the private /etc/hosts from the Zone."""
        path = os.path.join(self.etc_dir, "hosts")
        with open(path, "r+" if os.path.exists(path) else "w") as f:
            f.seek(0)
            f.write(self.hosts_text())
            f.truncate()
        os.chmod(path, 0o644)

    def _write_private_etc(self):
        self.refresh_hosts()
        with open("/etc/nsswitch.conf") as f:
            nss = [line for line in f.read().splitlines() if not line.startswith(("hosts:", "networks:"))]
        nss += ["hosts: files", "networks: files"]
        for name, text in (("nsswitch.conf", "\n".join(nss) + "\n"),
                           ("resolv.conf", "# nothing listens here: no lookup leaves the machine\n"
                                           "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")):
            with open(os.path.join(self.etc_dir, name), "w") as f:
                f.write(text)
            os.chmod(os.path.join(self.etc_dir, name), 0o644)

    def _hermetic_argv(self, argv):
        """argv run as root in a private mount namespace with our /etc/{hosts,nsswitch.conf,resolv.conf}
        bound over the real ones, then exec'd as the ejabberd user (setpriv: no extra process)."""
        pw = pwd.getpwnam(USER)
        script = ('set -e; for f in hosts nsswitch.conf resolv.conf; do mount --bind "$0/$f" "/etc/$f"; done; '
                  f'exec setpriv --reuid {pw.pw_uid} --regid {pw.pw_gid} --clear-groups -- "$@"')
        return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, self.etc_dir, *argv]

    def ctl_cfg_text(self):
        # sourced by ejabberdctl (bash): ERL_DIST_PORT => no epmd; the cookie and the dist interface
        # go to both the node and every ejabberdctl client through ERL_OPTIONS.
        return "\n".join([
            f'ERLANG_NODE="{self.node}"',
            f'ERL_DIST_PORT={self.dist_port}',
            'ERL_OPTIONS="-setcookie {c} -kernel inet_dist_use_interface {{127,0,0,1}} '
            '-env ERL_CRASH_DUMP_BYTES 0"'.format(c=self.cookie),
            f'EJABBERD_PID_PATH="{os.path.join(self.dir, "ejabberd.pid")}"',
            f'CONTRIB_MODULES_PATH="{os.path.join(self.dir, "contrib")}"',
            f'CONTRIB_MODULES_CONF_DIR="{os.path.join(self.config_dir, "modules.d")}"',
            'EJABBERD_BYPASS_WARNINGS=true',
        ]) + "\n"

    def write_config(self):
        self._write("ejabberd.yml", self.config_text())
        self._write("inetrc", self.inetrc_text())
        self._write("ejabberdctl.cfg", self.ctl_cfg_text())

    def _ctl_argv(self, *args):
        return [EJABBERDCTL, "--config-dir", self.config_dir, "--logs", self.log_dir,
                "--spool", self.spool_dir, "--node", self.node, *args]

    def _env(self):
        return {"HOME": self.dir}

    # -- commands ---------------------------------------------------------------------------------
    def ctl(self, *args, timeout=30, check=True):
        """Run `ejabberdctl <args>` against this node; returns CompletedProcess."""
        return run(self._ctl_argv(*args), timeout=timeout, user=USER, env=self._env(), cwd=self.spool_dir,
                   check=check, what=f"ejabberdctl {' '.join(args)} ({self.name})")

    def register(self, user, domain, password, timeout=30):
        self.ctl("register", user, domain, password, timeout=timeout)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, timeout=60.0, register_users=True):
        if not os.path.exists(EJABBERDCTL):
            raise KitError("ejabberd not installed (Debian package ejabberd)")
        if not self.hosts:
            raise KitError("Ejabberd.start(): no hosts; call add_host() first")
        self.write_config()
        end = time.monotonic() + timeout
        argv, user = self._ctl_argv("foreground"), USER
        if self.hermetic_dns:
            if os.geteuid() != 0:
                raise KitError("Ejabberd(hermetic_dns=True) needs root (a private mount namespace)")
            self._write_private_etc()
            argv, user = self._hermetic_argv(argv), None
        mark = self.log_mark()
        self.proc = self.procs.start(f"ejabberd-{self.name}", argv, user=user,
                                     env=self._env(), cwd=self.spool_dir, stop_timeout=20,
                                     log_path=os.path.join(self.log_dir, "foreground.log"),
                                     # foreground.log already carries ejabberd.log's lines
                                     extra_logs={"error.log": self.error_log_path})
        self.procs.wait_port(self.ip, self.c2s_port, max(0.1, end - time.monotonic()), self.proc)
        self.procs.wait_port(self.ip, self.s2s_port, max(0.1, end - time.monotonic()), self.proc)
        # ...and it is this ejabberd that listens there (a failed bind does not stop the node)
        for module, port in (("ejabberd_c2s", self.c2s_port), ("ejabberd_s2s_in", self.s2s_port)):
            self.wait_log(re.escape(f"Start accepting TCP connections at {self.ip}:{port} for {module}"),
                          max(1.0, end - time.monotonic()), since=mark)
        if register_users:
            for domain, users, _ in self.hosts:
                for user, password in users.items():
                    self.register(user, domain, password, timeout=max(5.0, end - time.monotonic()))
        return self

    def wait_started(self, timeout=30.0):
        """Until `ejabberdctl status` says the node is started."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is not None and not self.proc.alive():
                raise KitError(f"ejabberd-{self.name} exited\n{self.proc.tail()}")
            cp = self.ctl("status", check=False, timeout=max(2.0, end - time.monotonic()))
            if cp.returncode == 0:
                return
            time.sleep(0.2)
        raise Timeout(f"ejabberd-{self.name} not started after {timeout}s")

    def stop(self):
        if self.proc:
            return self.proc.stop()

    def restart(self, timeout=60.0):
        """Stop and start again: same config, data (users stay registered) and ports."""
        self.stop()
        return self.start(timeout, register_users=False)

    def tail(self, lines=40):
        return self.proc.tail(lines) if self.proc else tail_file(self.log_path, lines)
