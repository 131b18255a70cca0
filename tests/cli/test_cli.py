#!/usr/bin/python3
"""The s2s-proxy binary from the outside: the command line, the config examples, --check-config
and --print-config as an operator uses them, and starting and stopping the process.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
PROXY = os.path.join(BUILD, "s2s-proxy")
EXAMPLES = os.path.join(ROOT, "config-examples")

MINIMAL = """
[general]
  hosts = ["a.test"]
[local]
  server = "127.0.0.1:{local_server_port}"
[admin]
  listen = "127.0.0.1:{admin_port}"
[[listen.s2s]]
  port = {s2s_port}
  ip_address = "127.0.0.1"
[[listen.local]]
  port = {local_port}
"""


def run(*args, env=None, timeout=20):
    e = dict(os.environ)
    e.pop("S2S_PROXY_CONFIG", None)
    if env:
        e.update(env)
    return subprocess.run([PROXY, *args], capture_output=True, text=True, timeout=timeout, env=e)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConfigFile:
    """A config written to a temporary file, removed afterwards."""

    def __init__(self, text, name="sidecar.toml"):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, name)
        with open(self.path, "w") as f:
            f.write(text)

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        self.dir.cleanup()


def minimal(**ports):
    return MINIMAL.format(s2s_port=ports.get("s2s_port", 5269), local_port=ports.get("local_port", 15270),
                          admin_port=ports.get("admin_port", 9269),
                          local_server_port=ports.get("local_server_port", 15269))


def read_until(sock, done):
    """Bytes from `sock` until done(received) is true or the peer closes (the socket's timeout
    bounds each read)."""
    got = b""
    while not done(got):
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


STREAM_HEADER = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "
                 b"xmlns:stream='http://etherx.jabber.org/streams' to='a.test' from='b.test' version='1.0'>")


def timed_verify_through(sock):
    """Sends 100 kB of whitespace and a db:verify on an open stream; (seconds until the answer, bytes)."""
    start = time.monotonic()
    sock.sendall(b" " * 100_000 + b"<db:verify from='b.test' to='a.test' id='x'>k</db:verify>")
    got = read_until(sock, lambda g: b"</db:verify>" in g or b"type=" in g.split(b"db:verify")[-1])
    return time.monotonic() - start, got


def curl(url, *args):
    """(status, body) of an HTTP request made with curl."""
    r = subprocess.run(["curl", "-s", "-m", "5", "-o", "-", "-w", "\n%{http_code}", *args, url],
                       capture_output=True, text=True, timeout=10)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


# One sample line of the Prometheus text format: name{labels} value
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? '
                    r'(-?[0-9.e+-]+|\+Inf|NaN)$')


def parse_metrics(text):
    """{'name{labels}': value}; fails on any line that is not a comment or a well-formed sample."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError(f"not a Prometheus sample line: {line!r}")
        base = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        if m.group(1) not in typed and base not in typed:
            raise AssertionError(f"sample without a # TYPE line: {line!r}")
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


class Examples(unittest.TestCase):
    def test_every_example_checks_clean(self):
        names = sorted(n for n in os.listdir(EXAMPLES) if n.endswith(".toml"))
        self.assertGreaterEqual(len(names), 4)
        for name in names:
            with self.subTest(example=name):
                r = run("--check-config", "--config", os.path.join(EXAMPLES, name))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("config OK", r.stdout)

    def test_full_example_mentions_every_option(self):
        help_text = run("--help").stdout
        keys = re.findall(r"^  ([a-z_.*0-9]+)", help_text, re.M)
        self.assertGreater(len(keys), 60)
        with open(os.path.join(EXAMPLES, "full.toml")) as f:
            full = f.read()
        for key in keys:
            # The last part of the key, as written under its table or entry.
            leaf = key.split("*.")[-1]
            for prefix in ("general.", "s2s.outgoing.tls.", "s2s.outgoing.", "s2s.", "local.", "admin.", "antispam.", "shaper.*.",
                           "access.*.*.", "acl.*.*."):
                if leaf.startswith(prefix):
                    leaf = leaf[len(prefix):]
                    break
            with self.subTest(key=key):
                found = re.search(r"(^|[\s{#.,])" + re.escape(leaf) + r"\s*=", full, re.M)
                self.assertTrue(found, f"{key} is not in full.toml")


class CheckConfig(unittest.TestCase):
    def test_misspelt_key_exits_2_naming_file_line_key_and_hint(self):
        text = minimal() + "[s2s]\n  defualt_policy = \"deny\"\n"
        with ConfigFile(text) as path:
            r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:14: s2s.defualt_policy: unknown key (did you mean s2s.default_policy?)", r.stderr)

    def test_misspelt_value_message(self):
        text = minimal() + "[s2s]\n  outgoing.tls.mode = \"startls\"\n"
        with ConfigFile(text) as path:
            r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f'{path}:14: s2s.outgoing.tls.mode: "startls" is not one of tls, starttls, '
                      f'starttls_required (did you mean "starttls"?)', r.stderr)

    def test_all_errors_are_reported(self):
        text = minimal() + "[s2s]\n  default_policy = \"maybe\"\n  outgoing.port = 0\n  bogus = 1\n"
        with ConfigFile(text) as path:
            r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(len(re.findall(rf"^{re.escape(path)}:\d+: ", r.stderr, re.M)), 3, r.stderr)
        self.assertIn("3 errors in the config", r.stderr)

    def test_command_line_errors_name_the_flag(self):
        with ConfigFile(minimal()) as path:
            r = run("--check-config", "--config", path, "--s2s.outgoing.port=99999")
        self.assertEqual(r.returncode, 2)
        self.assertIn("command line: --s2s.outgoing.port: 99999 is out of range 1..65535", r.stderr)

    def test_check_config_catches_what_would_fail_at_start(self):
        text = minimal().replace(
            '[local]\n  server = "127.0.0.1:15269"', '[local]\n  server = "127.0.0.1:15269"\n  dns_responder = "192.0.2.1:5353"')
        with ConfigFile(text) as path:
            r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("local.dns_responder: \"192.0.2.1:5353\" is not a loopback address", r.stderr)
        self.assertIn("would not start", r.stderr)

    def test_check_config_reports_the_antispam_lists_and_names_a_bad_line(self):
        with ConfigFile(minimal()) as path:
            lists = os.path.dirname(path)
            domains, jids = os.path.join(lists, "domains.txt"), os.path.join(lists, "jids.txt")
            with open(domains, "w") as f:
                f.write("# JabberSPAM\nspam.test\n" + "ab" * 32 + "\n")
            with open(jids, "w") as f:
                f.write("spammer@c.test\n")
            with open(path, "a") as f:
                f.write(f'[antispam]\n  spam_domains_file = "{domains}"\n  spam_jids_file = "{jids}"\n')
            r = run("--check-config", "--config", path)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(f"antispam.spam_domains_file: {domains}: 2 entries (1 hashed)", r.stdout)
            self.assertIn(f"antispam.spam_jids_file: {jids}: 1 entries (0 hashed)", r.stdout)
            with open(jids, "w") as f:
                f.write("spammer@c.test\nc.test\n")
            r = run("--check-config", "--config", path)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertRegex(r.stderr, rf"sidecar\.toml:\d+: antispam\.spam_jids_file: {re.escape(jids)}: line 2: "
                                       r"'c\.test' is not a bare JID")

    def test_unreadable_file(self):
        r = run("--check-config", "--config", "/nonexistent/s2s.toml")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/s2s.toml: cannot read the config file", r.stderr)

    def test_config_from_environment(self):
        with ConfigFile(minimal()) as path:
            r = run("--check-config", env={"S2S_PROXY_CONFIG": path})
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_no_config_and_unknown_arguments(self):
        r = run("--check-config")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no config file", r.stderr)
        r = run("--frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown argument --frobnicate", r.stderr)

    def test_version_and_help(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^s2s-proxy \d+\.\d+")
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("s2s.outgoing.tls.mode", r.stdout)
        self.assertIn("listen.s2s.*.port", r.stdout)


class PrintConfig(unittest.TestCase):
    def test_overrides_win_and_defaults_are_filled(self):
        text = minimal() + "[s2s]\n  default_policy = \"allow\"\n  shared = \"hunter2hunter2\"\n"
        with ConfigFile(text) as path:
            r = run("--print-config", "--config", path, "--s2s.default_policy=deny", "--listen.s2s.0.port=15269",
                    "--s2s.max_retry_delay=42")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertIn('default_policy = "deny"', out)
        self.assertIn("port = 15269", out)
        self.assertIn("outgoing.max_retry_delay = 42", out)  # 6.x key shown in the newer layout
        self.assertIn("outgoing.stream_timeout = 600000", out)
        self.assertIn('outgoing.tls.verify_mode = "peer"', out)
        self.assertNotIn("hunter2", out)
        self.assertIn('shared = "********"', out)

    def test_printed_config_checks_clean(self):
        r = run("--print-config", "--config", os.path.join(EXAMPLES, "full.toml"))
        self.assertEqual(r.returncode, 0, r.stderr)
        with ConfigFile(r.stdout) as path:
            again = run("--check-config", "--config", path)
            self.assertEqual(again.returncode, 0, again.stderr)
            reprinted = run("--print-config", "--config", path)
        self.assertEqual(reprinted.stdout, r.stdout)


class Process(unittest.TestCase):
    def start(self, path, *args):
        p = subprocess.Popen([PROXY, "--config", path, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p

    @staticmethod
    def wait_listening(port, proc, seconds=5):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def test_listens_and_stops_on_sigterm(self):
        s2s_port, local_port = free_port(), free_port()
        with ConfigFile(minimal(s2s_port=s2s_port, local_port=local_port, admin_port=free_port()) +
                        "[s2s]\n  shared = \"hunter2hunter2\"\n") as path:
            p = self.start(path, "--general.loglevel=debug")
            self.assertTrue(self.wait_listening(s2s_port, p), "s2s listener never accepted")
            self.assertTrue(self.wait_listening(local_port, p), "local listener never accepted")
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=5)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn(f"127.0.0.1 port {s2s_port}", err)
        self.assertNotIn("still open at exit", err)
        self.assertNotIn("hunter2", out + err)

    def test_a_port_in_use_is_named(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            with ConfigFile(minimal(s2s_port=port, local_port=free_port(), admin_port=free_port())) as path:
                p = self.start(path)
                out, err = p.communicate(timeout=5)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"cannot listen on 127.0.0.1 port {port} (listen.s2s)", err)

    def test_listener_shaper_holds_a_peer_to_its_rate(self):
        """[shaper.NAME] on [[listen.s2s]]: 100 kB at 25 kB/s takes about 3 s after the 1 s burst."""
        s2s_port = free_port()
        with ConfigFile(minimal(s2s_port=s2s_port, local_port=free_port(), admin_port=free_port()) +
                        "[shaper.slow]\n  max_rate = 25_000\n") as path:
            p = self.start(path, "--listen.s2s.0.shaper=slow", "--listen.s2s.0.state_timeout=20000")
            self.assertTrue(self.wait_listening(s2s_port, p))
            with socket.create_connection(("127.0.0.1", s2s_port), timeout=15) as c:
                c.sendall(STREAM_HEADER)
                elapsed, got = timed_verify_through(c)
            self.assertIn(b"db:verify", got)
            self.assertGreater(elapsed, 2.4, "the shaper let 100 kB through faster than 25 kB/s allows")
            self.assertLess(elapsed, 10)

    def test_reuse_port_lets_two_processes_share_the_public_port(self):
        s2s_port = free_port()
        procs = []
        for reuse in ("true", "true", "false"):
            with ConfigFile(minimal(s2s_port=s2s_port, local_port=free_port(), admin_port=free_port())) as path:
                p = self.start(path, f"--listen.s2s.0.reuse_port={reuse}")
                if reuse == "true":
                    self.assertTrue(self.wait_listening(s2s_port, p), "a process with reuse_port did not start")
                    time.sleep(0.2)
                    self.assertIsNone(p.poll(), p.stderr.read() if p.poll() is not None else "")
                    procs.append(p)
                else:
                    # Without it the port stays taken: the third process names the port and stops.
                    out, err = p.communicate(timeout=5)
                    self.assertEqual(p.returncode, 1)
                    self.assertIn(f"cannot listen on 127.0.0.1 port {s2s_port} (listen.s2s)", err)
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=5)
            self.assertEqual(p.returncode, 0)

    def test_proxy_protocol_believes_trusted_senders_only(self):
        """PROXY v1 from 127.0.0.1 (in proxy_trusted): the client it names is the one logged; from
        127.0.0.2 (outside): closed without a stream answer. 192.0.2.7 is only text in a header."""
        s2s_port, admin_port = free_port(), free_port()
        text = minimal(s2s_port=s2s_port, local_port=free_port(), admin_port=admin_port).replace(
            '  ip_address = "127.0.0.1"\n',
            '  ip_address = "127.0.0.1"\n  proxy_protocol = true\n  proxy_trusted = ["127.0.0.1/32"]\n', 1)
        header = (b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                  b"xmlns:stream='http://etherx.jabber.org/streams' from='b.test' to='nobody.test' version='1.0'>")
        with ConfigFile(text) as path:
            p = self.start(path, "--general.loglevel=info")
            self.assertTrue(self.wait_listening(admin_port, p), "admin endpoint never accepted")
            with socket.create_connection(("127.0.0.1", s2s_port), timeout=5) as c:
                c.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 5269\r\n" + header)
                got = read_until(c, lambda g: b"</stream:stream>" in g)
            self.assertIn(b"host-unknown", got)
            with socket.socket() as c:
                c.bind(("127.0.0.2", 0))
                c.settimeout(5)
                c.connect(("127.0.0.1", s2s_port))
                c.sendall(b"PROXY TCP4 192.0.2.8 127.0.0.1 40000 5269\r\n" + header)
                got = b""
                try:
                    while True:
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                except ConnectionResetError:
                    pass
            self.assertEqual(got, b"", "an untrusted sender's PROXY header got an answer")
            metrics = parse_metrics(curl(f"http://127.0.0.1:{admin_port}/metrics")[1])
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=5)
        self.assertEqual(metrics['s2s_proxy_proxy_protocol_headers_total{result="accepted",reason="proxied"}'], 1)
        self.assertEqual(metrics['s2s_proxy_proxy_protocol_headers_total{result="refused",reason="untrusted_sender"}'], 1)
        self.assertRegex(err, r"proxy-header: PROXY v1 header for client 192\.0\.2\.7:40000, from 127\.0\.0\.1:\d+")
        self.assertRegex(err, r"warning .*proxy-refused: a PROXY header from a sender outside proxy_trusted, "
                              r"from 127\.0\.0\.2:\d+: connection closed")
        self.assertNotIn("192.0.2.8", err)

    def test_bad_config_starts_nothing(self):
        with ConfigFile(minimal() + "[s2s]\n  default_policy = 1\n") as path:
            p = self.start(path)
            out, err = p.communicate(timeout=5)
        self.assertEqual(p.returncode, 2)
        self.assertIn("nothing started", err)


class Admin(unittest.TestCase):
    """The admin HTTP endpoint, asked with curl as a probe or Prometheus would."""

    def setUp(self):
        # Four different ports: each socket stays bound until all are picked.
        socks = []
        for _ in range(4):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        ports = [sock.getsockname()[1] for sock in socks]
        for sock in socks:
            sock.close()
        self.ports = dict(zip(("s2s_port", "local_port", "admin_port", "local_server_port"), ports))
        self.cfg = ConfigFile(minimal(**self.ports))
        path = self.cfg.__enter__()
        self.addCleanup(self.cfg.__exit__, None, None, None)
        self.proc = subprocess.Popen([PROXY, "--config", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.addCleanup(lambda: self.proc.poll() is None and self.proc.kill())
        if not Process.wait_listening(self.ports["admin_port"], self.proc, seconds=15):
            self.proc.kill()
            self.fail("admin endpoint never accepted: " + self.proc.communicate(timeout=5)[1][-2000:])
        self.base = f"http://127.0.0.1:{self.ports['admin_port']}"

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.communicate(timeout=5)

    def test_healthz(self):
        self.assertEqual(curl(self.base + "/healthz"), (200, "ok\n"))

    def test_readyz_follows_the_local_server(self):
        code, body = curl(self.base + "/readyz")
        self.assertEqual(code, 503)
        self.assertIn(f"local server 127.0.0.1:{self.ports['local_server_port']} does not accept connections", body)
        with socket.socket() as local_server:
            local_server.bind(("127.0.0.1", self.ports["local_server_port"]))
            local_server.listen()
            self.assertEqual(curl(self.base + "/readyz"), (200, "ready\n"))

    def test_metrics_parse_and_count_what_happened(self):
        code, text = curl(self.base + "/metrics")
        self.assertEqual(code, 200)
        before = parse_metrics(text)
        self.assertEqual(before["s2s_proxy_up"], 1)
        self.assertEqual(before.get('s2s_proxy_stream_errors_sent_total{condition="host-unknown"}', 0), 0)
        # A peer that asks for a domain we do not serve gets host-unknown: counted, bytes too.
        with socket.create_connection(("127.0.0.1", self.ports["s2s_port"]), timeout=5) as c:
            c.sendall(b"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                      b"xmlns:stream='http://etherx.jabber.org/streams' to='nobody.test' version='1.0'>")
            got = read_until(c, lambda g: b"</stream:stream>" in g)
        self.assertIn(b"host-unknown", got)
        after = parse_metrics(curl(self.base + "/metrics")[1])
        self.assertEqual(after['s2s_proxy_stream_errors_sent_total{condition="host-unknown"}'], 1)
        self.assertGreater(after['s2s_proxy_bytes_received_total{side="public"}'],
                           before['s2s_proxy_bytes_received_total{side="public"}'])
        self.assertEqual(after['s2s_proxy_connections_opened_total{side="public"}'],
                         before['s2s_proxy_connections_opened_total{side="public"}'] + 1)
        self.assertGreaterEqual(after["s2s_proxy_admin_requests_total"], 2)
        for name in ("stanzas_received_total", "stanzas_delivered_total", "stanzas_bounced_total",
                     "stanzas_dropped_total", "tls_handshakes_total", "tls_failures_total", "dialback_total",
                     "sasl_external_total", "dns_queries_total", "dns_failures_total",
                     "dns_query_duration_seconds", "queued_stanzas", "hosts_in_backoff", "connections",
                     "error_replies_total"):
            self.assertIn(f"# TYPE s2s_proxy_{name} ", text)

    def test_other_paths_and_methods(self):
        self.assertEqual(curl(self.base + "/nope")[0], 404)
        self.assertEqual(curl(self.base + "/metrics", "-X", "POST", "-d", "x")[0], 405)
        code, body = curl(self.base + "/healthz", "-I")
        self.assertEqual(code, 200)
        self.assertNotIn("ok", body.split("\r\n\r\n", 1)[-1])
        # Not HTTP at all: 400, and the process carries on.
        with socket.create_connection(("127.0.0.1", self.ports["admin_port"]), timeout=5) as c:
            c.sendall(b"\x16\x03\x01 not http\r\n\r\n")
            self.assertTrue(c.recv(100).startswith(b"HTTP/1.1 400"))
        self.assertEqual(curl(self.base + "/healthz")[0], 200)

    def test_admin_port_in_use_is_named(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            with ConfigFile(minimal(s2s_port=free_port(), local_port=free_port(), admin_port=port)) as path:
                p = subprocess.run([PROXY, "--config", path], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"cannot listen on 127.0.0.1:{port} (admin.listen)", p.stderr)


class Signals(unittest.TestCase):
    """SIGHUP reloads the file (logging applies at once; a broken file is refused); SIGTERM with
    nothing queued exits at once."""

    def wait_line(self, path, proc, needle, seconds=5):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with open(path) as f:
                for line in f:
                    if needle in line:
                        return line
            self.assertIsNone(proc.poll(), "the process exited")
            time.sleep(0.05)
        with open(path) as f:
            self.fail(f"no line with {needle!r} in the log:\n{f.read()[-2000:]}")

    def test_sighup_puts_a_new_shaper_on_an_open_connection(self):
        """A connection opened unshaped is held to the listener's new shaper after SIGHUP."""
        ports = dict(s2s_port=free_port(), local_port=free_port(), admin_port=free_port())
        base = minimal(**ports) + "[shaper.slow]\n  max_rate = 25_000\n"
        with ConfigFile(base) as path:
            log_path = path + ".log"
            with open(log_path, "w") as log:
                p = subprocess.Popen([PROXY, "--config", path, "--listen.s2s.0.state_timeout=30000",
                                      "--general.loglevel=notice"], stdout=log, stderr=log)
            self.addCleanup(lambda: p.poll() is None and p.kill())
            self.assertTrue(Process.wait_listening(ports["s2s_port"], p))
            with socket.create_connection(("127.0.0.1", ports["s2s_port"]), timeout=15) as c:
                c.sendall(STREAM_HEADER)
                fast, got = timed_verify_through(c)      # no shaper yet: at once
                self.assertIn(b"db:verify", got)
                self.assertLess(fast, 1.5)
                with open(path, "w") as f:
                    f.write(base.replace("[[listen.s2s]]\n", "[[listen.s2s]]\n  shaper = \"slow\"\n", 1))
                p.send_signal(signal.SIGHUP)
                self.wait_line(log_path, p, "1 change applied: listen.s2s.0.shaper")
                time.sleep(1.1)                           # the bucket's one second of burst fills
                slow, got = timed_verify_through(c)       # the same connection, now shaped
            self.assertIn(b"db:verify", got)
            self.assertGreater(slow, 2.4, "the reloaded shaper did not reach the open connection")
            self.assertLess(slow, 10)

    def test_sighup_reloads_logging_and_refuses_a_broken_file(self):
        import json
        ports = dict(s2s_port=free_port(), local_port=free_port(), admin_port=free_port())
        with ConfigFile(minimal(**ports)) as path:
            log_path = path + ".log"
            with open(log_path, "w") as log:
                p = subprocess.Popen([PROXY, "--config", path], stdout=log, stderr=log)
            self.addCleanup(lambda: p.poll() is None and p.kill())
            self.assertTrue(Process.wait_listening(ports["s2s_port"], p))
            with open(path, "w") as f:
                f.write(minimal(**ports).replace('hosts = ["a.test"]',
                                                 'hosts = ["a.test"]\n  loglevel = "notice"\n  log_format = "json"'))
            p.send_signal(signal.SIGHUP)
            line = self.wait_line(log_path, p, '"event":"reloaded"')
            record = json.loads(line)
            self.assertEqual(record["level"], "notice")
            self.assertIn("2 changes applied: general.log_format, general.loglevel; 0 changes wait for a restart",
                          record["reason"])
            # a file with an error: refused, named with its line, and the process goes on
            with open(path, "w") as f:
                f.write(minimal(**ports) + "[s2s]\n  default_policy = 1\n")
            line_no = minimal(**ports).count("\n") + 2
            p.send_signal(signal.SIGHUP)
            refused = json.loads(self.wait_line(log_path, p, "1 error in the config; the running config stays"))
            self.assertEqual(refused["event"], "reload-refused")
            with open(log_path) as f:
                self.assertIn(f"{path}:{line_no}: s2s.default_policy: ", f.read())
            self.assertTrue(Process.wait_listening(ports["s2s_port"], p))
            start = time.monotonic()
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=5), 0)
            self.assertLess(time.monotonic() - start, 2, "nothing was queued: the drain should be immediate")
            with open(log_path) as f:
                self.assertIn('"event":"drained"', f.read())


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
