"""jabberd2 2.7 (Debian's `jabberd2` package) as a real peer for the integration tests: its four
processes (router, sm, c2s, s2s), one domain, sqlite storage, all on one loopback address.

    j = Jabberd2(procs, "j", ip="127.0.0.6", ca=ca, nameserver=("127.0.0.1", 25353))
    j.add_host("j.test", users={"juliet": "pw-j"}, cert=ca.issue("j.test"))
    j.start()          # config files written, sqlite database made with the users, 4 processes up
    j.c2s_port, j.s2s_port, j.router_port, j.log_path (s2s's log), j.logs["sm"], j.restart()

Config: router.xml, sm.xml and c2s.xml are Debian's (/etc/jabberd2/*.xml, as installed) with only
what a test needs changed (addresses, ports, the domain, the database, logs to stdout, sm's
<user><auto-create/> so users need only an authreg row, no SASL EXTERNAL for the clients).
s2s.xml is `s2s_xml` (default: config-examples/jabberd2/s2s.xml, the operator kit) with only the
router's and the listener's address and port, the pemfile's path, the log and the pid file
changed. The s2s process gets the environment of
`env_file` (default: config-examples/jabberd2/s2s-proxy.conf, a systemd drop-in: its
Environment= lines), its RES_OPTIONS port replaced by the port of `nameserver`.

Users: rows in the sqlite database (Debian's schema, /usr/share/doc/jabberd2/db-setup.sqlite.gz,
made with Python's sqlite3) with plaintext passwords, which is what Debian's c2s.xml says
(<password_type><plaintext/>). c2s offers STARTTLS with the host's certificate (pemfile: key,
leaf, CA).

Every process runs as the `jabber` user in the foreground with its own log (jabberd2 logs to
stdout when <log> has no type); stop() is SIGTERM to each process group by PID (s2s, c2s, sm,
then the router). Nothing listens beyond `ip` (router, c2s, s2s); the s2s resolver (udns) asks
only `nameserver` (NAMESERVERS replaces /etc/resolv.conf's servers).
"""
import gzip
import os
import re
import shutil
import sqlite3
import time
import xml.etree.ElementTree as ET

from .procs import KitError, LogWatch, check_loopback, free_port, tail_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OPERATOR_S2S_XML = os.path.join(REPO, "config-examples", "jabberd2", "s2s.xml")
OPERATOR_ENV = os.path.join(REPO, "config-examples", "jabberd2", "s2s-proxy.conf")

SBIN = "/usr/sbin"
ETC = "/etc/jabberd2"
SCHEMA = "/usr/share/doc/jabberd2/db-setup.sqlite.gz"
USER = "jabber"
COMPONENTS = ("router", "sm", "c2s", "s2s")
ROUTER_USER, ROUTER_PASS = "jabberd", "secret"


def binary(component):
    return os.path.join(SBIN, f"jabberd2-{component}")


def check_installed():
    missing = [binary(c) for c in COMPONENTS if not os.path.exists(binary(c))]
    missing += [p for p in (SCHEMA, *(os.path.join(ETC, f"{c}.xml") for c in COMPONENTS)) if not os.path.exists(p)]
    if missing:
        raise KitError("jabberd2 is not installed (Debian package jabberd2): missing " + ", ".join(missing))


def read_env_file(path):
    """{name: value} of the Environment= lines of a systemd unit or drop-in."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("Environment="):
                continue
            for item in line[len("Environment="):].split():
                item = item.strip('"')
                name, sep, value = item.partition("=")
                if not sep:
                    raise KitError(f"{path}: cannot read {line!r}")
                env[name] = value
    return env


def _set(root, path, text):
    """Set the text of root/path (a/b/c), creating missing elements."""
    node = root
    for tag in path.split("/"):
        child = node.find(tag)
        if child is None:
            child = ET.SubElement(node, tag)
        node = child
    node.text = str(text)
    return node


def _drop(root, path):
    parent_path, _, tag = path.rpartition("/")
    parent = root.find(parent_path) if parent_path else root
    if parent is not None:
        for child in parent.findall(tag):
            parent.remove(child)


def _log_to_stdout(root):
    """<log/> with no type: jabberd2 logs to stdout (flushed per line)."""
    _drop(root, "log")
    ET.SubElement(root, "log")


class Jabberd2(LogWatch):
    def __init__(self, procs, name, *, ip, nameserver, ca=None, c2s_port=None, s2s_port=None, router_port=None,
                 s2s_xml=OPERATOR_S2S_XML, env_file=OPERATOR_ENV):
        """`nameserver`: (host, port) the s2s resolver asks (s2s-proxy's local.dns_responder)."""
        self.procs = procs
        self.name = name
        self.ip = check_loopback(ip)
        self.nameserver = (check_loopback(nameserver[0]), int(nameserver[1]))
        self.ca = ca
        self.c2s_port = c2s_port or free_port(ip)
        self.s2s_port = s2s_port or free_port(ip)
        self.router_port = router_port or free_port(ip)
        self.s2s_xml = s2s_xml
        self.env_file = env_file
        self.hosts = []                      # (domain, users, Issued); jabberd2 here serves one
        self.dir = procs.mkdir(f"jabberd2-{name}", owner=USER)
        self.data_dir = procs.mkdir(f"jabberd2-{name}", "data", owner=USER, mode=0o700)
        self.db_path = os.path.join(self.data_dir, "sqlite.db")
        self.logs = {c: os.path.join(self.dir, f"{c}.log") for c in COMPONENTS}
        self.log_path = self.logs["s2s"]     # LogWatch: the s2s component's log
        self.procs_by_component = {}
        self.proc = None                     # the s2s process (LogWatch checks it is alive)

    def add_host(self, domain, *, users=None, cert=None):
        if self.hosts:
            raise KitError("Jabberd2: one domain per instance")
        if cert is None and self.ca is not None:
            cert = self.ca.issue(domain)
        self.hosts.append((domain, dict(users or {}), cert))
        return self

    @property
    def domain(self):
        return self.hosts[0][0]

    # -- files ------------------------------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.dir, name)

    def pem_path(self):
        """The host's key, certificate and CA in one file (jabberd2's pemfile), owned by jabber."""
        pem = self.path("server.pem")
        cert = self.hosts[0][2]
        if cert is None:
            raise KitError("Jabberd2: the host needs a certificate (ca= or cert=) for its pemfile")
        shutil.copyfile(cert.pem, pem)
        shutil.chown(pem, USER, USER)
        os.chmod(pem, 0o600)
        return pem

    def _write(self, name, root):
        ET.indent(root)
        data = b"<?xml version='1.0'?>\n<!-- written by tests/integration/kit/jabberd2.py -->\n" + \
            ET.tostring(root) + b"\n"
        with open(self.path(name), "wb") as f:
            f.write(data)
        os.chmod(self.path(name), 0o644)

    def _router_link(self, root):
        _set(root, "router/ip", self.ip)
        _set(root, "router/port", self.router_port)
        _set(root, "router/user", ROUTER_USER)
        _set(root, "router/pass", ROUTER_PASS)

    def router_root(self):
        root = ET.parse(os.path.join(ETC, "router.xml")).getroot()
        _drop(root, "pidfile")
        _log_to_stdout(root)
        _set(root, "local/ip", self.ip)
        _set(root, "local/port", self.router_port)
        _set(root, "local/users", self.path("router-users.xml"))
        _set(root, "aci/filter", self.path("router-filter.xml"))
        return root

    def router_users_root(self):
        root = ET.Element("users")
        user = ET.SubElement(root, "user")
        ET.SubElement(user, "name").text = ROUTER_USER
        ET.SubElement(user, "secret").text = ROUTER_PASS
        return root

    def _sqlite(self, root, base):
        node = root.find(base)
        if node is None:
            raise KitError(f"Debian's config has no <{base}>")
        _set(node, "dbname", self.db_path)

    def sm_root(self):
        root = ET.parse(os.path.join(ETC, "sm.xml")).getroot()
        _drop(root, "pidfile")
        _log_to_stdout(root)
        self._router_link(root)
        _set(root, "local/id", self.domain)
        if root.findtext("storage/driver") != "sqlite":
            raise KitError("Debian's sm.xml: expected storage driver sqlite")
        self._sqlite(root, "storage/sqlite")
        for acl in root.iter("acl"):
            for jid in acl.findall("jid"):
                jid.text = f"admin@{self.domain}"
        user = root.find("user")
        if user is None:
            user = ET.SubElement(root, "user")
        if user.find("auto-create") is None:
            ET.SubElement(user, "auto-create")
        return root

    def c2s_root(self):
        root = ET.parse(os.path.join(ETC, "c2s.xml")).getroot()
        _drop(root, "pidfile")
        _log_to_stdout(root)
        self._router_link(root)
        _drop(root, "local/id")
        domain, _, cert = self.hosts[0]
        host = ET.SubElement(root.find("local"), "id")
        host.text = domain
        if cert is not None:
            host.set("pemfile", self.pem_path())
        _set(root, "local/ip", self.ip)
        _set(root, "local/port", self.c2s_port)
        if root.findtext("authreg/module") != "sqlite":
            raise KitError("Debian's c2s.xml: expected authreg module sqlite")
        self._sqlite(root, "authreg/sqlite")
        # SASL EXTERNAL (offered under TLS by Debian's c2s.xml) would be the clients' first try,
        # and a failed SASL attempt ends a kit client's job: PLAIN and DIGEST-MD5 only
        _drop(root, "authreg/ssl-mechanisms/sasl/external")
        return root

    def s2s_root(self):
        """The operator's s2s.xml with only addresses, ports, the log and the pid file changed."""
        root = ET.parse(self.s2s_xml).getroot()
        _drop(root, "pidfile")
        _log_to_stdout(root)
        self._router_link(root)
        _set(root, "local/ip", self.ip)
        _set(root, "local/port", self.s2s_port)
        if root.find("local/pemfile") is not None:
            _set(root, "local/pemfile", self.pem_path())
        return root

    def s2s_env(self):
        """The environment of the s2s process: the operator's drop-in, the nameserver's port in."""
        env = read_env_file(self.env_file)
        host, port = self.nameserver
        if "RES_OPTIONS" not in env or not re.search(r"\bport:\d+\b", env["RES_OPTIONS"]):
            raise KitError(f"{self.env_file}: expected RES_OPTIONS with port:N")
        env["RES_OPTIONS"] = re.sub(r"\bport:\d+\b", f"port:{port}", env["RES_OPTIONS"])
        if env.get("NAMESERVERS") != host:
            raise KitError(f"{self.env_file}: NAMESERVERS={env.get('NAMESERVERS')}, the test's responder is on {host}")
        return env

    def make_database(self):
        """Debian's sqlite schema and one authreg row per user (realm = the domain)."""
        if os.path.exists(self.db_path):
            return
        with gzip.open(SCHEMA, "rt") as f:
            schema = f.read()
        db = sqlite3.connect(self.db_path)
        try:
            db.executescript(schema)
            for domain, users, _ in self.hosts:
                db.executemany('INSERT INTO "authreg" ("username", "realm", "password") VALUES (?, ?, ?)',
                               [(u, domain, p) for u, p in users.items()])
            db.commit()
        finally:
            db.close()
        for p in os.listdir(self.data_dir):
            shutil.chown(os.path.join(self.data_dir, p), USER, USER)

    def write_config(self):
        if not self.hosts:
            raise KitError("Jabberd2: no host; call add_host() first")
        self._write("router.xml", self.router_root())
        self._write("router-users.xml", self.router_users_root())
        shutil.copyfile(os.path.join(ETC, "router-filter.xml"), self.path("router-filter.xml"))
        os.chmod(self.path("router-filter.xml"), 0o644)
        self._write("sm.xml", self.sm_root())
        self._write("c2s.xml", self.c2s_root())
        self._write("s2s.xml", self.s2s_root())

    # -- lifecycle --------------------------------------------------------------------------------
    def _start_component(self, component, env=None):
        proc = self.procs.start(f"jabberd2-{self.name}-{component}",
                                [binary(component), "-c", self.path(f"{component}.xml")],
                                user=USER, env=env, cwd=self.dir, log_path=self.logs[component])
        self.procs_by_component[component] = proc
        return proc

    def _wait_log(self, component, pattern, timeout, since):
        path, proc = self.logs[component], self.procs_by_component[component]
        rx = re.compile(pattern)

        def seen():
            try:
                with open(path, "rb") as f:
                    f.seek(since)
                    return rx.search(f.read().decode("utf-8", "replace"))
            except OSError:
                return None
        from .procs import wait_until
        return wait_until(seen, timeout, f"/{pattern}/ in {path}", proc=proc)

    def log_marks(self):
        marks = {}
        for c, p in self.logs.items():
            try:
                marks[c] = os.path.getsize(p)
            except OSError:
                marks[c] = 0
        return marks

    def start(self, timeout=30.0):
        check_installed()
        self.write_config()
        self.make_database()
        env = self.s2s_env()
        end = time.monotonic() + timeout
        marks = self.log_marks()

        def left():
            return max(0.5, end - time.monotonic())
        router = self._start_component("router")
        self.procs.wait_port(self.ip, self.router_port, left(), router)
        self._start_component("sm")
        self._start_component("c2s")
        self.proc = self._start_component("s2s", env)
        # each component is bound at the router: sm for the domain, s2s as the default route
        self._wait_log("router", rf"\[{re.escape(self.domain)}\] online", left(), marks["router"])
        self._wait_log("router", r"\[s2s\] set as default route", left(), marks["router"])
        self._wait_log("c2s", r"ready for connections", left(), marks["c2s"])
        self._wait_log("s2s", r"ready for connections", left(), marks["s2s"])
        self.procs.wait_port(self.ip, self.c2s_port, left(), self.procs_by_component["c2s"])
        self.procs.wait_port(self.ip, self.s2s_port, left(), self.proc)
        return self

    def stop(self):
        for c in reversed(COMPONENTS):
            proc = self.procs_by_component.get(c)
            if proc is not None:
                proc.stop()

    def restart(self, timeout=30.0):
        """Stop all four processes and start them again: same config, database and ports."""
        self.stop()
        return self.start(timeout)

    def log_text_of(self, component, since=0):
        try:
            with open(self.logs[component], "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, lines=40):
        return "\n".join(f"--- jabberd2-{self.name} {c} ---\n{tail_file(p, lines)}" for c, p in self.logs.items())
