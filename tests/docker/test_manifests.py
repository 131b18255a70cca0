#!/usr/bin/python3
"""docker/k8s: the manifests agree with each other, with the image and with the binary.

Parses every manifest (python3-yaml) and checks: the kinds; that the container ports, the
Service and the listeners in the ConfigMap's s2s-proxy TOML name the same ports; that the
probes are httpGet /healthz and /readyz on the admin port the TOML's [admin] listen opens on
the pod address (and the Service leaves out); that the TOML passes `s2s-proxy --check-config`
with the container's own environment and arguments (the dialback secret expanded the way
Kubernetes does, throwaway certificates where the TLS Secret is mounted); that s2s-proxy
started that way answers the probes' paths over HTTP (/readyz 503 without Prosody's listener,
200 with it), serves /metrics, and speaks TLS on its public ports; that Prosody's config points at the same local ports and loads the plugin
from where the init container puts it; that the Secret template fails closed; resources and
security settings. docker/k8s/dns-redirect (any server, redirected by the pod's DNS): the pod's
only nameserver is the responder on 127.0.0.1:53, bindable without root through the pod's sysctl;
it forwards to the cluster DNS, never to itself; its TOML checks clean, and s2s-proxy started on
it answers a remote domain's SRV with [[listen.local]] and relays other names' answers.

Run: BUILD=build /usr/bin/python3 tests/docker/test_manifests.py
Ends with `docker-summary: N passed, N failed`.
"""
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import tomllib
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import support as S  # noqa: E402

try:
    import yaml  # noqa: F401
    HAVE_YAML = True
except ImportError:  # python3-yaml
    HAVE_YAML = False

# Dialback secrets that TOML would read as something other than a string if passed bare.
AWKWARD_SECRETS = ["1234567890123456", "true", "1979-05-27", "1e5", "0x1f", "inf", "f" * 64]


def http_get(port, path, timeout=5):
    """(status, body) of GET http://127.0.0.1:port/path; error statuses are answers too."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def walk(value, path=""):
    """(dotted key, value) of every leaf of a TOML document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, path + "." + k if path else k)
    elif isinstance(value, list):
        for n, v in enumerate(value):
            yield from walk(v, "%s.%d" % (path, n))
    else:
        yield path, value


class Pod(unittest.TestCase):
    """The manifests of DIRECTORY, read once per class: docs, by_kind, deployment, pod,
    containers by name, proxy (the s2s-proxy container), the ConfigMap holding s2s-proxy's TOML
    (toml_cm, toml_key, toml_text, toml), and throwaway certificates for its domains in tmp."""
    DIRECTORY = S.K8S

    @classmethod
    def setUpClass(cls):
        if not HAVE_YAML:  # a failure, not a skip: the whole suite would vanish unnoticed
            raise AssertionError("python3-yaml is missing (it belongs in the Makefile's DEB_PACKAGES)")
        cls.docs = S.load_manifests(cls.DIRECTORY)
        cls.by_kind = {}
        for _, d in cls.docs:
            cls.by_kind.setdefault(d.get("kind"), []).append(d)
        cls.deployment = cls.by_kind["Deployment"][0]
        cls.pod = cls.deployment["spec"]["template"]["spec"]
        cls.containers = {c["name"]: c for c in cls.pod["containers"]}
        cls.proxy = cls.containers["s2s-proxy"]
        cls.cms = {c["metadata"]["name"]: c for c in cls.by_kind["ConfigMap"]}
        cls.toml_cm, cls.toml_key = next((c, k) for c in cls.cms.values() for k in c["data"] if k.endswith(".toml"))
        cls.toml_text = cls.toml_cm["data"][cls.toml_key]
        cls.toml = tomllib.loads(cls.toml_text)
        cls.tmp = tempfile.mkdtemp(prefix="s2s-k8s-")
        cls.crt, cls.key = S.make_certificate(cls.tmp, tuple(cls.toml["general"]["hosts"]))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)


class K8s(Pod):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        by = cls.by_kind
        cls.prosody = cls.containers["prosody"]
        cls.volumes = {v["name"]: v for v in cls.pod["volumes"]}
        cls.service = by["Service"][0]
        cls.secrets = {s["metadata"]["name"]: s for s in by["Secret"]}
        cls.prosody_cm, cls.prosody_key = next((c, k) for c in cls.cms.values() for k in c["data"]
                                               if k.endswith(".cfg.lua"))
        cls.prosody_text = cls.prosody_cm["data"][cls.prosody_key]
        cls.prosody_cfg = S.prosody_globals(cls.prosody_text)

    # ---- helpers ------------------------------------------------------------------------------

    def public_listeners(self):
        return [l for l in self.toml["listen"]["s2s"] if l.get("ip_address", "0.0.0.0") not in S.LOOPBACK]

    def admin_address(self):
        """(ip, port) of the TOML's [admin] listen; the binary's default address when unset."""
        admin = self.toml.get("admin", {})
        self.assertIsNot(admin.get("enabled", True), False, "the probes need the admin endpoint")
        ip, _, port = admin.get("listen", "127.0.0.1:9269").rpartition(":")
        return ip.strip("[]"), int(port)

    def mount_of(self, container, predicate):
        """(mountPath, volume) of the container's mount whose volume satisfies predicate."""
        for m in container.get("volumeMounts", []):
            v = self.volumes[m["name"]]
            if predicate(v):
                return m, v
        return None, None

    def tls_mount(self):
        m, v = self.mount_of(self.proxy, lambda v: "secret" in v and
                             self.secrets.get(v["secret"]["secretName"], {}).get("type") == "kubernetes.io/tls")
        self.assertIsNotNone(m, "s2s-proxy mounts no kubernetes.io/tls Secret")
        return m, v

    def config_path(self):
        env = {e["name"]: e.get("value") for e in self.proxy.get("env", [])}
        image_default = S.parse_dockerfile()[-1].env().get("S2S_PROXY_CONFIG")
        return env.get("S2S_PROXY_CONFIG", image_default)

    def toml_with_test_certificates(self):
        """The ConfigMap's TOML with the TLS Secret's mount path pointing at throwaway files."""
        mount, _ = self.tls_mount()
        prefix = mount["mountPath"].rstrip("/") + "/"
        text = self.toml_text.replace(prefix, self.tmp + "/")
        path = os.path.join(self.tmp, self.toml_key)
        with open(path, "w") as f:
            f.write(text)
        return path

    def proxy_args(self, shared):
        """The container's args as Kubernetes expands them, with `shared` as the Secret's value."""
        env = {}
        for e in self.proxy.get("env", []):
            if "value" in e:
                env[e["name"]] = S.expand_k8s(e["value"], env)
            elif "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]
                self.assertEqual(ref["key"], "shared")
                env[e["name"]] = shared
        self.assertNotIn("command", self.proxy, "the image's ENTRYPOINT is the command")
        return [S.expand_k8s(a, env) for a in self.proxy.get("args", [])]

    # ---- kinds and wiring ---------------------------------------------------------------------

    def test_kinds(self):
        kinds = sorted((f, d.get("kind")) for f, d in self.docs)
        self.assertEqual(kinds, [("configmap.yaml", "ConfigMap"), ("configmap.yaml", "ConfigMap"),
                                 ("deployment.yaml", "Deployment"), ("kustomization.yaml", "Kustomization"),
                                 ("secret.yaml", "Secret"), ("secret.yaml", "Secret"), ("service.yaml", "Service")])
        for f, d in self.docs:
            if d["kind"] != "Kustomization":
                with self.subTest(file=f, kind=d["kind"]):
                    self.assertIn("apiVersion", d)
                    self.assertTrue(d["metadata"]["name"])
        kustomization = self.by_kind["Kustomization"][0]
        for r in kustomization["resources"]:
            self.assertTrue(os.path.exists(os.path.join(S.K8S, r)), r)
        self.assertNotIn("secret.yaml", kustomization["resources"], "the template must not be applied as is")

    def test_one_pod_two_containers(self):
        self.assertEqual(sorted(self.containers), ["prosody", "s2s-proxy"])
        self.assertTrue(self.prosody["image"].startswith("prosody/prosody:0.12"), self.prosody["image"])
        labels = self.deployment["spec"]["template"]["metadata"]["labels"]
        for k, v in self.deployment["spec"]["selector"]["matchLabels"].items():
            self.assertEqual(labels.get(k), v)
        for k, v in self.service["spec"]["selector"].items():
            self.assertEqual(labels.get(k), v, "the Service selects the pod")

    def test_ports_agree(self):
        public = {l["port"] for l in self.public_listeners()}
        self.assertEqual(public, {5269, 5270})
        admin = self.admin_address()[1]
        self.assertNotIn(admin, public)
        container = {p["containerPort"] for p in self.proxy["ports"]}
        self.assertEqual(container, public | {admin},
                         "s2s-proxy's container ports = its public [[listen.s2s]] ports and [admin] listen's port")
        self.assertEqual(container, S.exposed_ports(S.parse_dockerfile()[-1]), "= the image's EXPOSE")
        self.assertNotIn(admin, {S.resolve_port(self.proxy, p.get("targetPort", p["port"])) for p in self.service["spec"]["ports"]},
                         "the admin endpoint is not public")
        self.assertNotIn(admin, {p["port"] for p in self.service["spec"]["ports"]})
        for p in self.service["spec"]["ports"]:
            with self.subTest(service_port=p["port"]):
                target = S.resolve_port(self.proxy, p.get("targetPort", p["port"]))
                self.assertIn(target, public)
                self.assertEqual(p["port"], target, "remote servers reach the port DNS SRV names")
        self.assertEqual({S.resolve_port(self.proxy, p["targetPort"]) for p in self.service["spec"]["ports"]}, public)
        loopback = {l["port"] for l in self.toml["listen"]["local"]}
        self.assertFalse(loopback & container, "the local listener stays inside the pod")

    def test_probes_ask_the_admin_endpoint(self):
        ip, admin = self.admin_address()
        # kubelet connects to the pod IP, which is not known in advance: the wildcard address. An
        # admin endpoint on loopback (the default) would fail every probe.
        self.assertIn(ip, ("0.0.0.0", "::"), "[admin] listen must be on the pod's address")
        for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            with self.subTest(container="s2s-proxy", probe=kind):
                probe = self.proxy.get(kind)
                self.assertIsNotNone(probe)
                self.assertEqual(sorted(k for k in probe if k in ("httpGet", "tcpSocket", "exec", "grpc")), ["httpGet"])
                get = probe["httpGet"]
                self.assertEqual(get["path"], path)
                self.assertEqual(get.get("scheme", "HTTP"), "HTTP")
                self.assertNotIn("host", get, "kubelet must ask the pod IP")
                self.assertIsInstance(get["port"], str, "a named container port")
                self.assertEqual(S.resolve_port(self.proxy, get["port"]), admin, "the port [admin] listen opens")
                # /readyz waits up to 2 s for the local server before it answers 503.
                self.assertGreaterEqual(probe.get("timeoutSeconds", 1), 3)
        annotations = self.deployment["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            self.assertEqual(int(annotations["prometheus.io/port"]), admin)
            self.assertEqual(annotations.get("prometheus.io/path", "/metrics"), "/metrics")
        local_port = int(self.toml["local"]["server"].rsplit(":", 1)[1])
        ready = self.prosody["readinessProbe"]["exec"]["command"]
        m = re.search(r"/dev/tcp/127\.0\.0\.1/([0-9]+)", " ".join(ready))
        self.assertIsNotNone(m, ready)
        self.assertEqual(int(m.group(1)), local_port, "Prosody is ready when [local] server accepts")
        live = S.resolve_port(self.prosody, self.prosody["livenessProbe"]["tcpSocket"]["port"])
        self.assertIn(live, [p["containerPort"] for p in self.prosody["ports"]])
        self.assertIn(live, self.prosody_cfg.get("c2s_ports", [5222]))

    def test_toml_is_what_the_sidecar_needs(self):
        t = self.toml
        self.assertEqual(t["local"]["server"], "127.0.0.1:15269")
        self.assertEqual([(l["ip_address"], l["port"]) for l in t["listen"]["local"]], [("127.0.0.1", 15270)])
        modes = {l["port"]: (l.get("ip_address"), l["tls"]["mode"]) for l in t["listen"]["s2s"]}
        self.assertEqual(modes, {5269: ("0.0.0.0", "starttls"), 5270: ("0.0.0.0", "tls")})
        self.assertNotIn("shared", t.get("s2s", {}), "the dialback secret comes from the Secret, not the ConfigMap")
        self.assertEqual(t["admin"], {"listen": "0.0.0.0:9269"})

    def test_config_file_is_where_s2s_proxy_reads_it(self):
        mount, volume = self.mount_of(self.proxy, lambda v: v.get("configMap", {}).get("name") == self.toml_cm["metadata"]["name"])
        self.assertIsNotNone(mount, "s2s-proxy does not mount its ConfigMap")
        path = mount["mountPath"] if "subPath" in mount else os.path.join(mount["mountPath"], self.toml_key)
        self.assertEqual(self.config_path(), path)

    def test_certificate_paths_point_into_the_tls_secret(self):
        mount, volume = self.tls_mount()
        secret = self.secrets[volume["secret"]["secretName"]]
        keys = set(secret["stringData"])
        files = [(k, v) for k, v in walk(self.toml) if re.search(r"(certfile|keyfile)$", k)]
        self.assertGreaterEqual(len(files), 6)
        for key, path in files:
            with self.subTest(key=key):
                self.assertEqual(os.path.dirname(path), mount["mountPath"].rstrip("/"))
                self.assertIn(os.path.basename(path), keys)
        self.assertEqual(volume["secret"].get("defaultMode"), 0o440)
        self.assertEqual(self.pod["securityContext"]["fsGroup"], self.proxy["securityContext"]["runAsGroup"],
                         "mode 0440 is readable through the group only")

    def test_secret_wiring(self):
        refs = [e["valueFrom"]["secretKeyRef"] for c in self.pod["containers"] for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})]
        self.assertTrue(refs)
        for ref in refs:
            self.assertIn(ref["key"], self.secrets[ref["name"]]["stringData"])
        for v in self.volumes.values():
            if "secret" in v:
                secret = self.secrets[v["secret"]["secretName"]]
                for item in v["secret"].get("items", []):
                    self.assertIn(item["key"], secret["stringData"])
        tls = [s for s in self.secrets.values() if s.get("type") == "kubernetes.io/tls"]
        self.assertEqual(len(tls), 1)
        self.assertEqual(set(tls[0]["stringData"]), {"tls.crt", "tls.key"})

    def test_resources_and_security(self):
        for c in self.pod.get("initContainers", []) + self.pod["containers"]:
            with self.subTest(container=c["name"]):
                for what in ("requests", "limits"):
                    self.assertEqual(set(c["resources"][what]), {"cpu", "memory"})
        uid = int(S.parse_dockerfile()[-1].last("USER").args.split(":")[0])
        for c in [self.proxy] + [c for c in self.pod.get("initContainers", []) if c["image"] == self.proxy["image"]]:
            with self.subTest(container=c["name"]):
                sc = c["securityContext"]
                self.assertTrue(sc["runAsNonRoot"])
                self.assertEqual(sc["runAsUser"], uid, "the image's USER")
                self.assertTrue(sc["readOnlyRootFilesystem"])
                self.assertFalse(sc["allowPrivilegeEscalation"])
                self.assertEqual(sc["capabilities"]["drop"], ["ALL"])

    # ---- the binary on the ConfigMap's TOML ---------------------------------------------------

    def test_configmap_toml_checks_clean_with_the_containers_arguments(self):
        path = self.toml_with_test_certificates()
        for shared in AWKWARD_SECRETS + [os.urandom(32).hex()]:
            with self.subTest(shared=shared):
                r = S.run_proxy(S.PROXY, "--check-config", *self.proxy_args(shared), env={"S2S_PROXY_CONFIG": path})
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("config OK", r.stdout)
                printed = S.run_proxy(S.PROXY, "--print-config", *self.proxy_args(shared), env={"S2S_PROXY_CONFIG": path})
                self.assertIn('shared = "********"', printed.stdout)
                if len(shared) >= 16:
                    self.assertNotIn(shared, printed.stdout + printed.stderr, "the secret is never printed")

    def test_secret_template_fails_closed(self):
        path = self.toml_with_test_certificates()
        dialback = next(s for s in self.secrets.values() if "shared" in s.get("stringData", {}))
        r = S.run_proxy(S.PROXY, "--check-config", *self.proxy_args(dialback["stringData"]["shared"]),
                        env={"S2S_PROXY_CONFIG": path})
        self.assertEqual(r.returncode, 2, "the template's placeholder must not be a usable secret")
        self.assertIn("s2s.shared", r.stderr)
        # The PEM placeholders do not parse either.
        tls = next(s for s in self.secrets.values() if s.get("type") == "kubernetes.io/tls")
        bad = os.path.join(self.tmp, "template")
        os.makedirs(bad, exist_ok=True)
        for k, v in tls["stringData"].items():
            with open(os.path.join(bad, k), "w") as f:
                f.write(v)
        mount, _ = self.tls_mount()
        bad_toml = os.path.join(bad, "s2s.toml")
        with open(bad_toml, "w") as f:
            f.write(self.toml_text.replace(mount["mountPath"].rstrip("/") + "/", bad + "/"))
        r = S.run_proxy(S.PROXY, "--check-config", *self.proxy_args(os.urandom(8).hex()), env={"S2S_PROXY_CONFIG": bad_toml})
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)

    def test_started_as_in_the_pod_it_answers_the_probes(self):
        """s2s-proxy with the ConfigMap's TOML and the container's args (ports moved to free ones
        on loopback): the probes' paths answer over HTTP on the admin port (/healthz 200; /readyz
        503 while nothing listens on [local] server, 200 once something does), /metrics serves
        Prometheus text, the STARTTLS listener offers STARTTLS and the direct-TLS one completes a
        handshake with the Secret's certificate."""
        path = self.toml_with_test_certificates()
        remap, overrides = {}, []
        for n, l in enumerate(self.toml["listen"]["s2s"]):
            remap[l["port"]] = S.free_port()
            overrides += ["--listen.s2s.%d.port=%d" % (n, remap[l["port"]]), "--listen.s2s.%d.ip_address=127.0.0.1" % n]
        for n, l in enumerate(self.toml["listen"]["local"]):
            overrides.append("--listen.local.%d.port=%d" % (n, S.free_port()))
        local_server = S.free_port()
        overrides.append("--local.server=127.0.0.1:%d" % local_server)
        admin = self.admin_address()[1]
        remap[admin] = S.free_port()
        overrides.append("--admin.listen=127.0.0.1:%d" % remap[admin])
        env = dict(os.environ, S2S_PROXY_CONFIG=path)
        proc = subprocess.Popen([S.PROXY, *self.proxy_args(os.urandom(32).hex()), *overrides], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            probe = {kind: (remap[S.resolve_port(self.proxy, self.proxy[kind]["httpGet"]["port"])],
                            self.proxy[kind]["httpGet"]["path"]) for kind in ("livenessProbe", "readinessProbe")}
            port = probe["livenessProbe"][0]
            self.assertTrue(S.wait_for_port(port, proc=proc), "nothing accepts on the admin port %d" % port)
            # kubelet: 200-399 is success, anything else a failure.
            self.assertEqual(http_get(*probe["livenessProbe"]), (200, "ok\n"))
            status, body = http_get(*probe["readinessProbe"])
            self.assertEqual(status, 503, "ready although nothing listens on [local] server")
            self.assertIn("local server", body)
            with socket.create_server(("127.0.0.1", local_server)):  # Prosody's s2s listener
                self.assertEqual(http_get(*probe["readinessProbe"]), (200, "ready\n"))
            status, body = http_get(port, "/metrics")
            self.assertEqual(status, 200)
            self.assertIn("\ns2s_proxy_up 1\n", "\n" + body)
            with open(self.crt) as f:
                expected_der = ssl.PEM_cert_to_DER_cert(f.read())
            for l in self.toml["listen"]["s2s"]:
                port = remap[l["port"]]
                with self.subTest(listener=l["port"], mode=l["tls"]["mode"]):
                    self.assertTrue(S.wait_for_port(port, proc=proc))
                    if l["tls"]["mode"] == "tls":
                        ctx = ssl.create_default_context()
                        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                            with ctx.wrap_socket(raw, server_hostname=self.toml["general"]["hosts"][0]) as tls:
                                self.assertEqual(tls.getpeercert(binary_form=True), expected_der)
                    else:
                        self.assertIn("urn:ietf:params:xml:ns:xmpp-tls", self.stream_features(port))
        finally:
            S.stop(proc)
            err = proc.stderr.read()
        self.assertEqual(proc.returncode, 0, err)

    def stream_features(self, port):
        header = ("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                  "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
                  "from='remote.test' to='%s' version='1.0'>" % self.toml["general"]["hosts"][0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(header.encode())
            data = b""
            while b"</stream:features>" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.decode(errors="replace")

    # ---- Prosody --------------------------------------------------------------------------------

    def test_prosody_points_at_the_same_local_ports(self):
        p, t = self.prosody_cfg, self.toml
        host, port = t["local"]["server"].rsplit(":", 1)
        local = t["listen"]["local"][0]
        self.assertEqual(p["s2s_proxy_port"], local["port"], "s2s_proxy_port = [[listen.local]] port")
        self.assertEqual(p.get("s2s_proxy_address", "127.0.0.1"), local.get("ip_address", "127.0.0.1"))
        self.assertEqual(p["s2s_ports"], [int(port)], "s2s_ports = [local] server port")
        self.assertEqual(p["s2s_interfaces"], [host])
        self.assertEqual(p.get("s2s_direct_tls_ports", []), [])
        self.assertIs(p["s2s_require_encryption"], False)
        self.assertIs(p["s2s_secure_auth"], False)
        self.assertIn("s2s_proxy", p["modules_enabled"])
        self.assertIn("dialback", p["modules_enabled"])
        mount, _ = self.mount_of(self.prosody, lambda v: v.get("configMap", {}).get("name") == self.prosody_cm["metadata"]["name"])
        self.assertEqual((mount["mountPath"], mount.get("subPath")), ("/etc/prosody/prosody.cfg.lua", self.prosody_key))

    def test_plugin_reaches_prosody(self):
        init = self.pod["initContainers"]
        self.assertEqual(len(init), 1)
        init = init[0]
        self.assertEqual(init["image"], self.proxy["image"], "the plugin comes with the proxy it belongs to")
        cmd = init["command"]
        self.assertEqual(cmd[0], "cp")
        source, dest = cmd[1], cmd[2]
        self.assertEqual(source, S.PREFIX + "/share/s2s-proxy/prosody/mod_s2s_proxy.lua")
        dest_dir = dest.rstrip("/")
        init_mount = next(m for m in init["volumeMounts"] if m["mountPath"].rstrip("/") == dest_dir)
        prosody_mount = next(m for m in self.prosody["volumeMounts"] if m["name"] == init_mount["name"])
        self.assertIn(prosody_mount["mountPath"], self.prosody_cfg["plugin_paths"])
        # And make install really puts the plugin at that path.
        dest_root = tempfile.mkdtemp(prefix="s2s-k8s-install-")
        try:
            r = S.make_install(dest_root)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(os.path.join(dest_root, source.lstrip("/")), "rb") as a, \
                    open(os.path.join(S.PROSODY_DIR, "mod_s2s_proxy.lua"), "rb") as b:
                self.assertEqual(a.read(), b.read())
        finally:
            shutil.rmtree(dest_root, ignore_errors=True)

    @unittest.skipUnless(shutil.which("prosodyctl"), "needs prosodyctl (Debian's prosody)")
    def test_prosody_config_checks_clean(self):
        # prosodyctl insists that the prosody user can read the config (as in the container).
        d = os.path.join(self.tmp, "prosody")
        os.makedirs(os.path.join(d, "certs"), exist_ok=True)
        os.chmod(self.tmp, 0o755)
        os.chmod(d, 0o755)
        text = self.prosody_text
        for path in self.prosody_cfg["plugin_paths"]:
            text = text.replace('"%s"' % path, '"%s"' % S.PROSODY_DIR)
        cfg = os.path.join(d, "prosody.cfg.lua")
        with open(cfg, "w") as f:
            f.write(text)
        r = subprocess.run(["prosodyctl", "--config", cfg, "check", "config"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("All checks passed", r.stdout)

    @unittest.skipUnless(shutil.which("kubectl"), "needs kubectl")
    def test_kustomize_builds(self):
        r = subprocess.run(["kubectl", "kustomize", S.K8S], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        import yaml
        kinds = sorted(d["kind"] for d in yaml.safe_load_all(r.stdout) if d)
        self.assertEqual(kinds, ["ConfigMap", "ConfigMap", "Deployment", "Service"])


class K8sDnsRedirect(Pod):
    """docker/k8s/dns-redirect: any server whose only redirect is the pod's DNS. The pod's
    resolv.conf names s2s-proxy's responder on 127.0.0.1:53, which the non-root s2s-proxy may bind
    thanks to the pod's sysctl; the responder forwards to the cluster DNS, never to itself; the
    TOML passes --check-config, and s2s-proxy started on it (ports moved to free ones, a stand-in
    upstream on loopback) answers a remote domain's SRV with its [[listen.local]] and relays the
    upstream's answer for any other name."""

    DIRECTORY = os.path.join(S.K8S, "dns-redirect")

    def test_kinds_and_the_shared_service(self):
        kinds = sorted((f, d.get("kind")) for f, d in self.docs)
        self.assertEqual(kinds, [("configmap.yaml", "ConfigMap"), ("deployment.yaml", "Deployment"),
                                 ("kustomization.yaml", "Kustomization")])
        for r in self.by_kind["Kustomization"][0]["resources"]:
            self.assertTrue(os.path.exists(os.path.join(self.DIRECTORY, r)), r)
        # ../service.yaml selects this pod and reaches s2s-proxy's public ports
        service = next(d for f, d in S.load_manifests() if d.get("kind") == "Service")
        labels = self.deployment["spec"]["template"]["metadata"]["labels"]
        for k, v in service["spec"]["selector"].items():
            self.assertEqual(labels.get(k), v)
        public = {l["port"] for l in self.toml["listen"]["s2s"]}
        self.assertEqual({S.resolve_port(self.proxy, p["targetPort"]) for p in service["spec"]["ports"]}, public)
        self.assertEqual(sorted(self.containers), ["s2s-proxy", "xmpp-server"])

    def test_the_pods_nameserver_is_the_responder_on_port_53(self):
        self.assertEqual(self.pod["dnsPolicy"], "None")
        dns = self.pod["dnsConfig"]
        self.assertEqual(dns["nameservers"], ["127.0.0.1"])
        self.assertIn("edns0", [o["name"] for o in dns.get("options", [])], "large answers over UDP (no TCP)")
        self.assertEqual(self.toml["local"]["dns_responder"], "127.0.0.1:53", "resolv.conf has no port: 53")
        local = self.toml["listen"]["local"][0]
        self.assertEqual(local["ip_address"], "127.0.0.1", "the SRV target s2s-proxy.localhost is 127.0.0.1")

    def test_the_responder_forwards_to_the_cluster_dns_and_the_proxy_asks_it_too(self):
        upstreams = self.toml["local"]["dns_upstream"]
        self.assertTrue(upstreams)
        for u in upstreams:
            self.assertFalse(u.startswith("127.") or u.startswith("[::1]") or u == "::1", u)
        self.assertNotIn("nameservers", self.toml.get("s2s", {}).get("outgoing", {}).get("dns", {}),
                         "unset: s2s-proxy's own lookups use local.dns_upstream, not the pod's resolv.conf")

    def test_binding_53_without_root_or_capabilities(self):
        sysctls = {s["name"]: s["value"] for s in self.pod["securityContext"].get("sysctls", [])}
        self.assertLessEqual(int(sysctls["net.ipv4.ip_unprivileged_port_start"]), 53)
        sc = self.proxy["securityContext"]
        self.assertTrue(sc["runAsNonRoot"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"], {"drop": ["ALL"]})
        for c in self.pod["containers"]:
            with self.subTest(container=c["name"]):
                self.assertEqual(set(c["resources"]["requests"]), {"cpu", "memory"})
                self.assertEqual(set(c["resources"]["limits"]), {"cpu", "memory"})

    def toml_for_a_test_run(self, upstream_port):
        """The TOML with throwaway certificates, ports moved to free ones, the responder on a free
        UDP port and the upstream at 127.0.0.1:upstream_port. Returns (path, ports by role)."""
        text = self.toml_text.replace("/etc/s2s-proxy/tls/", self.tmp + "/")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            ports = {"dns": u.getsockname()[1]}
        ports.update(local=S.free_port(), admin=S.free_port(), s2s=S.free_port(), s2s_tls=S.free_port())
        text = text.replace('dns_responder = "127.0.0.1:53"', 'dns_responder = "127.0.0.1:%d"' % ports["dns"])
        text = re.sub(r"dns_upstream = \[[^\]]*\]", 'dns_upstream = ["127.0.0.1:%d"]' % upstream_port, text)
        text = text.replace("port = 15270", "port = %d" % ports["local"])
        text = text.replace("port = 5269", "port = %d" % ports["s2s"]).replace("port = 5270", "port = %d" % ports["s2s_tls"])
        text = text.replace('"0.0.0.0:9269"', '"127.0.0.1:%d"' % ports["admin"]).replace('"0.0.0.0"', '"127.0.0.1"')
        path = os.path.join(self.tmp, "s2s-proxy.toml")
        with open(path, "w") as f:
            f.write(text)
        return path, ports

    def test_the_config_checks_clean_and_answers_as_described(self):
        path = os.path.join(self.tmp, "as-shipped.toml")
        with open(path, "w") as f:
            f.write(self.toml_text.replace("/etc/s2s-proxy/tls/", self.tmp + "/"))
        r = S.run_proxy(S.PROXY, "--check-config", "--config", path, "--s2s.shared=" + os.urandom(16).hex())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # the cluster DNS, played here
        upstream.bind(("127.0.0.1", 0))
        upstream.settimeout(10)
        path, ports = self.toml_for_a_test_run(upstream.getsockname()[1])
        proc = subprocess.Popen([S.PROXY, "--config", path, "--s2s.shared=" + os.urandom(16).hex()],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertTrue(S.wait_for_port(ports["local"], proc=proc))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(10)
                srv = dns_query(0x1234, "_xmpp-server._tcp.remote.example", 33)
                client.sendto(srv, ("127.0.0.1", ports["dns"]))
                answer, _ = client.recvfrom(4096)
                self.assertEqual(answer[:2], b"\x12\x34")
                self.assertEqual(answer[6:8], b"\x00\x01", "one SRV record")
                self.assertIn(ports["local"].to_bytes(2, "big") + b"\x09s2s-proxy\x09localhost\x00", answer)
                other = dns_query(0x5678, "db.default.svc.cluster.local", 1)
                client.sendto(other, ("127.0.0.1", ports["dns"]))
                forwarded, source = upstream.recvfrom(4096)
                self.assertEqual(forwarded[2:], other[2:], "forwarded unchanged but for the ID")
                reply = forwarded[:2] + b"\x81\x83" + forwarded[4:]   # NXDOMAIN from the "cluster DNS"
                upstream.sendto(reply, source)
                relayed, _ = client.recvfrom(4096)
                self.assertEqual(relayed, other[:2] + reply[2:])
        finally:
            upstream.close()
            S.stop(proc)
            proc.stdout.close()
            proc.stderr.close()


def dns_query(qid, name, qtype):
    """A DNS query datagram: RD set, one question of class IN."""
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\x00"
    return qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + wire + qtype.to_bytes(2, "big") + b"\x00\x01"


if __name__ == "__main__":
    sys.exit(S.main(sys.modules[__name__]))
