#!/usr/bin/python3
"""What an operator watches: the Prometheus alerting rules and the Grafana dashboard under
docker/k8s/, against the /metrics of a live s2s-proxy on loopback.

- `promtool check rules` accepts docker/k8s/prometheus-rules.yaml, and `promtool check metrics`
  (which lints names, HELP/TYPE and units) finds nothing wrong with a live /metrics;
- every metric name the rules and the dashboard use is one the live /metrics exports, so a
  rename cannot silently break alerting;
- README's "The metric families:" paragraph names every family the live /metrics serves, and no
  other, so a family cannot be added undocumented or documented after it is gone;
- the dashboard is valid JSON with panels for what README's "Monitoring" promises;
- the certificate expiry gauge has one row per certificate file the config presents, with the
  notAfter openssl reads from it, and a SIGHUP reload with a renewed file shows the new date.

promtool comes with Debian's prometheus package (make deps). Ends with a line
`cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import calendar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cli as cli  # noqa: E402
from test_cli import PROXY, curl, parse_metrics  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RULES = os.path.join(ROOT, "docker", "k8s", "prometheus-rules.yaml")
DASHBOARD = os.path.join(ROOT, "docker", "k8s", "grafana-dashboard.json")
README = os.path.join(ROOT, "README.md")
PROMTOOL = "/usr/bin/promtool"

# Names the rules use that Prometheus or kube-state-metrics make, not s2s-proxy.
EXTERNAL = {"up", "kube_pod_container_status_ready"}
# The prefixes of what s2s-proxy exports: anything in the rules or the dashboard spelled like
# this must be on the live /metrics.
OURS = re.compile(r"\b((?:s2s_proxy|process)_[a-z0-9_]+)\b")


def promtool(*args, stdin=None):
    if not os.access(PROMTOOL, os.X_OK):
        raise AssertionError(f"{PROMTOOL} is missing: install Debian's prometheus package (make deps)")
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=60)


def make_certificate(directory, name, cn, days):
    """A self-signed EC certificate with its key in one PEM file (as s2s.certfile takes it)."""
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", str(days), "-subj", "/CN=" + cn],
                   check=True, capture_output=True, timeout=30)
    path = os.path.join(directory, name + ".pem")
    with open(path + ".new", "w") as out:
        for part in (cert, key):
            with open(part) as f:
                out.write(f.read())
    os.replace(path + ".new", path)  # a reload never sees half a file
    return path


def not_after(path):
    """The certificate's notAfter as unix time, as openssl reads it."""
    out = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", path], check=True, capture_output=True,
                         text=True, timeout=30).stdout.strip()
    return calendar.timegm(time.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y GMT"))


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def exported_names(text):
    """Every sample name a /metrics text can have: its families (HELP/TYPE lines, also those with no
    sample yet) with a histogram's _bucket, _sum and _count."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            names.add(m.group(1))
            if m.group(2) == "histogram":
                names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def served_families(text):
    """The family names of a /metrics text, from its TYPE lines (a family with no sample yet too)."""
    return {m.group(1) for m in re.finditer(r"^# TYPE (\S+) \S+$", text, re.M)}


def readme_families(path=README):
    """The families README's paragraph "The metric families: ..." names in backticks, as /metrics
    spells them: the s2s_proxy_ prefix put back on all but the process_* ones. Backticked config
    keys (`listen.local`, `[[listen.s2s]]`) are not names."""
    with open(path) as f:
        text = f.read()
    start = text.find("The metric families:")
    if start < 0:
        raise AssertionError(f"{path} has no paragraph that starts with 'The metric families:'")
    end = text.find("\n\n", start)
    paragraph = text[start:] if end < 0 else text[start:end]
    return {n if n.startswith("process_") else "s2s_proxy_" + n for n in re.findall(r"`([a-z_][a-z0-9_]*)`", paragraph)}


def rule_expressions():
    import yaml  # python3-yaml
    with open(RULES) as f:
        groups = yaml.safe_load(f)["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"]}


def dashboard_expressions(dashboard):
    exprs = []
    for p in dashboard["panels"]:
        exprs += [t["expr"] for t in p.get("targets", [])]
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        if isinstance(q, dict):
            exprs.append(q.get("query", ""))
    return exprs


class LiveProxy(unittest.TestCase):
    """s2s-proxy with TLS everywhere a certificate can be presented, and its admin endpoint."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.certs = {
            "s2s.certfile": make_certificate(d, "shared", "a.test", 30),
            "s2s.domain_certfile.0.certfile": make_certificate(d, "b", "b.test", 20),
            "listen.s2s.1.tls.certfile": make_certificate(d, "listener", "listener.a.test", 40),
            "listen.local.0.tls.certfile": make_certificate(d, "local-listener", "local.a.test", 50),
            "local.tls.certfile": make_certificate(d, "local-client", "client.a.test", 60),
        }
        s2s_a, s2s_b, local_port, admin, local_server = free_ports(5)
        cls.admin = admin
        cls.config = os.path.join(d, "proxy.toml")
        with open(cls.config, "w") as f:
            f.write(f"""
[general]
  hosts = ["a.test", "b.test"]
[local]
  server = "127.0.0.1:{local_server}"
[local.tls]
  mode = "starttls"
  verify_mode = "none"
  certfile = "{cls.certs['local.tls.certfile']}"
[admin]
  listen = "127.0.0.1:{admin}"
[s2s]
  use_starttls = "optional"
  certfile = "{cls.certs['s2s.certfile']}"
  domain_certfile = [{{domain = "b.test", certfile = "{cls.certs['s2s.domain_certfile.0.certfile']}"}}]
[[listen.s2s]]
  port = {s2s_a}
  ip_address = "127.0.0.1"
[[listen.s2s]]
  port = {s2s_b}
  ip_address = "127.0.0.1"
  tls.certfile = "{cls.certs['listen.s2s.1.tls.certfile']}"
[[listen.local]]
  port = {local_port}
  ip_address = "127.0.0.1"
  tls.mode = "starttls"
  tls.verify_mode = "none"
  tls.certfile = "{cls.certs['listen.local.0.tls.certfile']}"
""")
        cls.proc = subprocess.Popen([PROXY, "--config", cls.config], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        if not cli.Process.wait_listening(admin, cls.proc, seconds=20):
            cls.proc.kill()
            err = cls.proc.communicate(timeout=10)[1]
            cls.tmp.cleanup()
            raise AssertionError("admin endpoint never accepted: " + err[-2000:])
        cls.base = f"http://127.0.0.1:{admin}"

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            try:
                cls.proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.communicate(timeout=10)
        cls.tmp.cleanup()

    def metrics(self):
        code, text = curl(self.base + "/metrics")
        self.assertEqual(code, 200)
        return text

    def expiry_rows(self, text):
        return {k: v for k, v in parse_metrics(text).items()
                if k.startswith("s2s_proxy_certificate_expiry_timestamp_seconds{")}

    def test_promtool_finds_nothing_wrong_with_the_live_metrics(self):
        text = self.metrics()
        self.assertIn("s2s_proxy_certificate_expiry_timestamp_seconds{", text)
        self.assertIn("process_resident_memory_bytes ", text)
        done = promtool("check", "metrics", stdin=text)
        self.assertEqual((done.returncode, done.stdout + done.stderr), (0, ""))

    def test_every_name_the_rules_and_the_dashboard_use_is_exported(self):
        exported = exported_names(self.metrics())
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        sources = {f"rule {name}": r["expr"] for name, r in rule_expressions().items()}
        sources.update({f"dashboard expr {i}": e for i, e in enumerate(dashboard_expressions(dashboard))})
        used = set()
        for where, expr in sources.items():
            for name in OURS.findall(expr):
                used.add(name)
                with self.subTest(where=where, name=name):
                    self.assertTrue(name in exported, f"{where} uses {name}, which /metrics does not export")
            # Anything that reads like a metric selector outside our prefixes must be a known external one.
            for name in re.findall(r"\b([a-z_][a-z0-9_]*)\{", expr):
                if not OURS.fullmatch(name):
                    with self.subTest(where=where, name=name):
                        self.assertIn(name, EXTERNAL, f"{where} selects {name}{{...}}, which nothing here exports")
        self.assertGreaterEqual(len(used), 25)

    def test_the_readme_names_every_family_served_and_no_other(self):
        served, documented = served_families(self.metrics()), readme_families()
        self.assertGreaterEqual(len(served), 50)
        undocumented = sorted(served - documented)
        self.assertEqual(undocumented, [], "/metrics serves these families, but README's 'The metric families:' "
                                           "paragraph does not name them: " + ", ".join(undocumented))
        gone = sorted(documented - served)
        self.assertEqual(gone, [], "README's 'The metric families:' paragraph names these families, but /metrics "
                                   "does not serve them: " + ", ".join(gone))

    def test_certificate_expiry_has_one_row_per_file_with_its_not_after(self):
        rows = self.expiry_rows(self.metrics())
        subjects = {"s2s.certfile": "a.test", "s2s.domain_certfile.0.certfile": "b.test",
                    "listen.s2s.1.tls.certfile": "listener.a.test",
                    "listen.local.0.tls.certfile": "local.a.test", "local.tls.certfile": "client.a.test"}
        expected = {f's2s_proxy_certificate_expiry_timestamp_seconds{{where="{k}",subject="{subjects[k]}"}}':
                    not_after(self.certs[k]) for k in subjects}
        self.assertEqual(rows, expected)

    def test_a_reload_with_a_renewed_certificate_shows_its_new_date(self):
        key = 's2s_proxy_certificate_expiry_timestamp_seconds{where="listen.s2s.1.tls.certfile",subject="listener.a.test"}'
        before = self.expiry_rows(self.metrics())[key]
        path = self.certs["listen.s2s.1.tls.certfile"]
        make_certificate(os.path.dirname(path), "listener", "listener.a.test", 400)
        renewed = not_after(path)
        self.assertGreater(renewed, before + 300 * 86400)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        now = before
        while time.monotonic() < deadline:
            now = self.expiry_rows(self.metrics()).get(key)
            if now != before:
                break
            time.sleep(0.1)  # polling /metrics for the reload's effect, bounded by the deadline
        self.assertEqual(now, renewed)
        self.assertEqual(parse_metrics(self.metrics()).get('s2s_proxy_config_reloads_total{result="applied"}'), 1)


class RulesAndDashboard(unittest.TestCase):
    def test_promtool_accepts_the_rules(self):
        done = promtool("check", "rules", RULES)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("SUCCESS", done.stdout)

    def test_the_rules_cover_each_failure_mode(self):
        rules = rule_expressions()
        needed = {
            "outgoing links failing": ["s2s_proxy_outgoing_link_failures_total", "s2s_proxy_tls_failures_total",
                                       's2s_proxy_dialback_total{role="originating"'],
            "bounces rising": ["s2s_proxy_stanzas_bounced_total"],
            "queues filling": ["s2s_proxy_queue_fill_ratio", 'condition="resource-constraint"'],
            "caps hit": ["s2s_proxy_connections_refused_total", "s2s_proxy_limits_reached_total"],
            "local link down": ["s2s_proxy_local_link_down_total"],
            "the DNS responder's upstreams failing": ["s2s_proxy_dns_responder_upstream_total"],
            "process down or not ready": ['up{job="s2s-proxy"}', "kube_pod_container_status_ready"],
        }
        exprs = " ".join(r["expr"] for r in rules.values())
        for mode, parts in needed.items():
            for part in parts:
                with self.subTest(mode=mode, part=part):
                    self.assertIn(part, exprs)
        for r in rules.values():
            with self.subTest(alert=r["alert"]):
                self.assertIn(r["labels"]["severity"], ("warning", "critical"))
                self.assertTrue(r["annotations"]["summary"])
        expiry = {r["labels"]["severity"]: r["expr"] for r in rules.values()
                  if "certificate_expiry_timestamp_seconds" in r["expr"]}
        self.assertEqual(expiry, {
            "warning": "s2s_proxy_certificate_expiry_timestamp_seconds - time() < 14 * 86400",
            "critical": "s2s_proxy_certificate_expiry_timestamp_seconds - time() < 3 * 86400"})

    def test_the_dashboard_is_json_with_a_panel_for_each_topic(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
        self.assertGreaterEqual(len(panels), 10)
        ids = [p["id"] for p in dashboard["panels"]]
        self.assertEqual(len(ids), len(set(ids)), "panel ids are unique")
        for p in panels:
            with self.subTest(panel=p.get("title")):
                self.assertTrue(p["title"])
                self.assertTrue(p["targets"])
                self.assertTrue(all(t["expr"] for t in p["targets"]))
                self.assertTrue({"h", "w", "x", "y"} <= set(p["gridPos"]))
        exprs = " ".join(dashboard_expressions(dashboard))
        for name in ("s2s_proxy_stanzas_received_total", "s2s_proxy_stanzas_delivered_total",
                     "s2s_proxy_stanzas_bounced_by_condition_total", "s2s_proxy_connections",
                     "s2s_proxy_queued_stanzas", "s2s_proxy_queue_fill_ratio", "s2s_proxy_tls_handshakes_total",
                     "s2s_proxy_tls_failures_total", "s2s_proxy_connections_refused_total",
                     "s2s_proxy_limits_reached_total", "s2s_proxy_certificate_expiry_timestamp_seconds",
                     "process_resident_memory_bytes", "process_open_fds"):
            with self.subTest(name=name):
                self.assertIn(name, exprs)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {max(result.testsRun - bad, 0)} passed, {bad} failed")
    sys.exit(1 if bad else 0)
