#!/usr/bin/python3
"""The systemd unit and the Debian package (`make deb`), checked on a machine where systemd is not
PID 1, without touching its own package database or users:

- The unit as `make install` writes it: `systemd-analyze verify` passes without a word; its paths
  follow PREFIX (/lib/systemd/system and /usr/bin for PREFIX=/usr, as Debian 12 has them); the
  readiness, reload and hardening keys are there and `systemd-analyze security` rates it OK; every
  system call s2s-proxy makes from start through reload to stop is one its SystemCallFilter allows
  (traced with strace).
- The package: its control fields (the version the binary reports, the architecture, Depends =
  the packages of every library the binary loads, and ca-certificates), the conffile and the
  maintainer scripts. Installed, upgraded, removed and purged with dpkg into a separate --admindir
  and --instdir (--force-script-chrootless, so the scripts see DPKG_ROOT): the files are where
  they should be, the s2s-proxy user is made in that root and its group may read the config, an
  edited conffile survives an upgrade and a remove and goes on purge, and no service manager
  command runs.
- Start and reload: the installed binary run as the unit's ExecStartPre and ExecStart say, its
  paths taken inside the install root, with NOTIFY_SOCKET on a socket this test owns: READY=1
  once the listener accepts; ExecReload -> RELOADING=1 with MONOTONIC_USEC, then READY=1 with
  the reload's outcome; SIGTERM -> STOPPING=1 and exit 0. The config check also runs with only
  the s2s-proxy user's uid and gid (it reads the config through the group) and fails for nobody.

Run: BUILD=build /usr/bin/python3 tests/docker/test_deb.py   (as root, after `make all`)
Ends with `docker-summary: N passed, N failed`.
"""
import glob
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support as S  # noqa: E402

UNIT_SOURCE = os.path.join(S.SYSTEMD_DIR, "s2s-proxy.service")
CONFIG = "/etc/s2s-proxy/s2s-proxy.toml"
TOOLS = ("systemd-analyze", "systemd-sysusers", "dpkg-deb", "dpkg-shlibdeps", "strace", "setpriv")
# Stand-ins for the service manager's commands: each call is written to $STUB_LOG.
SERVICE_COMMANDS = ("systemctl", "deb-systemd-helper", "deb-systemd-invoke", "invoke-rc.d", "service")


def missing_tools():
    return [t for t in TOOLS if shutil.which(t) is None]


def parse_unit(text):
    """{section: [(key, value), ...]} of a unit file (comments and blank lines dropped)."""
    out, section = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, [])
            continue
        key, _, value = line.partition("=")
        out[section].append((key.strip(), value.strip()))
    return out


def values(unit, section, key):
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit, section, key):
    found = values(unit, section, key)
    return found[-1] if found else None


def exec_argv(line, root="", mainpid=None):
    """A unit's Exec*= line as argv: its prefixes (-@:+!) dropped, $MAINPID filled in, and each
    absolute path that exists under `root` taken there (the install root stands for /)."""
    line = line.lstrip("-@:+!")
    argv = shlex.split(line)
    out = []
    for word in argv:
        if mainpid is not None:
            word = word.replace("$MAINPID", str(mainpid)).replace("${MAINPID}", str(mainpid))
        if root and word.startswith("/") and os.path.lexists(os.path.join(root, word.lstrip("/"))):
            word = os.path.join(root, word.lstrip("/"))
        out.append(word)
    return out


def unit_install(prefix, destdir=""):
    """make install with this PREFIX (and DESTDIR); the installed unit's path."""
    r = subprocess.run(["make", "--no-print-directory", "-C", S.ROOT, "install", "BUILD=" + S.BUILD,
                        "DESTDIR=" + destdir, "PREFIX=" + prefix], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise AssertionError("make install PREFIX=%s failed:\n%s%s" % (prefix, r.stdout, r.stderr))
    unitdir = "/lib/systemd/system" if prefix == "/usr" else prefix + "/lib/systemd/system"
    return destdir + unitdir + "/s2s-proxy.service"


def syscalls_of(group, seen=None):
    """The system calls of a SystemCallFilter= group (@name), its nested groups expanded."""
    seen = seen if seen is not None else set()
    if group in seen:
        return set()
    seen.add(group)
    r = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True, check=True)
    out = set()
    for line in r.stdout.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        out |= syscalls_of(word, seen) if word.startswith("@") else {word}
    return out


def allowed_syscalls(unit):
    """What the unit's SystemCallFilter= lines allow, in order (a ~ line takes away)."""
    allowed = None
    for line in values(unit, "Service", "SystemCallFilter"):
        deny = line.startswith("~")
        names = set()
        for word in line.lstrip("~").split():
            names |= syscalls_of(word) if word.startswith("@") else {word}
        if allowed is None:
            allowed = set() if deny else names
        elif deny:
            allowed -= names
        else:
            allowed |= names
    return allowed


def proxy_config(ports, policy="allow"):
    """A config on loopback: the public and local listeners, the admin endpoint, a local server
    address nobody answers on."""
    return ('[general]\n  hosts = ["example.com"]\n[s2s]\n  default_policy = "%s"\n'
            '[local]\n  server = "127.0.0.1:%d"\n'
            '[[listen.s2s]]\n  port = %d\n  ip_address = "127.0.0.1"\n'
            '[[listen.local]]\n  port = %d\n  ip_address = "127.0.0.1"\n'
            '[admin]\n  listen = "127.0.0.1:%d"\n'
            % (policy, ports["server"], ports["s2s"], ports["local"], ports["admin"]))


class Notifications:
    """The socket a service manager reads sd_notify datagrams on ($NOTIFY_SOCKET)."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def next(self, timeout=10.0):
        """The next datagram as text, or None after `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------------------------

class Package:
    """`make deb` once per run, and a dpkg root (admin and install directories) for the tests."""
    deb = None
    result = None

    @classmethod
    def build(cls):
        if cls.result is None:
            cls.result = subprocess.run(["make", "--no-print-directory", "-C", S.ROOT, "deb", "BUILD=" + S.BUILD],
                                        capture_output=True, text=True, timeout=900)
            m = re.search(r"make deb: (\S+\.deb)", cls.result.stdout)
            cls.deb = os.path.join(S.ROOT, m.group(1)) if m else None
        if cls.result.returncode != 0 or not cls.deb:
            raise AssertionError("make deb failed:\n" + cls.result.stdout + cls.result.stderr)
        return cls.deb


class DpkgRoot:
    """A package database and an install root of their own: the database starts as a copy of this
    machine's status (so that Depends are checked against what is really installed), the root
    with only root's entries in /etc/passwd and /etc/group. Maintainer scripts run without chroot
    (DPKG_ROOT set), with the service manager's commands replaced by stubs that log each call."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="s2s-deb-")
        os.chmod(self.dir, 0o755)  # the s2s-proxy user's checks below traverse it
        self.admin = os.path.join(self.dir, "admin")
        self.root = os.path.join(self.dir, "root")
        self.stubs = os.path.join(self.dir, "stubs")
        self.stub_log = os.path.join(self.dir, "service-calls.log")
        for d in (os.path.join(self.admin, "updates"), os.path.join(self.admin, "info"),
                  os.path.join(self.root, "etc"), self.stubs):
            os.makedirs(d)
        os.chmod(self.root, 0o755)
        shutil.copy("/var/lib/dpkg/status", os.path.join(self.admin, "status"))
        names = subprocess.run(["dpkg-query", "-W", "-f", "${binary:Package}\n"], capture_output=True, text=True,
                               check=True).stdout.split()
        for name in names:  # dpkg reads each package's file list: these packages own nothing here
            open(os.path.join(self.admin, "info", name + ".list"), "w").close()
        with open(os.path.join(self.root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        with open(os.path.join(self.root, "etc/group"), "w") as f:
            f.write("root:x:0:\n")
        for name in SERVICE_COMMANDS:
            path = os.path.join(self.stubs, name)
            with open(path, "w") as f:
                f.write('#!/bin/sh\necho "$0 $*" >> "%s"\n' % self.stub_log)
            os.chmod(path, 0o755)

    def dpkg(self, *args):
        env = dict(os.environ, PATH=self.stubs + ":" + os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
        return subprocess.run(["dpkg", "--admindir=" + self.admin, "--instdir=" + self.root,
                               "--force-script-chrootless", "--log=" + os.path.join(self.dir, "dpkg.log"), *args],
                              capture_output=True, text=True, timeout=300, env=env)

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def service_calls(self):
        if not os.path.exists(self.stub_log):
            return ""
        with open(self.stub_log) as f:
            return f.read()

    def account(self, table, name):
        """A line of the root's /etc/passwd or /etc/group as its fields, or None."""
        with open(self.path("/etc/" + table)) as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    return fields
        return None

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def dpkg_ok(test, r):
    test.assertEqual(r.returncode, 0, r.stdout + r.stderr)
    # (/etc is the package's and the root's passwd file's: dpkg says it leaves it, as it must.)
    complaints = [line for line in r.stderr.splitlines() if re.search(r"warning|error|cannot|not found", line, re.I)
                  and "directory '/etc' not empty so not removed" not in line]
    test.assertEqual(complaints, [], "dpkg or a maintainer script complained")


# --------------------------------------------------------------------------------------------

@unittest.skipIf(missing_tools(), "needs %s" % ", ".join(missing_tools()))
class Unit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="s2s-unit-")
        # A PREFIX inside a scratch directory: the unit's ExecStart then names a binary that
        # exists, as systemd-analyze verify wants; the system's own targets and /bin/kill serve.
        cls.prefix = os.path.join(cls.tmp, "usr")
        cls.unit_path = unit_install(cls.prefix)
        with open(cls.unit_path) as f:
            cls.text = f.read()
        cls.unit = parse_unit(cls.text)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_systemd_analyze_verify_says_nothing(self):
        r = subprocess.run(["systemd-analyze", "verify", self.unit_path], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "", "systemd-analyze verify: no warning, no unknown key")
        # It does check: an unknown key in a copy is reported.
        bad = os.path.join(self.tmp, "s2s-proxy.service")
        with open(bad, "w") as f:
            f.write(self.text.replace("[Service]\n", "[Service]\nProtectEverything=yes\n"))
        r = subprocess.run(["systemd-analyze", "verify", bad], capture_output=True, text=True, timeout=60)
        self.assertIn("Unknown key 'ProtectEverything'", r.stderr)

    def test_paths_follow_prefix_and_debian_layout(self):
        self.assertNotIn("/usr/local/", self.text)
        self.assertEqual(exec_argv(value(self.unit, "Service", "ExecStart")),
                         [self.prefix + "/bin/s2s-proxy", "--config", CONFIG])
        with open(UNIT_SOURCE) as f:
            source = f.read()
        stage = os.path.join(self.tmp, "stage")
        debian = unit_install("/usr", stage)
        self.assertEqual(debian, stage + "/lib/systemd/system/s2s-proxy.service")
        with open(debian) as f:
            self.assertEqual(f.read(), source.replace("/usr/local/", "/usr/"))
        self.assertTrue(os.path.exists(stage + "/usr/lib/sysusers.d/s2s-proxy.conf"))
        self.assertTrue(os.access(stage + "/usr/bin/s2s-proxy", os.X_OK))

    def test_readiness_reload_and_restart(self):
        u = self.unit
        self.assertEqual(value(u, "Service", "Type"), "notify")
        self.assertEqual(value(u, "Service", "ExecReload"), "/bin/kill -HUP $MAINPID")
        self.assertEqual(value(u, "Service", "Restart"), "on-failure")
        self.assertIsNone(value(u, "Service", "KillSignal"), "SIGTERM (the default) is what drains")
        pre = exec_argv(value(u, "Service", "ExecStartPre"))
        self.assertEqual(pre, exec_argv(value(u, "Service", "ExecStart")) + ["--check-config"])
        self.assertGreaterEqual(int(value(u, "Service", "LimitNOFILE")), 65536)
        self.assertEqual(values(u, "Install", "WantedBy"), ["multi-user.target"])

    def test_hardening(self):
        u = self.unit
        expected = {"User": "s2s-proxy", "Group": "s2s-proxy", "ProtectSystem": "strict", "ProtectHome": "yes",
                    "PrivateTmp": "yes", "NoNewPrivileges": "yes", "PrivateDevices": "yes",
                    "ProtectKernelTunables": "yes", "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
                    "AmbientCapabilities": "CAP_NET_BIND_SERVICE"}
        for key, want in expected.items():
            with self.subTest(key=key):
                self.assertEqual(value(u, "Service", key), want)
        families = value(u, "Service", "RestrictAddressFamilies").split()
        self.assertEqual(set(families) - {"AF_NETLINK"}, {"AF_INET", "AF_INET6", "AF_UNIX"})
        # The sysusers.d file makes the user and group the unit names.
        with open(os.path.join(S.SYSTEMD_DIR, "s2s-proxy.sysusers")) as f:
            entries = [line.split() for line in f if line.strip() and not line.startswith("#")]
        self.assertEqual([(e[0], e[1]) for e in entries], [("u", "s2s-proxy")])

    def test_systemd_analyze_security_rates_it_ok(self):
        r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", self.unit_path],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for s2s-proxy\.service: ([0-9.]+) (\w+)", r.stdout + r.stderr)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)
        self.assertEqual(m.group(2), "OK")

    def test_system_call_filter_allows_every_call_the_proxy_makes(self):
        allowed = allowed_syscalls(self.unit)
        self.assertIn("sendto", allowed)
        self.assertNotIn("setuid", allowed)  # ~@privileged took it away
        ports = {k: S.free_port() for k in ("server", "s2s", "local", "admin")}
        config = os.path.join(self.tmp, "proxy.toml")
        with open(config, "w") as f:
            f.write(proxy_config(ports))
        trace = os.path.join(self.tmp, "strace.out")
        notify = Notifications(self.tmp)
        argv = exec_argv(value(self.unit, "Service", "ExecStart").replace(CONFIG, config))
        proc = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, *argv], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, NOTIFY_SOCKET=notify.path))
        try:
            self.assertTrue((notify.next(20) or "").startswith("READY=1"), "no READY=1 under strace")
            children = open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).read().split()
            self.assertEqual(len(children), 1)
            pid = int(children[0])
            # A stream header on the public listener, and /metrics (it reads /proc).
            with socket.create_connection(("127.0.0.1", ports["s2s"]), timeout=5) as c:
                c.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                          b"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>")
                c.recv(4096)
            with socket.create_connection(("127.0.0.1", ports["admin"]), timeout=5) as c:
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                c.recv(65536)
            subprocess.run(exec_argv(value(self.unit, "Service", "ExecReload"), mainpid=pid), check=True, timeout=10)
            self.assertTrue((notify.next() or "").startswith("RELOADING=1"))
            self.assertTrue((notify.next() or "").startswith("READY=1"))
            os.kill(pid, signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=30), 0, proc.stderr.read())
        finally:
            S.stop(proc)
            notify.close()
        used = set()
        with open(trace) as f:
            for line in f:
                m = re.match(r"\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
                if m and m.group(1) not in ("exited", "killed"):
                    used.add(m.group(1))
        self.assertGreater(len(used), 20, "strace saw too little")
        self.assertEqual(sorted(used - allowed), [], "system calls the unit's filter refuses (EPERM)")


@unittest.skipIf(missing_tools(), "needs %s" % ", ".join(missing_tools()))
class DebPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.deb = Package.build()

    def field(self, name):
        return subprocess.run(["dpkg-deb", "-f", self.deb, name], capture_output=True, text=True,
                              check=True).stdout.strip()

    def test_file_name_version_and_architecture(self):
        version = S.run_proxy(S.PROXY, "--version").stdout.split()[1]
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
        self.assertEqual(os.path.relpath(self.deb, S.ROOT),
                         os.path.join(S.BUILD, "s2s-proxy_%s_%s.deb" % (version, arch)))
        self.assertEqual(self.field("Package"), "s2s-proxy")
        self.assertEqual(self.field("Version"), version)
        self.assertEqual(self.field("Architecture"), arch)

    def test_depends_are_the_packages_of_the_libraries_the_binary_loads(self):
        # The libraries it names itself (NEEDED), where the loader finds them; not theirs in turn.
        dynamic = subprocess.run(["readelf", "-d", S.PROXY], capture_output=True, text=True, check=True).stdout
        direct = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
        loaded = subprocess.run(["ldd", S.PROXY], capture_output=True, text=True, check=True).stdout
        libs = [m.group(2) for m in re.finditer(r"(\S+)\s+=>\s+(/\S+)", loaded) if m.group(1) in direct]
        self.assertEqual(len(libs), len(direct), loaded)
        if any(re.search(r"lib(asan|ubsan|tsan|lsan)", lib) for lib in libs):
            self.skipTest("a sanitizer build (BUILD=%s)" % S.BUILD)
        needed = {p for p in S.packages_of(libs).values() if p} | {"ca-certificates"}
        depends = {clause.strip().split(" ")[0] for clause in self.field("Depends").split(",")}
        self.assertEqual(depends, needed)
        self.assertRegex(self.field("Depends"), r"libuv1 \(>= [0-9.]+\)", "versioned, as dpkg-shlibdeps gives them")

    def test_conffile_and_maintainer_scripts(self):
        control = tempfile.mkdtemp(prefix="s2s-deb-control-")
        try:
            subprocess.run(["dpkg-deb", "-e", self.deb, control], check=True)
            with open(os.path.join(control, "conffiles")) as f:
                self.assertEqual(f.read().split(), [CONFIG])
            for name in ("postinst", "prerm", "postrm"):
                with self.subTest(script=name):
                    path = os.path.join(control, name)
                    self.assertTrue(os.access(path, os.X_OK))
                    self.assertEqual(subprocess.run(["sh", "-n", path]).returncode, 0)
                    with open(path) as f:
                        text = f.read()
                    self.assertNotRegex(text, r"(?m)^\s*\.\s+\S*common\.sh", "common.sh is put in place, not read")
                    self.assertIn("systemd_running() {", text)
                    # Every service manager command sits inside an `if` on systemd_running.
                    enclosing = []
                    for line in text.splitlines():
                        word = line.strip()
                        if word.startswith("if "):
                            enclosing.append(word)
                        elif word == "fi":
                            enclosing.pop()
                        elif re.search(r"\b(systemctl|deb-systemd-helper|deb-systemd-invoke)\b", word) and \
                                not word.startswith("#"):
                            self.assertTrue(any("systemd_running" in e for e in enclosing), line)
        finally:
            shutil.rmtree(control, ignore_errors=True)


@unittest.skipIf(missing_tools(), "needs %s" % ", ".join(missing_tools()))
@unittest.skipUnless(os.geteuid() == 0, "dpkg --instdir with maintainer scripts needs root")
class Lifecycle(unittest.TestCase):
    """Install, start, reload, stop, upgrade, remove and purge, in one dpkg root, in that order."""

    @classmethod
    def setUpClass(cls):
        cls.deb = Package.build()
        cls.root = DpkgRoot()
        cls.host_etc_existed = os.path.exists(CONFIG)

    @classmethod
    def tearDownClass(cls):
        cls.root.cleanup()

    def mode(self, path):
        st = os.stat(self.root.path(path))
        return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid

    def test_1_install(self):
        dpkg_ok(self, self.root.dpkg("--install", self.deb))
        with open(self.root.path("/lib/systemd/system/s2s-proxy.service")) as f:
            unit = parse_unit(f.read())
        self.assertEqual(exec_argv(value(unit, "Service", "ExecStart")), ["/usr/bin/s2s-proxy", "--config", CONFIG])
        for path in ("/usr/bin/s2s-proxy", "/usr/lib/sysusers.d/s2s-proxy.conf",
                     "/usr/share/s2s-proxy/examples/minimal.toml", "/usr/share/doc/s2s-proxy/README.md", CONFIG):
            with self.subTest(path=path):
                self.assertTrue(os.path.isfile(self.root.path(path)))
        self.assertTrue(os.access(self.root.path("/usr/bin/s2s-proxy"), os.X_OK))
        user = self.root.account("passwd", "s2s-proxy")
        group = self.root.account("group", "s2s-proxy")
        self.assertIsNotNone(user, "postinst made no s2s-proxy user in the install root")
        self.assertIsNotNone(group)
        self.assertEqual(user[3], group[2])
        self.assertEqual(user[6], "/usr/sbin/nologin")
        gid = int(group[2])
        self.assertEqual(self.mode("/etc/s2s-proxy"), (0o750, 0, gid))
        self.assertEqual(self.mode(CONFIG), (0o640, 0, gid))
        status = subprocess.run(["dpkg-query", "--admindir=" + self.root.admin, "-W", "-f", "${Status}", "s2s-proxy"],
                                capture_output=True, text=True)
        self.assertEqual(status.stdout, "install ok installed")
        self.assertEqual(self.root.service_calls(), "", "a service manager command ran for another root")
        self.assertEqual(os.path.exists(CONFIG), self.host_etc_existed, "the machine's own /etc was touched")

    def test_2_start_reload_stop_as_the_unit_says(self):
        with open(self.root.path("/lib/systemd/system/s2s-proxy.service")) as f:
            unit = parse_unit(f.read())
        ports = {k: S.free_port() for k in ("server", "s2s", "local", "admin")}
        config = self.root.path(CONFIG)
        with open(config, "w") as f:  # the operator edits the conffile
            f.write(proxy_config(ports))
        pre = exec_argv(value(unit, "Service", "ExecStartPre"), self.root.root)
        self.assertEqual(pre[0], self.root.path("/usr/bin/s2s-proxy"))
        r = S.run_proxy(*pre)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("config OK", r.stdout)
        # The service's user reads the config through its group; nobody else can.
        user = self.root.account("passwd", "s2s-proxy")
        as_user = subprocess.run(["setpriv", "--reuid=" + user[2], "--regid=" + user[3], "--clear-groups", *pre],
                                 capture_output=True, text=True, timeout=30)
        self.assertEqual(as_user.returncode, 0, as_user.stderr)
        as_nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *pre],
                                   capture_output=True, text=True, timeout=30)
        self.assertEqual(as_nobody.returncode, 2, "the config must not be readable by every user")
        self.assertIn("cannot read the config file: Permission denied", as_nobody.stderr)

        scratch = tempfile.mkdtemp(prefix="s2s-notify-")
        notify = Notifications(scratch)
        argv = exec_argv(value(unit, "Service", "ExecStart"), self.root.root)
        env = dict(os.environ, NOTIFY_SOCKET=notify.path)
        env.pop("S2S_PROXY_CONFIG", None)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        try:
            ready = notify.next()
            self.assertEqual(ready, "READY=1\nSTATUS=serving: 1 public and 1 local listener(s) bound")
            with socket.create_connection(("127.0.0.1", ports["s2s"]), timeout=1):
                pass  # READY=1 came once the listener accepts

            reload = exec_argv(value(unit, "Service", "ExecReload"), mainpid=proc.pid)
            with open(config, "w") as f:
                f.write(proxy_config(ports, policy="deny"))
            before = time.monotonic_ns() // 1000
            self.assertEqual(subprocess.run(reload, timeout=10).returncode, 0)
            reloading = notify.next()
            after = time.monotonic_ns() // 1000
            m = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=([0-9]+)\nSTATUS=.*", reloading or "", re.S)
            self.assertIsNotNone(m, reloading)
            self.assertTrue(before <= int(m.group(1)) <= after, (before, m.group(1), after))
            self.assertEqual(notify.next(), "READY=1\nSTATUS=reload applied: 1 change, 0 wait for a restart")

            with open(config, "w") as f:
                f.write(proxy_config(ports, policy="sometimes"))
            self.assertEqual(subprocess.run(reload, timeout=10).returncode, 0)
            self.assertTrue((notify.next() or "").startswith("RELOADING=1\n"))
            self.assertEqual(notify.next(),
                             "READY=1\nSTATUS=reload refused: 1 error in the config; the running config stays")

            proc.send_signal(signal.SIGTERM)
            stopping = notify.next()
            self.assertTrue((stopping or "").startswith("STOPPING=1\nSTATUS=SIGTERM: draining"), stopping)
            self.assertEqual(proc.wait(timeout=30), 0, proc.stderr.read())
        finally:
            S.stop(proc)
            notify.close()
            shutil.rmtree(scratch, ignore_errors=True)

    def test_3_upgrade_keeps_the_edited_config(self):
        config = self.root.path(CONFIG)
        with open(config, "w") as f:
            f.write(proxy_config({"server": 1, "s2s": 2, "local": 3, "admin": 4}))
        with open(config) as f:
            edited = f.read()
        mode = self.mode(CONFIG)
        dpkg_ok(self, self.root.dpkg("--install", self.deb))  # the same version again: an upgrade
        with open(config) as f:
            self.assertEqual(f.read(), edited)
        self.assertEqual(self.mode(CONFIG), mode)
        self.assertEqual(len([line for line in open(self.root.path("/etc/passwd")) if line.startswith("s2s-proxy:")]), 1)
        self.assertEqual(self.root.service_calls(), "")

    def test_4_remove_keeps_the_conffile_purge_removes_it(self):
        dpkg_ok(self, self.root.dpkg("--remove", "s2s-proxy"))
        left = sorted(os.path.relpath(os.path.join(d, f), self.root.root)
                      for d, _, files in os.walk(self.root.root) for f in files)
        left = [p for p in left if not re.match(r"etc/(passwd|group|shadow|gshadow)-?$|etc/\.pwd\.lock$", p)]
        self.assertEqual(left, [CONFIG.lstrip("/")], "after remove only the conffile stays")
        dpkg_ok(self, self.root.dpkg("--purge", "s2s-proxy"))
        self.assertFalse(os.path.exists(self.root.path("/etc/s2s-proxy")))
        for d in ("usr", "lib"):
            self.assertFalse(os.path.exists(self.root.path(d)), d + " left behind")
        status = subprocess.run(["dpkg-query", "--admindir=" + self.root.admin, "-W", "s2s-proxy"],
                                capture_output=True, text=True)
        self.assertNotEqual(status.returncode, 0, "dpkg still knows the package after purge")
        self.assertEqual(self.root.service_calls(), "", "a service manager command ran for another root")


if __name__ == "__main__":
    sys.exit(S.main(sys.modules[__name__]))
