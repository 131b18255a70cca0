#!/usr/bin/python3
"""`make install` and docker/Dockerfile, checked without a Docker engine.

The install tree is what the image's runtime stage receives (COPY --from=build /out/ /), so:
the tree holds exactly the binary, the example configs, the Prosody plugin, the README and the
systemd unit with its sysusers.d file (for a VM; tests/docker/test_deb.py checks them); the
installed binary runs and checks every installed example; every shared library it loads comes
from a package the runtime stage installs or from the slim base image; the runtime stage
installs nothing else and no compiler or -dev package; the build stage installs exactly the
compiler and the -dev packages the sources include and link; a copy of the build context made
from the Dockerfile's COPY lines has every file the build reads; and the HEALTHCHECK, with only
what the slim image has, asks the admin endpoint's /healthz and is healthy on a 200 only.

Run: BUILD=build /usr/bin/python3 tests/docker/test_install.py   (after `make all`)
Ends with `docker-summary: N passed, N failed`.
"""
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import tomllib
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support as S  # noqa: E402

COMPILERS = re.compile(r"^(gcc|g\+\+|cpp|clang|clang\+\+|llvm|binutils|make|build-essential|cmake|ninja-build)"
                       r"(-[0-9.]+)?$")


def runtime_stage():
    return S.parse_dockerfile()[-1]


def build_stage():
    return S.parse_dockerfile()[0]


class Installed:
    """One `make install` per run, shared by the tests."""
    dir = None
    result = None

    @classmethod
    def get(cls):
        if cls.dir is None:
            cls.dir = tempfile.mkdtemp(prefix="s2s-install-")
            cls.result = S.make_install(cls.dir)
        return cls.dir, cls.result

    @classmethod
    def cleanup(cls):
        if cls.dir:
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def path(cls, *parts):
        return os.path.join(cls.get()[0], S.PREFIX.lstrip("/"), *parts)


def tearDownModule():
    Installed.cleanup()


class MakeInstall(unittest.TestCase):
    def setUp(self):
        self.dest, r = Installed.get()
        self.assertEqual(r.returncode, 0, "make install failed:\n" + r.stdout + r.stderr)

    def expected(self):
        """Relative path -> (mode, source file) of everything make install must put in the tree."""
        p = S.PREFIX.lstrip("/")
        out = {os.path.join(p, "bin/s2s-proxy"): (0o755, S.PROXY),
               os.path.join(p, "share/doc/s2s-proxy/README.md"): (0o644, os.path.join(S.ROOT, "docker/s2s-proxy.8.md"))}
        for toml in glob.glob(os.path.join(S.EXAMPLES, "*.toml")):
            out[os.path.join(p, "share/s2s-proxy/examples", os.path.basename(toml))] = (0o644, toml)
        for name in ("mod_s2s_proxy.lua", "s2s-proxy.cfg.lua", "README.md"):
            out[os.path.join(p, "share/s2s-proxy/prosody", name)] = (0o644, os.path.join(S.PROSODY_DIR, name))
        for name in ("ejabberd.yml", "ejabberd-component.yml", "inetrc", "README.md"):
            out[os.path.join(p, "share/s2s-proxy/ejabberd", name)] = (0o644, os.path.join(S.EXAMPLES, "ejabberd", name))
        # The unit's paths under /usr/local move to PREFIX: for /usr/local it is the file as written.
        out[os.path.join(p, "lib/systemd/system/s2s-proxy.service")] = (0o644, os.path.join(S.SYSTEMD_DIR, "s2s-proxy.service"))
        out[os.path.join(p, "lib/sysusers.d/s2s-proxy.conf")] = (0o644, os.path.join(S.SYSTEMD_DIR, "s2s-proxy.sysusers"))
        return out

    def test_tree_is_exactly_what_the_image_needs(self):
        got = S.tree(self.dest)
        expected = self.expected()
        self.assertEqual(sorted(got), sorted(expected), "files in the install tree")
        for rel, (mode, source) in expected.items():
            with self.subTest(file=rel):
                self.assertEqual(oct(got[rel][0]), oct(mode))
                with open(source, "rb") as f:
                    self.assertEqual(got[rel][1], f.read(), "differs from " + os.path.relpath(source, S.ROOT))

    def test_install_again_gives_the_same_tree(self):
        before = S.tree(self.dest)
        r = S.make_install(self.dest)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(S.tree(self.dest), before)

    def test_destdir_is_honoured(self):
        # Nothing outside DESTDIR: a second prefix lands under its own directory only.
        other = tempfile.mkdtemp(prefix="s2s-install-prefix-")
        try:
            r = S.make_install(other, prefix="/opt/s2s")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(os.listdir(other), ["opt"])
            self.assertTrue(os.access(os.path.join(other, "opt/s2s/bin/s2s-proxy"), os.X_OK))
        finally:
            shutil.rmtree(other, ignore_errors=True)

    def test_installed_binary_runs(self):
        r = S.run_proxy(Installed.path("bin/s2s-proxy"), "--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^s2s-proxy \d+\.\d+\.\d+")
        self.assertEqual(r.stdout, S.run_proxy(S.PROXY, "--version").stdout)

    def test_every_installed_example_checks_clean(self):
        examples = sorted(glob.glob(Installed.path("share/s2s-proxy/examples/*.toml")))
        self.assertGreaterEqual(len(examples), 4)
        for path in examples:
            with self.subTest(example=os.path.basename(path)):
                r = S.run_proxy(Installed.path("bin/s2s-proxy"), "--config", path, "--check-config")
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("config OK", r.stdout)


@unittest.skipUnless(S.have_dpkg(), "needs dpkg (Debian)")
class RuntimeLibraries(unittest.TestCase):
    def setUp(self):
        dest, r = Installed.get()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.binary = Installed.path("bin/s2s-proxy")

    def libraries(self):
        """(soname, resolved path) of every library the dynamic loader maps for the binary."""
        r = subprocess.run(["ldd", self.binary], capture_output=True, text=True, check=True)
        out = []
        for line in r.stdout.splitlines():
            line = line.strip()
            self.assertNotIn("not found", line)
            m = re.match(r"(\S+) => (\S+) \(", line) or re.match(r"(/\S+) \(", line)
            if not m:
                continue  # linux-vdso: in the kernel, no file
            out.append((m.group(1), m.group(m.lastindex)))
        return out

    def test_every_library_comes_from_a_runtime_package(self):
        libs = self.libraries()
        if any(re.search(r"lib(asan|ubsan|tsan|lsan)", soname) for soname, _ in libs):
            self.skipTest("a sanitizer build (BUILD=%s); the image is built without sanitizers" % S.BUILD)
        runtime = set(S.stage_apt_packages(runtime_stage()))
        base = S.slim_base_packages()
        self.assertGreater(len(libs), 5)
        for soname, path in libs:
            with self.subTest(library=soname):
                package = S.package_of(path)
                self.assertIsNotNone(package, "%s (%s) belongs to no Debian package" % (soname, path))
                self.assertTrue(package in runtime or package in base,
                                "%s comes from %s, which the runtime stage does not install and "
                                "debian:12-slim does not have" % (soname, package))

    def test_runtime_stage_installs_only_what_the_binary_needs(self):
        libs = self.libraries()
        if any(re.search(r"lib(asan|ubsan|tsan|lsan)", soname) for soname, _ in libs):
            self.skipTest("a sanitizer build (BUILD=%s)" % S.BUILD)
        needed = set(S.packages_of([path for _, path in libs]).values())
        with open(self.binary, "rb") as f:
            # The default trust store for remote servers' certificates (tls.cacertfile unset);
            # ca-certificates' update-ca-certificates writes it.
            if b"/etc/ssl/certs/ca-certificates.crt" in f.read():
                needed.add("ca-certificates")
        runtime = S.stage_apt_packages(runtime_stage())
        self.assertEqual(len(runtime), len(set(runtime)), "a package named twice")
        self.assertEqual(sorted(set(runtime) - needed), [], "installed in the runtime stage but not needed")
        self.assertEqual(sorted(needed - set(runtime) - S.slim_base_packages()), [], "needed but not installed")

    def test_runtime_stage_has_no_compiler_or_dev_package(self):
        for p in S.stage_apt_packages(runtime_stage()):
            with self.subTest(package=p):
                self.assertFalse(p.endswith("-dev") or p.endswith("-dbg"), p)
                self.assertIsNone(COMPILERS.match(p), p)


class DockerfileShape(unittest.TestCase):
    def setUp(self):
        self.stages = S.parse_dockerfile()

    def test_two_stages_build_on_debian12_run_on_slim(self):
        self.assertEqual(len(self.stages), 2)
        build, runtime = self.stages
        self.assertEqual(build.image, "debian:12")
        self.assertTrue(build.name, "the build stage needs a name for COPY --from")
        self.assertEqual(runtime.image, "debian:12-slim")
        copies = [c for c in runtime.all("COPY") if "--from=" in c.args]
        self.assertEqual([c.args for c in copies], ["--from=%s /out/ /" % build.name])
        runs = " && ".join(r.args for r in build.all("RUN"))
        self.assertRegex(runs, r"\bmake (-j\S*\s+)?all\b")
        self.assertIn("make install DESTDIR=/out PREFIX=%s" % S.PREFIX, runs)

    def test_user_is_a_fixed_non_root_uid(self):
        runtime = self.stages[-1]
        user = runtime.last("USER")
        self.assertIsNotNone(user, "no USER: the image would run as root")
        self.assertRegex(user.args, r"^[0-9]+(:[0-9]+)?$", "numeric, so Kubernetes can check runAsNonRoot")
        uid = int(user.args.split(":")[0])
        self.assertNotEqual(uid, 0)
        self.assertEqual(uid, 10001)
        runs = " ".join(r.args for r in runtime.all("RUN"))
        self.assertRegex(runs, r"useradd\b[^&]*--uid %d\b" % uid)
        # USER comes after everything that needs root.
        self.assertGreater(user.line, max(i.line for i in runtime.all("RUN") + runtime.all("COPY")))

    def test_entrypoint_config_and_ports(self):
        runtime = self.stages[-1]
        entry = runtime.last("ENTRYPOINT").exec_form()
        self.assertEqual(entry, [S.PREFIX + "/bin/s2s-proxy"])
        self.assertTrue(os.access(Installed.path("bin/s2s-proxy"), os.X_OK), "ENTRYPOINT is not in the install tree")
        self.assertEqual(runtime.env().get("S2S_PROXY_CONFIG"), "/etc/s2s-proxy/s2s-proxy.toml")
        self.assertIsNone(runtime.last("CMD"), "no default CMD: arguments given to the container go to s2s-proxy")
        # EXPOSE = the s2s-proxy container's ports in docker/k8s = the public listeners there and
        # the admin endpoint's port.
        exposed = S.exposed_ports(runtime)
        deployment = next(d for _, d in S.load_manifests() if d.get("kind") == "Deployment")
        proxy = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "s2s-proxy")
        self.assertEqual(exposed, {p["containerPort"] for p in proxy["ports"]})
        cm = next(d for _, d in S.load_manifests() if d.get("kind") == "ConfigMap" and "s2s-proxy.toml" in d["data"])
        toml = tomllib.loads(cm["data"]["s2s-proxy.toml"])
        admin_port = int(toml["admin"]["listen"].rsplit(":", 1)[1])
        self.assertEqual(exposed, {l["port"] for l in toml["listen"]["s2s"]} | {admin_port})

    def healthcheck(self):
        hc = self.stages[-1].last("HEALTHCHECK")
        self.assertIsNotNone(hc, "no HEALTHCHECK (if on purpose, say so and drop this test)")
        argv = hc.exec_form()
        self.assertIsNotNone(argv, "exec form: no /bin/sh -c wrapper")
        return argv

    def run_healthcheck(self, port):
        """Exit status of the HEALTHCHECK command with the admin port set to `port`."""
        env = dict(os.environ, S2S_PROXY_ADMIN_PORT=str(port))
        return subprocess.run(self.healthcheck(), env=env, capture_output=True, timeout=15).returncode

    def test_healthcheck_needs_nothing_the_slim_image_lacks(self):
        argv = self.healthcheck()
        tool = argv[0]
        if tool != S.PREFIX + "/bin/s2s-proxy":
            self.assertIn(tool, ("bash", "/bin/bash", "/usr/bin/bash"), "only bash or s2s-proxy itself")
            if S.have_dpkg():
                self.assertTrue(S.is_essential(S.package_of(shutil.which("bash"))), "bash is Essential")
        text = " ".join(argv)
        default = re.search(r"/dev/tcp/127\.0\.0\.1/\$\{S2S_PROXY_ADMIN_PORT:-([0-9]+)\}", text)
        self.assertIsNotNone(default, argv)
        self.assertIn(int(default.group(1)), S.exposed_ports(self.stages[-1]))
        self.assertIn("GET /healthz HTTP/1.1", text)
        # The default port is where the binary's admin endpoint listens unless configured
        # (--help lists every key with its default).
        r = S.run_proxy(Installed.path("bin/s2s-proxy"), "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^\s*admin\.enabled = true\s")
        self.assertRegex(r.stdout, r'(?m)^\s*admin\.listen = "127\.0\.0\.1:%s"\s' % default.group(1))

    def test_healthcheck_command_tells_up_from_down(self):
        listen, local, server, admin = S.free_port(), S.free_port(), S.free_port(), S.free_port()
        proc = subprocess.Popen(
            [Installed.path("bin/s2s-proxy"), "--config", Installed.path("share/s2s-proxy/examples/prosody-sidecar.toml"),
             "--listen.s2s.0.port=%d" % listen, "--listen.s2s.0.ip_address=127.0.0.1",
             "--listen.local.0.port=%d" % local, "--local.server=127.0.0.1:%d" % server,
             "--admin.listen=127.0.0.1:%d" % admin],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            self.assertTrue(S.wait_for_port(admin, proc=proc), "s2s-proxy did not start")
            self.assertEqual(self.run_healthcheck(admin), 0, "healthy: /healthz answers 200")
            # Healthy does not depend on the local server (that is readiness, /readyz).
            # Something that accepts TCP but does not answer HTTP 200 is not healthy: the s2s listener.
            self.assertNotEqual(self.run_healthcheck(listen), 0, "a TCP connect alone must not pass")
        finally:
            S.stop(proc)
        self.assertNotEqual(self.run_healthcheck(admin), 0, "s2s-proxy stopped: unhealthy")

    def test_healthcheck_wants_a_200_status_line(self):
        """Against a stand-in HTTP server: only `HTTP/1.1 200` is healthy; another status, no
        answer at all or a closed connection is not."""
        cases = [(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n", 0),
                 (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", 1),
                 (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 1),
                 (b"HTTP/1.1 2000 OK\r\n\r\n", 1),
                 (b"", 1),      # closes without a word
                 (None, 1)]     # reads the request and never answers (the command's own timeout)
        for answer, healthy_exit in cases:
            with self.subTest(answer=answer):
                with socket.create_server(("127.0.0.1", 0)) as srv:
                    srv.settimeout(10)
                    request = []

                    def serve():
                        try:
                            conn, _ = srv.accept()
                        except OSError:
                            return
                        with conn:
                            conn.settimeout(10)
                            data = b""
                            try:
                                while b"\r\n\r\n" not in data:
                                    chunk = conn.recv(4096)
                                    if not chunk:
                                        break
                                    data += chunk
                                request.append(data)
                                if answer is None:
                                    conn.recv(1)  # until the client gives up
                                else:
                                    conn.sendall(answer)
                            except OSError:
                                pass

                    t = threading.Thread(target=serve, daemon=True)
                    t.start()
                    rc = self.run_healthcheck(srv.getsockname()[1])
                    t.join(15)
                self.assertEqual(rc != 0, healthy_exit != 0, "exit %d" % rc)
                self.assertTrue(request and request[0].startswith(b"GET /healthz HTTP/1.1\r\n"), request)


@unittest.skipUnless(S.have_dpkg(), "needs dpkg (Debian)")
class BuildStage(unittest.TestCase):
    """The build context the Dockerfile's COPY lines make, rebuilt here from the repository."""

    @classmethod
    def setUpClass(cls):
        cls.stage = build_stage()
        cls.ctx = tempfile.mkdtemp(prefix="s2s-docker-ctx-")
        workdir = "/"
        for i in cls.stage.instructions:
            if i.keyword == "WORKDIR":
                workdir = os.path.join(workdir, i.args)
            if i.keyword != "COPY" or "--from" in i.args:
                continue
            *sources, dest = shlex.split(i.args)
            dest_abs = os.path.join(cls.ctx, os.path.join(workdir, dest).lstrip("/"))
            for src in sources:
                path = os.path.join(S.ROOT, src)
                if not os.path.exists(path):
                    raise AssertionError("COPY %s: no such file in the repository" % src)
                if os.path.isdir(path):  # COPY dir/ dest/ copies the directory's contents
                    shutil.copytree(path, dest_abs, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.o", "*.d"))
                else:
                    target = dest_abs if not dest.endswith("/") else os.path.join(dest_abs, os.path.basename(src))
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copy2(path, target)
        cls.src = os.path.join(cls.ctx, workdir.lstrip("/"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.ctx, ignore_errors=True)

    def sources(self):
        return sorted(glob.glob(os.path.join(self.src, "common/**/*.cpp"), recursive=True)
                      + glob.glob(os.path.join(self.src, "proxy/**/*.cpp"), recursive=True)
                      + glob.glob(os.path.join(self.src, "tests/unit/**/*.cpp"), recursive=True))

    def test_context_has_every_file_make_all_install_reads(self):
        r = subprocess.run(["make", "-n", "--no-print-directory", "all", "install", "DESTDIR=/out", "PREFIX=" + S.PREFIX],
                           cwd=self.src, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        for line in r.stdout.replace("\\\n", " ").splitlines():
            words = shlex.split(line)
            if words[:2] != ["install", "-m"]:
                continue
            for src in words[3:-1]:
                if src.startswith("build/"):
                    continue  # made by the build itself
                with self.subTest(file=src):
                    self.assertTrue(glob.glob(os.path.join(self.src, src)), "make install reads %s; no COPY brings it" % src)

    def headers(self):
        """System headers the sources include, by preprocessing each in the copied context."""
        found = set()
        for src in self.sources():
            r = subprocess.run(["g++", "-std=c++17", "-I.", "-M", os.path.relpath(src, self.src)],
                               cwd=self.src, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, "%s does not preprocess in the image's build context:\n%s"
                             % (os.path.relpath(src, self.src), r.stderr[-2000:]))
            for word in r.stdout.replace("\\\n", " ").split():
                if word.startswith("/"):
                    found.add(os.path.realpath(word))
        return found

    def test_build_packages_are_the_compiler_and_the_needed_dev_packages(self):
        installed = set(S.stage_apt_packages(self.stage))
        toolchain = S.depends_closure(["g++"])  # libstdc++-12-dev, libc6-dev, linux-libc-dev, binutils...
        needed = {"g++", "make"}
        headers = [h for h in self.headers() if not h.startswith(self.ctx)]
        for header, package in S.packages_of(headers).items():
            if package and package not in toolchain:
                needed.add(package)
        # Libraries linked (the Makefile's LIBS): their -dev package has the lib*.so link.
        with open(os.path.join(S.ROOT, "Makefile")) as f:
            libs = re.search(r"^LIBS\s*:?=\s*(.*)$", f.read(), re.M).group(1).split()
        multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
        for flag in libs:
            name = flag[2:]
            so = os.path.join("/usr/lib", multiarch, "lib%s.so" % name)
            package = S.package_of(so)
            self.assertIsNotNone(package, "no package has %s" % so)
            needed.add(package)
        self.assertEqual(sorted(installed - needed), [], "installed in the build stage, not needed")
        self.assertEqual(sorted(needed - installed), [], "needed by the build, not installed")
        for p in installed:
            self.assertTrue(p in ("g++", "make") or p.endswith("-dev"), p)


if __name__ == "__main__":
    sys.exit(S.main(sys.modules[__name__]))
