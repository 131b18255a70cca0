"""Shared helpers for tests/docker: the Dockerfile, the Kubernetes manifests, Debian package
lookups, `make install` into a temporary tree, throwaway certificates, and the summary line.

Python 3 standard library, plus python3-yaml for the manifests (Debian's PyYAML).
"""
import glob
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
PROXY = os.path.join(ROOT, BUILD, "s2s-proxy")
DOCKERFILE = os.path.join(ROOT, "docker", "Dockerfile")
K8S = os.path.join(ROOT, "docker", "k8s")
EXAMPLES = os.path.join(ROOT, "config-examples")
PROSODY_DIR = os.path.join(EXAMPLES, "prosody")
SYSTEMD_DIR = os.path.join(EXAMPLES, "systemd")
PREFIX = "/usr/local"           # what docker/Dockerfile passes to make install

LOOPBACK = ("127.0.0.1", "::1", "localhost")


# --------------------------------------------------------------------------------------------
# Dockerfile

class Instruction:
    def __init__(self, keyword, args, line):
        self.keyword, self.args, self.line = keyword, args, line

    def exec_form(self):
        """The JSON array of an exec-form instruction (ENTRYPOINT, CMD), or None."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            m = re.search(r"\bCMD\s+(.*)$", text, re.S)
            if not m:
                return None
            text = m.group(1)
        text = text.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None

    def __repr__(self):
        return "%s %s (line %d)" % (self.keyword, self.args, self.line)


class Stage:
    def __init__(self, image, name, line):
        self.image, self.name, self.line = image, name, line
        self.instructions = []

    def all(self, keyword):
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword):
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self):
        """ENV values set in this stage (KEY=VALUE pairs, or the legacy `ENV KEY VALUE`)."""
        out = {}
        for i in self.all("ENV"):
            parts = shlex.split(i.args)
            if parts and "=" not in parts[0]:
                out[parts[0]] = " ".join(parts[1:])
                continue
            for p in parts:
                k, _, v = p.partition("=")
                out[k] = v
        return out


def parse_dockerfile(path=DOCKERFILE):
    """Stages of a Dockerfile with their instructions: comments dropped (also inside a
    continuation, as Docker does), continuation lines joined."""
    stages = []
    logical, start = "", 0
    with open(path) as f:
        lines = f.read().split("\n")
    entries = []
    for n, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not logical):
            continue
        if not logical:
            start = n
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        entries.append((start, logical.strip()))
        logical = ""
    if logical.strip():
        entries.append((start, logical.strip()))
    for line, text in entries:
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        args = re.sub(r"\s+", " ", args.strip()) if keyword == "RUN" else args.strip()
        if keyword == "FROM":
            m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$", args, re.I)
            if not m:
                raise ValueError("line %d: cannot parse FROM %r" % (line, args))
            stages.append(Stage(m.group(1), m.group(2), line))
        elif not stages:
            if keyword != "ARG":
                raise ValueError("line %d: %s before the first FROM" % (line, keyword))
        else:
            stages[-1].instructions.append(Instruction(keyword, args, line))
    return stages


def apt_install_packages(run_args):
    """Package names of every `apt-get install` in one RUN instruction (options dropped)."""
    packages = []
    for command in re.split(r"&&|;|\|\|", run_args):
        words = shlex.split(command)
        for k, w in enumerate(words):
            if w in ("apt-get", "apt") and "install" in words[k + 1:]:
                rest = words[words.index("install", k + 1) + 1:]
                packages += [p for p in rest if not p.startswith("-")]
                break
    return packages


def stage_apt_packages(stage):
    out = []
    for run in stage.all("RUN"):
        out += apt_install_packages(run.args)
    return out


def exposed_ports(stage):
    ports = set()
    for i in stage.all("EXPOSE"):
        for p in i.args.split():
            number, _, proto = p.partition("/")
            if proto and proto.lower() != "tcp":
                continue
            ports.add(int(number))
    return ports


# --------------------------------------------------------------------------------------------
# Debian packages

def have_dpkg():
    return shutil.which("dpkg-query") is not None and shutil.which("dpkg") is not None


def strip_arch(package):
    return package.split(":", 1)[0]


def _usrmerge_twins(path):
    out = [path]
    for a, b in (("/lib/", "/usr/lib/"), ("/lib64/", "/usr/lib64/"), ("/bin/", "/usr/bin/"), ("/sbin/", "/usr/sbin/")):
        if path.startswith(a):
            out.append(b + path[len(a):])
        elif path.startswith(b):
            out.append(a + path[len(b):])
    return out


def packages_of(paths):
    """{path: Debian package that ships it, without :arch} for many paths with one dpkg call;
    a path is looked up as given, resolved, and as its /usr-merge twin (dpkg records one of
    them only). Paths no package ships map to None."""
    candidates = {}
    for path in paths:
        cands = []
        for p in (path, os.path.realpath(path)):
            for c in _usrmerge_twins(p):
                if c not in cands:
                    cands.append(c)
        candidates[path] = cands
    every = sorted({c for cands in candidates.values() for c in cands})
    owner = {}
    for k in range(0, len(every), 200):
        r = subprocess.run(["dpkg", "-S", *every[k:k + 200]], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if line.startswith("diversion "):
                continue
            pkgs, _, owned = line.partition(": ")
            owner.setdefault(owned.strip(), strip_arch(pkgs.split(",")[0].strip()))
    return {path: next((owner[c] for c in cands if c in owner), None) for path, cands in candidates.items()}


def package_of(path):
    return packages_of([path])[path]


def _installed_packages():
    fmt = "${Package}\t${Essential}\t${Pre-Depends}\t${Depends}\t${db:Status-Abbrev}\n"
    r = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True, check=True)
    table = {}
    for line in r.stdout.splitlines():
        name, essential, pre, dep, status = (line.split("\t") + [""] * 5)[:5]
        if not status.startswith("ii"):
            continue
        table[name] = (essential == "yes", pre + ", " + dep)
    return table


def depends_closure(roots, table=None):
    """Installed packages reachable from `roots` through Depends and Pre-Depends (for an
    alternative, the first one installed)."""
    table = table if table is not None else _installed_packages()
    seen, todo = set(), [r for r in roots if r in table]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for clause in table[name][1].split(","):
            for alternative in clause.split("|"):
                dep = strip_arch(alternative.strip().split(" ")[0].split("(")[0].strip())
                if dep in table:
                    if dep not in seen:
                        todo.append(dep)
                    break
    return seen


def slim_base_packages():
    """What every debian:12-slim image holds without installing anything: Debian's minbase, the
    Essential packages and apt, with their dependencies (computed on this Debian 12 host)."""
    table = _installed_packages()
    roots = [n for n, (essential, _) in table.items() if essential] + ["apt"]
    return depends_closure(roots, table)


def is_essential(package):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Essential}", package], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "yes"


# --------------------------------------------------------------------------------------------
# Kubernetes manifests

# Files under docker/k8s that are no Kubernetes objects: Prometheus's alerting rules (a `groups:`
# file, checked by tests/cli/test_monitoring.py).
NOT_MANIFESTS = {"prometheus-rules.yaml"}


def load_manifests(directory=K8S):
    import yaml  # python3-yaml
    docs = []
    for path in sorted(glob.glob(os.path.join(directory, "*.yaml"))):
        if os.path.basename(path) in NOT_MANIFESTS:
            continue
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d is not None:
                    docs.append((os.path.basename(path), d))
    return docs


def resolve_port(container, port):
    """A probe or Service port (number or container port name) as a number, or None."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    return None


def expand_k8s(text, env):
    """Kubernetes' $(VAR) expansion in command/args: defined variables are replaced, $$ is a
    literal $, anything else is left as written."""
    out, k = [], 0
    while k < len(text):
        if text.startswith("$$", k):
            out.append("$")
            k += 2
            continue
        m = re.match(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", text[k:])
        if m and m.group(1) in env:
            out.append(env[m.group(1)])
            k += m.end()
            continue
        out.append(text[k])
        k += 1
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Prosody config: the subset our files use (name = number | "string" | true/false | { list })

def prosody_globals(text):
    """Options set in the global section of a prosody.cfg.lua (before the first VirtualHost or
    Component), as Python values; lists become Python lists."""
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    m = re.search(r"^\s*(VirtualHost|Host|Component)\b", code, re.M)
    if m:
        code = code[:m.start()]
    out = {}
    for m in re.finditer(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\{[^}]*\}|\"[^\"]*\"|'[^']*'|[^\s;]+)", code, re.M):
        name, raw = m.group(1), m.group(2)
        out[name] = _lua_value(raw)
    return out


def _lua_value(raw):
    raw = raw.strip()
    if raw.startswith("{"):
        items = []
        for dq, sq, number in re.findall(r"\"([^\"]*)\"|'([^']*)'|\b([0-9]+)\b", raw):
            items.append(int(number) if number else (dq or sq))
        return items
    if raw[0] in "\"'":
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"-?[0-9]+", raw):
        return int(raw)
    return raw


# --------------------------------------------------------------------------------------------
# Processes, ports, certificates, make install

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_proxy(binary, *args, timeout=30, env=None):
    e = dict(os.environ)
    e.pop("S2S_PROXY_CONFIG", None)
    if env:
        e.update(env)
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout, env=e)


def make_certificate(directory, domains=("example.com", "conference.example.com")):
    """A throwaway self-signed P-256 certificate and unencrypted key: tls.crt, tls.key."""
    crt, key = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
    san = ",".join("DNS:" + d for d in domains)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + domains[0],
                    "-addext", "subjectAltName=" + san], check=True, capture_output=True)
    return crt, key


def make_install(destdir, prefix=PREFIX):
    """`make install` as a user runs it, into `destdir`; returns the CompletedProcess."""
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT, "install", "BUILD=" + BUILD,
                           "DESTDIR=" + destdir, "PREFIX=" + prefix],
                          capture_output=True, text=True, timeout=1800)


def tree(directory):
    """{relative path: (mode, bytes)} of every file under `directory`."""
    out = {}
    for base, dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = (os.stat(path).st_mode & 0o7777, f.read())
    return out


# --------------------------------------------------------------------------------------------
# Summary

class _Result(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed_ids = set()
        self.subtest_failed_ids = set()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed_ids.add(test.id())

    def addSubTest(self, test, subtest, outcome):
        super().addSubTest(test, subtest, outcome)
        if outcome is not None:
            self.subtest_failed_ids.add(test.id())


def main(module):
    """Runs the module's tests; prints `docker-summary: N passed, N failed` last. Every test that
    did not pass and was not skipped counts as failed once (a failing subtest, or a setUpClass
    that failed, included)."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    total = suite.countTestCases()
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=_Result).run(suite)
    passed = len(result.passed_ids - result.subtest_failed_ids)
    skipped = len(result.skipped)
    for t, why in result.skipped:
        print("skipped: %s: %s" % (t.id(), why))
    failed = total - passed - skipped
    sys.stdout.flush()
    print("docker-summary: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1
