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
  server = "127.0.0.1:15269"
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
    return MINIMAL.format(s2s_port=ports.get("s2s_port", 5269), local_port=ports.get("local_port", 15270))


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
            for prefix in ("general.", "s2s.outgoing.tls.", "s2s.outgoing.", "s2s.", "local.", "shaper.*.",
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
        self.assertIn(f"{path}:12: s2s.defualt_policy: unknown key (did you mean s2s.default_policy?)", r.stderr)

    def test_misspelt_value_message(self):
        text = minimal() + "[s2s]\n  outgoing.tls.mode = \"startls\"\n"
        with ConfigFile(text) as path:
            r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f'{path}:12: s2s.outgoing.tls.mode: "startls" is not one of tls, starttls, '
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
        with ConfigFile(minimal(s2s_port=s2s_port, local_port=local_port) +
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
            with ConfigFile(minimal(s2s_port=port, local_port=free_port())) as path:
                p = self.start(path)
                out, err = p.communicate(timeout=5)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"cannot listen on 127.0.0.1 port {port} (listen.s2s)", err)

    def test_bad_config_starts_nothing(self):
        with ConfigFile(minimal() + "[s2s]\n  default_policy = 1\n") as path:
            p = self.start(path)
            out, err = p.communicate(timeout=5)
        self.assertEqual(p.returncode, 2)
        self.assertIn("nothing started", err)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
