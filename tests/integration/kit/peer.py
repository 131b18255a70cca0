"""A scripted raw XMPP peer for hostile and protocol-level tests: plain TCP to a loopback host:port,
optional STARTTLS or direct TLS (Python's ssl, trusting the test CA, optionally presenting a client
certificate), arbitrary bytes out, and reads that end at a pattern or a deadline.

    with RawPeer("127.0.0.2", a.s2s_port) as p:
        p.send(stream_header(to="a.test", from_="evil.test"))
        p.read_until(r"</stream:features>")
        p.starttls(server_hostname="a.test", ca=ca.cert)        # <starttls/>, <proceed/>, handshake
        p.send("<garbage")
        cond, text = p.expect_stream_error("not-well-formed")   # and the connection closed

Every read has a deadline (Timeout carries what was received); `received` holds everything read
(as text) since connect or the last TLS switch, `transcript` everything in both directions.
"""
import html
import re
import socket
import ssl
import time

from .procs import KitError, Timeout, check_loopback

NS_STREAM = "http://etherx.jabber.org/streams"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"


def stream_header(*, to=None, from_=None, ns="jabber:server", version="1.0", dialback=True, id_=None,
                  stream_ns=NS_STREAM, xml_decl=True, extra=""):
    """An opening <stream:stream ...> (not closed), with every part replaceable for bad-header tests."""
    attrs = [f"xmlns='{ns}'", f"xmlns:stream='{stream_ns}'"]
    if dialback:
        attrs.append("xmlns:db='jabber:server:dialback'")
    if version is not None:
        attrs.append(f"version='{version}'")
    if to is not None:
        attrs.append(f"to='{to}'")
    if from_ is not None:
        attrs.append(f"from='{from_}'")
    if id_ is not None:
        attrs.append(f"id='{id_}'")
    if extra:
        attrs.append(extra)
    return ("<?xml version='1.0'?>" if xml_decl else "") + "<stream:stream " + " ".join(attrs) + ">"


STREAM_ERROR_RE = re.compile(r"<(?:stream:)?error\b[^>]*>(.*?)</(?:stream:)?error>", re.S)
CONDITION_RE = re.compile(r"<([a-z-]+)\s+xmlns=['\"]" + re.escape(NS_STREAMS_ERR) + r"['\"]\s*/?>")
TEXT_RE = re.compile(r"<text\b[^>]*>(.*?)</text>", re.S)


def parse_stream_error(data):
    """(condition, text) of the first <stream:error> in `data`, or None."""
    m = STREAM_ERROR_RE.search(data)
    if not m:
        return None
    c = CONDITION_RE.search(m.group(1))
    t = TEXT_RE.search(m.group(1))
    return (c.group(1) if c else None, html.unescape(t.group(1)) if t else None)


class RawPeer:
    def __init__(self, host, port, *, timeout=10.0, connect=True, source=None):
        self.host = check_loopback(host)
        self.port = int(port)
        self.timeout = timeout
        self.source = source
        self.sock = None
        self.received = ""
        self.transcript = []         # ("out"|"in", text)
        self.closed_by_peer = False
        self.tls_version = None
        self.peer_cert = None
        if connect:
            self.connect()

    # -- connection -------------------------------------------------------------------------------
    def connect(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        if self.source:
            s.bind((check_loopback(self.source), 0))
        try:
            s.connect((self.host, self.port))
        except OSError as e:
            s.close()
            raise KitError(f"connect to {self.host}:{self.port} failed: {e}") from None
        self.sock = s
        return self

    def _context(self, ca, cert, key, verify):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify:
            ctx.load_verify_locations(cafile=ca)
            ctx.check_hostname = True
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key)
        return ctx

    def wrap_tls(self, *, server_hostname, ca=None, cert=None, key=None, verify=True, timeout=None):
        """TLS handshake on the current socket now (direct TLS, or after <proceed/>).
        `verify` needs `ca`; `cert`/`key` present a client certificate."""
        if verify and not ca:
            raise ValueError("wrap_tls(verify=True) needs ca=")
        ctx = self._context(ca, cert, key, verify)
        self.sock.settimeout(timeout or self.timeout)
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
        except (ssl.SSLError, OSError) as e:
            raise KitError(f"TLS handshake with {self.host}:{self.port} failed: {e}") from None
        self.tls_version = self.sock.version()
        self.peer_cert = self.sock.getpeercert(binary_form=True)
        self.received = ""
        self.transcript.append(("tls", self.tls_version))
        return self

    def starttls(self, *, server_hostname, ca=None, cert=None, key=None, verify=True, timeout=None):
        """Send <starttls/>, expect <proceed/>, then the TLS handshake."""
        self.send(f"<starttls xmlns='{NS_TLS}'/>")
        self.read_until(r"<proceed\b[^>]*/>|<proceed\b[^>]*>\s*</proceed>|<failure\b", timeout)
        if "<failure" in self.received:
            raise KitError(f"STARTTLS refused: {self.received[-300:]}")
        return self.wrap_tls(server_hostname=server_hostname, ca=ca, cert=cert, key=key, verify=verify,
                             timeout=timeout)

    # -- bytes ------------------------------------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.transcript.append(("out", data.decode("utf-8", "replace")))
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise KitError(f"send to {self.host}:{self.port} failed: {e}") from None
        return self

    def _recv_some(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return None
        except ConnectionResetError:
            data = b""
        except ssl.SSLError as e:
            if "EOF" in str(e) or "closed" in str(e).lower():
                data = b""
            else:
                raise
        if not data:
            self.closed_by_peer = True
            return b""
        text = data.decode("utf-8", "replace")
        self.received += text
        self.transcript.append(("in", text))
        return data

    def read_until(self, pattern, timeout=None):
        """Read until regex `pattern` matches in `received` (returns the match), or Timeout (or
        KitError if the peer closes first)."""
        rx = re.compile(pattern, re.S) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            m = rx.search(self.received)
            if m:
                return m
            if self.closed_by_peer:
                raise KitError(f"connection closed before /{rx.pattern}/; received: {self.received[-800:]!r}")
            got = self._recv_some(deadline)
            if got is None:
                raise Timeout(f"no /{rx.pattern}/ within the deadline; received: {self.received[-800:]!r}")

    def read_for(self, seconds):
        """Read whatever arrives for `seconds` (or until the peer closes); returns the new text."""
        before = len(self.received)
        deadline = time.monotonic() + seconds
        while not self.closed_by_peer and self._recv_some(deadline) is not None:
            pass
        return self.received[before:]

    def expect_closed(self, timeout=None):
        """Wait until the peer closes the connection (EOF); Timeout otherwise."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while not self.closed_by_peer:
            if self._recv_some(deadline) is None:
                raise Timeout(f"{self.host}:{self.port} did not close the connection within the deadline; "
                              f"received: {self.received[-800:]!r}")
        return self

    def expect_stream_error(self, condition=None, timeout=None, *, closed=True):
        """Wait for a <stream:error>; check its condition (if given) and, with `closed`, that the
        peer then closes the stream and connection. Returns (condition, text)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        self.read_until(r"</(?:stream:)?error>", max(0.01, deadline - time.monotonic()))
        cond, text = parse_stream_error(self.received)
        if condition is not None and cond != condition:
            raise KitError(f"expected stream error <{condition}/>, got <{cond}/> ({text}); "
                           f"received: {self.received[-800:]!r}")
        if closed:
            self.expect_closed(max(0.01, deadline - time.monotonic()))
        return cond, text

    def open_stream(self, *, to, from_=None, timeout=None, **header):
        """Send a stream header and read the peer's header and <stream:features>."""
        self.send(stream_header(to=to, from_=from_, **header))
        self.read_until(r"</stream:features>|<stream:features\s*/>|</(?:stream:)?error>", timeout)
        return self

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Blackhole:
    """A TCP address where connection attempts hang, as with a host that drops packets, without
    firewall rules: a listener (backlog 0) whose accept queue is kept full by one connection that
    is never accepted, so the kernel drops every further SYN and a connecting client stays in
    SYN-SENT, retransmitting, until its own deadline. close() removes the listener: from the next
    retransmitted SYN on, the client gets "connection refused". open() again (same port) to
    bring it back.

        hole = Blackhole("127.0.0.23").open()        # hole.port: a free port unless given
        ...                                           # connects to 127.0.0.23:hole.port hang
        hole.close()                                  # ...and are refused from the next SYN on

    open() checks that a probe connect really hangs (KitError otherwise).
    """

    def __init__(self, host, port=None):
        from .procs import free_port
        self.host = check_loopback(host)
        self.port = int(port) if port else free_port(host)
        self._listener = None
        self._fillers = []

    @property
    def addr(self):
        return (self.host, self.port)

    def _probe_hangs(self, seconds):
        with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET) as p:
            p.settimeout(seconds)
            try:
                p.connect(self.addr)
            except socket.timeout:
                return True
            except OSError:
                return False
            return False

    def open(self):
        if self._listener is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(self.addr)
            s.listen(0)
        except OSError:
            s.close()
            raise
        self._listener = s
        # the kernel queues backlog + 1 connections; a few fillers, until a probe hangs
        for _ in range(4):
            f = socket.socket(family, socket.SOCK_STREAM)
            f.settimeout(0.5)
            try:
                f.connect(self.addr)
            except OSError:
                f.close()
                break
            self._fillers.append(f)
            if self._probe_hangs(0.3):
                return self
        self.close()
        raise KitError(f"blackhole {self.host}:{self.port}: connection attempts are not left hanging")

    def close(self):
        """Remove the listener (first, so the queued connections are reset) and the fillers."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for f in self._fillers:
            f.close()
        self._fillers = []

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()
