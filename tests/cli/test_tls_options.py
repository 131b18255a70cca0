#!/usr/bin/python3
"""TLS library options as MongooseIM and OpenSSL mean them, against the real binary: OpenSSL cipher
strings (a listener configured with one suite negotiates exactly it with `openssl s_client`),
tls.dhfile (the DHE group a listener uses), tls.protocol_options, an OpenSSL 3 encrypted key with
tls.password, and --check-config / start errors that name file:line and the key. Certificates
from a throwaway CA (tests/integration/kit/ca.py); everything on loopback.

Ends with a line `cli-summary: N passed, N failed` that tests/run-all.sh adds to the total.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from test_cli import PROXY, free_port, run  # noqa: E402
from kit.ca import CA  # noqa: E402

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
MOZILLA_INTERMEDIATE = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                        "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                        "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384")


def openssl(*args, timeout=120):
    cp = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if cp.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {cp.stderr}")
    return cp.stdout


class Files:
    """The CA, an RSA certificate for a.test, DH parameters and keys, made once for the module."""
    dir = None

    @classmethod
    def make(cls):
        if cls.dir is not None:
            return
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = cls.tmp.name
        ca = CA(os.path.join(cls.dir, "ca"), key="rsa")
        cls.ca = ca.cert
        cls.a = ca.issue("a.test", key="rsa")
        # RFC 7919's 3072-bit group written by `openssl dhparam` as PEM DH parameters: a size that
        # differs from mbedTLS's built-in 2048-bit group, so s_client shows which one is used.
        ff = os.path.join(cls.dir, "ffdhe3072.pem")
        openssl("genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe3072", "-out", ff)
        cls.dh3072 = os.path.join(cls.dir, "dh3072.pem")
        openssl("dhparam", "-in", ff, "-out", cls.dh3072)
        cls.dh1024 = os.path.join(cls.dir, "dh1024.pem")
        openssl("dhparam", "-out", cls.dh1024, "1024")
        cls.not_dh = os.path.join(cls.dir, "not-dh.pem")
        with open(cls.not_dh, "w") as f:
            f.write("this is not a PEM file\n")
        # OpenSSL 3's default key encryption: PKCS#8, PBES2, AES-256-CBC, PBKDF2 with HMAC-SHA256.
        cls.encrypted_key = os.path.join(cls.dir, "a-encrypted.key")
        openssl("pkey", "-in", cls.a.key, "-aes256", "-passout", "pass:s3cret", "-out", cls.encrypted_key)


def tearDownModule():
    if Files.dir is not None:
        Files.tmp.cleanup()


def config_text(listener_tls="", s2s="", ports=None):
    """A config with one direct-TLS [[listen.s2s]] using a.test's RSA certificate, plus `listener_tls`
    lines (e.g. 'tls.ciphers = "..."') and `s2s` lines under [s2s]."""
    p = ports or {"s2s": 5269, "local": 15270, "admin": 9269}
    return f"""[general]
  hosts = ["a.test"]
  loglevel = "notice"
  shutdown_timeout = 0
[local]
  server = "127.0.0.1:15269"
[admin]
  listen = "127.0.0.1:{p['admin']}"
[s2s]
  default_policy = "allow"
{s2s}
[[listen.s2s]]
  port = {p['s2s']}
  ip_address = "127.0.0.1"
  tls.mode = "tls"
  tls.certfile = "{Files.a.cert}"
  tls.keyfile = "{Files.a.key}"
  tls.cacertfile = "{Files.ca}"
  tls.disconnect_on_failure = false
{listener_tls}
[[listen.local]]
  port = {p['local']}
"""


def line_of(text, needle):
    """1-based number of the line of `text` that contains `needle`."""
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in the config")


class ConfigDir:
    def __init__(self, test, text):
        self.dir = tempfile.TemporaryDirectory()
        test.addCleanup(self.dir.cleanup)
        self.path = os.path.join(self.dir.name, "proxy.toml")
        with open(self.path, "w") as f:
            f.write(text)


class Proxy:
    """s2s-proxy with a config_text() config, stopped by PID at cleanup."""

    def __init__(self, test, listener_tls="", s2s=""):
        self.ports = {"s2s": free_port(), "local": free_port(), "admin": free_port()}
        self.cfg = ConfigDir(test, config_text(listener_tls, s2s, self.ports))
        self.log_path = os.path.join(self.cfg.dir.name, "s2s.log")
        self.log = open(self.log_path, "w")
        test.addCleanup(self.log.close)
        self.proc = subprocess.Popen([PROXY, "--config", self.cfg.path], stdout=self.log, stderr=subprocess.STDOUT)
        test.addCleanup(self.stop)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.ports["s2s"]), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        with open(self.log_path) as f:
            test.fail("s2s-proxy did not start: " + f.read()[-2000:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def s_client(self, *args):
        """openssl s_client's TLS 1.2 handshake with the listener: (ok, brief output)."""
        cp = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{self.ports['s2s']}", "-tls1_2", "-brief",
                             "-CAfile", Files.ca, *args], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
        out = cp.stdout + cp.stderr
        return ("Ciphersuite:" in out and cp.returncode == 0), out


def mbedtls_major():
    """The major version of the mbedTLS headers the binary is built with."""
    with open("/usr/include/mbedtls/version.h") as f:
        return int(re.search(r"#define MBEDTLS_VERSION_MAJOR\s+(\d+)", f.read()).group(1))


def negotiated(out):
    m = re.search(r"Ciphersuite:\s*(\S+)", out)
    return m.group(1) if m else None


class Ciphers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        Files.make()

    def test_a_listener_with_one_openssl_suite_negotiates_exactly_it(self):
        proxy = Proxy(self, listener_tls='  tls.ciphers = "ECDHE-RSA-AES256-GCM-SHA384"')
        ok, out = proxy.s_client()
        self.assertTrue(ok, out)
        self.assertEqual(negotiated(out), "ECDHE-RSA-AES256-GCM-SHA384", out)
        ok, out = proxy.s_client("-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
        self.assertFalse(ok, out)
        self.assertIsNone(negotiated(out), out)

    def test_the_listener_follows_its_own_order(self):
        proxy = Proxy(self, listener_tls='  tls.ciphers = "ECDHE+CHACHA20:ECDHE+AESGCM:!aNULL"')
        ok, out = proxy.s_client("-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305")
        self.assertTrue(ok, out)
        self.assertEqual(negotiated(out), "ECDHE-RSA-CHACHA20-POLY1305", out)

    def test_typical_strings_pass_check_config(self):
        for ciphers in ("TLSv1.2:TLSv1.3", MOZILLA_INTERMEDIATE, "HIGH:!aNULL:!MD5", "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL",
                        "DEFAULT:!RC4", "HIGH:!aNULL:@STRENGTH:@SECLEVEL=2"):
            with self.subTest(ciphers=ciphers):
                cfg = ConfigDir(self, config_text(s2s=f'  ciphers = "{ciphers}"'))
                r = run("--check-config", "--config", cfg.path)
                self.assertEqual(r.returncode, 0, r.stderr)

    def test_unknown_cipher_is_refused_at_its_file_and_line(self):
        text = config_text(listener_tls='  tls.ciphers = "ECDHE+AESGCM:FOO"')
        cfg = ConfigDir(self, text)
        r = run("--check-config", "--config", cfg.path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        n = line_of(text, "tls.ciphers")
        self.assertIn(f"{cfg.path}:{n}: listen.s2s.0.tls.ciphers: unknown cipher or cipher keyword 'FOO'", r.stderr)
        # The same at start, not only with --check-config.
        r = run("--config", cfg.path, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(f"{cfg.path}:{n}: listen.s2s.0.tls.ciphers: unknown cipher or cipher keyword 'FOO'", r.stderr)

    def test_s2s_ciphers_errors_name_s2s_ciphers_and_command_line_overrides_name_the_flag(self):
        text = config_text(s2s='  ciphers = "MEDIUM"')
        cfg = ConfigDir(self, text)
        r = run("--check-config", "--config", cfg.path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"{cfg.path}:{line_of(text, 'ciphers = ')}: s2s.ciphers: 'MEDIUM' leaves no cipher suite", r.stderr)
        cfg = ConfigDir(self, config_text())
        r = run("--check-config", "--config", cfg.path, "--listen.s2s.0.tls.ciphers=ECDHE+BAR")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("command line: --listen.s2s.0.tls.ciphers: unknown cipher or cipher keyword 'BAR'", r.stderr)


class DhFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        Files.make()

    def test_a_dhe_only_listener_uses_the_files_group(self):
        proxy = Proxy(self, listener_tls=f'  tls.ciphers = "DHE-RSA-AES128-GCM-SHA256"\n  tls.dhfile = "{Files.dh3072}"')
        ok, out = proxy.s_client()
        self.assertTrue(ok, out)
        self.assertEqual(negotiated(out), "DHE-RSA-AES128-GCM-SHA256", out)
        self.assertRegex(out, r"Server Temp Key: DH, 3072 bits")

    def test_small_missing_or_unparsable_files_are_refused_naming_the_key(self):
        for path, why in ((Files.dh1024, "the prime has 1024 bits; at least 2048 are needed"),
                          (Files.not_dh, "no PEM DH parameters in it"),
                          ("/nonexistent/dh.pem", "cannot read")):
            with self.subTest(path=path):
                text = config_text(listener_tls=f'  tls.dhfile = "{path}"')
                cfg = ConfigDir(self, text)
                r = run("--check-config", "--config", cfg.path)
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(f"{cfg.path}:{line_of(text, 'tls.dhfile')}: listen.s2s.0.tls.dhfile: ", r.stderr)
                self.assertIn(why, r.stderr)

    def test_outgoing_dhfile_is_accepted(self):
        cfg = ConfigDir(self, config_text(s2s=f'  outgoing.tls.dhfile = "{Files.dh3072}"\n  use_starttls = "optional"'))
        r = run("--check-config", "--config", cfg.path)
        self.assertEqual(r.returncode, 0, r.stderr)


class ProtocolOptions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        Files.make()

    def test_mongooseim_values_are_accepted(self):
        cfg = ConfigDir(self, config_text(listener_tls='  tls.protocol_options = ["no_sslv2", "no_sslv3", "no_tlsv1", '
                                                       '"no_tlsv1_1", "no_tlsv1_3", "cipher_server_preference", '
                                                       '"no_compression", "no_ticket"]'))
        r = run("--check-config", "--config", cfg.path)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run("--print-config", "--config", ConfigDir(self, config_text()).path)
        # MongooseIM's documented default.
        self.assertIn('tls.protocol_options = ["no_sslv2", "no_sslv3", "no_tlsv1", "no_tlsv1_1"]',
                      r.stdout.split("[[listen.s2s]]")[1])

    def test_unknown_value_is_refused_naming_it_and_the_known_ones(self):
        text = config_text(listener_tls='  tls.protocol_options = ["no_sslv2", "no_tlsv2"]')
        cfg = ConfigDir(self, text)
        r = run("--check-config", "--config", cfg.path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"{cfg.path}:{line_of(text, 'protocol_options')}: listen.s2s.0.tls.protocol_options: "
                      f'"no_tlsv2" is not one of no_sslv2,', r.stderr)
        self.assertIn("no_ticket", r.stderr)

    def test_no_tlsv1_2_needs_tls_1_3(self):
        text = config_text(listener_tls='  tls.protocol_options = ["no_tlsv1_2"]')
        cfg = ConfigDir(self, text)
        r = run("--check-config", "--config", cfg.path)
        if mbedtls_major() >= 3:
            self.skipTest("mbedTLS 3 may have TLS 1.3")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn(f"{cfg.path}:{line_of(text, 'protocol_options')}: listen.s2s.0.tls.protocol_options: "
                      "no_tlsv1_2 leaves TLS 1.3 only", r.stderr)

    def test_no_ticket_listener_issues_no_session_ticket(self):
        proxy = Proxy(self, listener_tls='  tls.protocol_options = ["no_ticket"]')
        sess = os.path.join(proxy.cfg.dir.name, "sess.pem")
        ok, out = proxy.s_client("-sess_out", sess)
        self.assertTrue(ok, out)
        text = openssl("sess_id", "-in", sess, "-noout", "-text")
        self.assertNotIn("TLS session ticket:", text)
        proxy = Proxy(self)
        ok, out = proxy.s_client("-sess_out", sess)
        self.assertTrue(ok, out)
        self.assertIn("TLS session ticket:", openssl("sess_id", "-in", sess, "-noout", "-text"))


class EncryptedKey(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        Files.make()

    def test_openssl3_encrypted_key_is_explained_with_the_command_that_converts_it(self):
        text = config_text().replace(f'tls.keyfile = "{Files.a.key}"',
                                     f'tls.keyfile = "{Files.encrypted_key}"\n  tls.password = "s3cret"')
        cfg = ConfigDir(self, text)
        for args in (["--check-config", "--config", cfg.path], ["--config", cfg.path]):
            with self.subTest(args=args[0]):
                r = run(*args, timeout=30)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(f"{cfg.path}:{line_of(text, 'tls.keyfile')}: listen.s2s.0.tls.keyfile: ", r.stderr)
                self.assertIn("PKCS#8 encrypted with PBES2 (AES-256-CBC, key derived with PBKDF2 and HMAC-SHA256)",
                              r.stderr)
                self.assertIn("cannot decrypt", r.stderr)
                self.assertIn(f"openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in {Files.encrypted_key} -out ", r.stderr)
                self.assertIn(f"openssl pkey -in {Files.encrypted_key} -out ", r.stderr)
                self.assertNotIn("s3cret", r.stderr)
        # Without a password the answer is the same: a password would not help.
        if mbedtls_major() < 3:
            cfg_np = ConfigDir(self, text.replace('\n  tls.password = "s3cret"', ""))
            r = run("--check-config", "--config", cfg_np.path)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn("PKCS#8 encrypted with PBES2 (AES-256-CBC", r.stderr)
        # The conversion it proposes gives a key that works, with the same password.
        compat = os.path.join(cfg.dir.name, "key-compat.pem")
        openssl("pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", Files.encrypted_key, "-passin", "pass:s3cret",
                "-passout", "pass:s3cret", "-out", compat)
        cfg = ConfigDir(self, text.replace(Files.encrypted_key, compat))
        r = run("--check-config", "--config", cfg.path)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"cli-summary: {result.testsRun - bad} passed, {bad} failed")
    sys.exit(1 if bad else 0)
