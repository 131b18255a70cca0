#!/usr/bin/python3
"""make soak: s2s-proxy under waves of links and a population of slowloris connections, for
minutes, sampled every few seconds; it passes when the process falls back to its footprint after
every wave and nothing is lost.

    /usr/bin/python3 tests/bench/soak.py --build build --minutes 30      # what make soak runs
    ... --minutes 2 --links 300 --slowloris 30                            # a short look

What runs (all on loopback, started here and stopped by PID):
- s2s-proxy with a [[listen.s2s]] listener (STARTTLS, client certificates, SASL EXTERNAL), its
  local server the sink of build/s2s-bench, and its admin endpoint for /metrics.
- `s2s-bench waves` (tests/bench/waves.cpp): each wave opens --links links, each for a remote
  domain never seen before (l0.gen.test, l1.gen.test ...; --pool N reuses N of them),
  --concurrency negotiating at once; each authenticates, sends --stanzas stanzas and ends its
  stream. Then --pause seconds with nothing open but the slowloris connections: long enough for
  s2s-proxy to free idle buffers (10 s of quiet, swept every 5 s) and to forget the wave's
  domains on its stream to the local server (local.remote_idle_timeout, --remote-idle), and the
  next wave.
- --slowloris connections held open all the time, a third of each kind, each trickling one byte
  per --trickle seconds and replaced as soon as it is closed:
    header    the stream header, byte by byte
    features  the whole header, then <starttls/> byte by byte
    tls       header, STARTTLS, TLS handshake, then the new stream header byte by byte
  s2s-proxy gives each stage listen.s2s.state_timeout (--state-timeout); every one of them must
  be closed by s2s-proxy within that plus --slack seconds of its stage beginning.
- Every --sample seconds: RSS and open descriptors (/proc), the event loop's lag and the counters
  (/metrics), the connections open.

It passes when:
- every link of every wave authenticated and ended, and the sink got every stanza sent;
- after each wave (at the end of its pause) RSS is within --rss-tolerance percent and open
  descriptors within --fd-tolerance percent (plus 8, the slowloris population's churn) of the
  baseline taken after the first --warmup waves;
- no error counter on /metrics grew (bounces, drops, TLS and link failures, refusals, limits
  reached, stream errors other than the slowloris' connection-timeout);
- received = delivered + bounced + dropped at the end;
- every slowloris connection was closed by its deadline, and none outlived it.

Writes OUT/samples.csv, OUT/waves.csv, OUT/slowloris.csv, OUT/summary.json, OUT/soak.png
(gnuplot; OUT/soak.gp its script). OUT is BUILD/soak. Exit status 1 when a check fails.
"""
import argparse
import csv
import json
import os
import re
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from kit import CA, Procs, free_port  # noqa: E402
from kit.procs import KitError  # noqa: E402
from proxy_config import write_proxy_config  # noqa: E402

LOCAL = "local.test"
GEN = "gen.test"
HEADER = (f"<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
          f"xmlns:stream='http://etherx.jabber.org/streams' from='slow.{GEN}' to='{LOCAL}' version='1.0'>").encode()
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"

# /metrics families that count something going wrong: none may grow during the soak.
ERROR_FAMILIES = [
    "s2s_proxy_stanzas_bounced_total", "s2s_proxy_stanzas_dropped_total", "s2s_proxy_bounces_not_sent_total",
    "s2s_proxy_tls_failures_total", "s2s_proxy_outgoing_link_failures_total", "s2s_proxy_local_link_down_total",
    "s2s_proxy_connections_refused_total", "s2s_proxy_limits_reached_total", "s2s_proxy_addresses_refused_total",
    "s2s_proxy_dns_failures_total", "s2s_proxy_admin_connections_dropped_total",
]
# Stream errors the slowloris connections earn; any other condition counts as an error.
EXPECTED_STREAM_ERRORS = {"connection-timeout"}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- /metrics --------------------------------------------------------------------------------------
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def scrape(port):
    """{family: {labels: value}} from the admin endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for ln in text.splitlines():
        m = LINE.match(ln)
        if m:
            out.setdefault(m.group(1), {})[m.group(2) or ""] = float(m.group(3))
    return out


def total(metrics, family, exclude_label=None):
    rows = metrics.get(family, {})
    return sum(v for k, v in rows.items() if not (exclude_label and exclude_label in k))


def errors_of(metrics):
    """Every error counter row, stream errors without the expected conditions."""
    out = {}
    for fam in ERROR_FAMILIES:
        for labels, v in metrics.get(fam, {}).items():
            out[fam + labels] = v
    for labels, v in metrics.get("s2s_proxy_stream_errors_sent_total", {}).items():
        if not any(f'"{c}"' in labels for c in EXPECTED_STREAM_ERRORS):
            out["s2s_proxy_stream_errors_sent_total" + labels] = v
    return out


def proc_sample(pid):
    rss_kb = None
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                rss_kb = int(ln.split()[1])
    return rss_kb, len(os.listdir(f"/proc/{pid}/fd"))


# -- slowloris -------------------------------------------------------------------------------------
class Slow:
    """One slowloris connection and the stage it is in."""

    def __init__(self, kind, sock, now):
        self.kind = kind
        self.sock = sock
        self.opened = now
        self.stage_start = now
        self.state = "trickle"
        self.payload = HEADER
        self.sent = 0
        self.inbox = b""
        self.next_byte = now


class Slowloris(threading.Thread):
    """Keeps `count` slowloris connections open against 127.0.0.1:`port` until stop()."""

    KINDS = ("header", "features", "tls")

    def __init__(self, port, count, trickle_s, deadline_s):
        super().__init__(daemon=True)
        self.port = port
        self.count = count
        self.trickle = trickle_s
        self.deadline = deadline_s
        self.sel = selectors.DefaultSelector()
        self.conns = {}
        self.closed = []          # (kind, seconds from stage start to close, closed by the server)
        self.open_failures = 0
        self.stopping = threading.Event()
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.tls.check_hostname = False
        self.tls.verify_mode = ssl.CERT_NONE
        self.opened = 0
        self.lock = threading.Lock()

    def open_one(self, kind, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.open_failures += 1
            return
        s.setblocking(False)
        c = Slow(kind, s, now)
        if kind != "header":
            s.send(HEADER)  # a fresh socket's buffer takes it whole
            c.stage_start = now
            c.payload = STARTTLS
            if kind == "tls":
                c.state = "features"
        self.conns[s] = c
        self.sel.register(s, selectors.EVENT_READ, c)
        self.opened += 1

    def finish(self, c, now, by_server):
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        del self.conns[c.sock]
        with self.lock:
            self.closed.append((c.kind, now - c.stage_start, by_server))

    def readable(self, c, now):
        if c.state == "handshake":
            self.handshake(c, now)
            return
        try:
            data = c.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return
        except (OSError, ssl.SSLError):
            data = b""
        if not data:
            self.finish(c, now, True)
            return
        if c.state == "features":
            c.inbox += data
            if b"</stream:features>" in c.inbox:
                c.inbox = b""
                c.sock.send(STARTTLS)
                c.state = "proceed"
        elif c.state == "proceed":
            c.inbox += data
            if b"<proceed" in c.inbox:
                self.sel.unregister(c.sock)
                del self.conns[c.sock]
                c.sock = self.tls.wrap_socket(c.sock, server_hostname=LOCAL, do_handshake_on_connect=False)
                self.conns[c.sock] = c
                self.sel.register(c.sock, selectors.EVENT_READ, c)
                c.state = "handshake"
                self.handshake(c, now)

    def handshake(self, c, now):
        try:
            c.sock.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (OSError, ssl.SSLError):
            self.finish(c, now, True)
            return
        c.state = "trickle"
        c.stage_start = now
        c.payload = HEADER
        c.sent = 0
        c.next_byte = now

    def tick(self, now):
        for c in list(self.conns.values()):
            if c.state == "trickle" and now >= c.next_byte and c.sent < len(c.payload):
                try:
                    c.sock.send(c.payload[c.sent:c.sent + 1])
                    c.sent += 1
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                    pass
                except (OSError, ssl.SSLError):
                    self.finish(c, now, True)
                    continue
                c.next_byte = now + self.trickle
        missing = self.count - len(self.conns)
        for i in range(missing):
            self.open_one(self.KINDS[(self.opened + i) % 3], now)

    def run(self):
        while not self.stopping.is_set():
            now = time.monotonic()
            self.tick(now)
            for key, _ in self.sel.select(timeout=0.05):
                if key.fileobj in self.conns:
                    self.readable(key.data, time.monotonic())
        now = time.monotonic()
        self.outlived = [(c.kind, now - c.stage_start) for c in self.conns.values()
                         if c.state == "trickle" and now - c.stage_start > self.deadline]
        for c in list(self.conns.values()):
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()
        self.conns.clear()

    def stop(self):
        self.stopping.set()
        self.join(30)

    def open_now(self):
        return len(self.conns)


# -- the run ---------------------------------------------------------------------------------------
def write_config(d, ca, cert, sink, port, admin, args):
    return write_proxy_config(
        os.path.join(d, "s2s-proxy.toml"), written_by="tests/bench/soak.py", sink_port=sink, port=port, ca=ca,
        cert=cert, secret="soak-dialback-secret",
        local_extra=f"remote_idle_timeout = {int(args.remote_idle * 1000)}\n",
        listener_extra=f"state_timeout = {int(args.state_timeout * 1000)}\n",
        tail=f"""
[admin]
listen = "127.0.0.1:{admin}"
""")


def pct(a, b):
    return 100.0 * (a - b) / b if b else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=None)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--links", type=int, default=2000, help="links per wave")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--stanzas", type=int, default=5, help="stanzas per link")
    ap.add_argument("--pool", type=int, default=0,
                    help="remote domains the links' domains come from (0: a new domain for every link)")
    ap.add_argument("--remote-idle", type=float, default=10,
                    help="local.remote_idle_timeout, s (shorter than --pause, so a wave's domains are forgotten)")
    ap.add_argument("--warmup", type=int, default=2, help="waves before the baseline is taken")
    ap.add_argument("--pause", type=float, default=20, help="seconds between waves")
    ap.add_argument("--slowloris", type=int, default=150)
    ap.add_argument("--trickle", type=float, default=1.0, help="seconds between a slowloris' bytes")
    ap.add_argument("--state-timeout", type=float, default=5.0)
    ap.add_argument("--slack", type=float, default=2.0)
    ap.add_argument("--sample", type=float, default=2.0, help="seconds between samples")
    ap.add_argument("--rss-tolerance", type=float, default=5.0)
    ap.add_argument("--fd-tolerance", type=float, default=5.0)
    args = ap.parse_args()
    build = os.path.abspath(args.build if os.path.isabs(args.build) else os.path.join(REPO, args.build))
    out = os.path.abspath(args.out or os.path.join(build, "soak"))
    os.makedirs(out, exist_ok=True)
    tool_bin, proxy_bin = os.path.join(build, "s2s-bench"), os.path.join(build, "s2s-proxy")
    for b in (tool_bin, proxy_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} is missing: make bench-tools BUILD={build}")

    failures = []
    with Procs(prefix="s2s-soak-") as procs:
        ca = CA(procs.mkdir("ca"))
        local_cert = ca.issue(LOCAL, name="local")
        gen_cert = ca.issue(GEN, sans=[GEN, "*." + GEN], name="gen")
        d = procs.mkdir("s2s-proxy")
        sink, port, admin = free_port("127.0.0.1"), free_port("127.0.0.1"), free_port("127.0.0.1")
        cfg = write_config(d, ca, local_cert, sink, port, admin, args)
        tool = subprocess.Popen(
            [tool_bin, "waves", f"--target=127.0.0.1:{port}", f"--sink=127.0.0.1:{sink}", "--sources=8",
             f"--links={args.links}", f"--concurrency={args.concurrency}", f"--stanzas={args.stanzas}",
             f"--pool={args.pool}", f"--client-cert={gen_cert.chain}", f"--client-key={gen_cert.key}",
             f"--ca={ca.cert}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        procs.callback(lambda: tool.poll() is None and tool.kill())
        ready = tool.stdout.readline()
        if '"ready"' not in ready:
            sys.exit(f"s2s-bench waves did not start: {ready}")
        proxy = procs.start("s2s-proxy", [proxy_bin, "--config", cfg], cwd=d,
                            log_path=os.path.join(d, "s2s-proxy.log"))
        procs.wait_port("127.0.0.1", port, 10, proxy)
        procs.wait_port("127.0.0.1", admin, 10, proxy)
        time.sleep(1)
        start_metrics = scrape(admin)
        slow = Slowloris(port, args.slowloris, args.trickle, args.state_timeout + args.slack)
        slow.start()

        samples, waves = [], []
        t0 = time.monotonic()
        state = {"wave": 0, "active": 0}
        stop_sampling = threading.Event()

        def sample():
            m = scrape(admin)
            rss, fds = proc_sample(proxy.pid)
            row = dict(t=round(time.monotonic() - t0, 1), rss_kb=rss, fds=fds,
                       lag_ms=round(1000 * total(m, "s2s_proxy_event_loop_lag_seconds"), 2),
                       connections=int(total(m, "s2s_proxy_connections")), wave=state["wave"], active=state["active"],
                       slowloris=slow.open_now(),
                       received=int(total(m, "s2s_proxy_stanzas_received_total")),
                       delivered=int(total(m, "s2s_proxy_stanzas_delivered_total")))
            samples.append(row)
            return row, m

        def sampler():
            while not stop_sampling.wait(args.sample):
                if not proxy.alive():
                    return
                try:
                    sample()
                except (OSError, ValueError):
                    pass

        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        end = t0 + args.minutes * 60
        baseline = None
        try:
            while time.monotonic() < end and proxy.alive():
                state["wave"] += 1
                state["active"] = 1
                tool.stdin.write("wave\n")
                tool.stdin.flush()
                line = tool.stdout.readline()
                state["active"] = 0
                if not line:
                    failures.append("s2s-bench waves ended early")
                    break
                w = json.loads(line)
                time.sleep(args.pause)
                # Three samples at the end of the pause, the median of each figure.
                trio = []
                for _ in range(3):
                    trio.append(proc_sample(proxy.pid))
                    time.sleep(0.5)
                w["rss_kb"] = sorted(x[0] for x in trio)[1]
                w["fds"] = sorted(x[1] for x in trio)[1]
                w["t"] = round(time.monotonic() - t0, 1)
                waves.append(w)
                if baseline is None and w["wave"] >= args.warmup:
                    baseline = (w["rss_kb"], w["fds"])
                if baseline is None:
                    log(f"wave {w['wave']} (warm-up): RSS {w['rss_kb'] / 1024:.1f} MB, {w['fds']} fds"
                        + (f"; ERROR {w['error']}" if "error" in w else ""))
                    if "error" in w:
                        failures.append(f"wave {w['wave']}: {w['error']}")
                    continue
                w["rss_vs_baseline_pct"] = round(pct(w["rss_kb"], baseline[0]), 2)
                w["fds_vs_baseline"] = w["fds"] - baseline[1]
                log(f"wave {w['wave']}: {int(w.get('links', 0))} links in {w.get('seconds', 0):.1f} s, "
                    f"{int(w.get('delivered', 0))}/{int(w.get('sent', 0))} stanzas delivered; after: "
                    f"RSS {w['rss_kb'] / 1024:.1f} MB ({w['rss_vs_baseline_pct']:+.1f}%), {w['fds']} fds"
                    + (f"; ERROR {w['error']}" if "error" in w else ""))
                if "error" in w:
                    failures.append(f"wave {w['wave']}: {w['error']}")
                rss_limit = baseline[0] * (1 + args.rss_tolerance / 100)
                fd_limit = baseline[1] * (1 + args.fd_tolerance / 100) + 8
                if w["rss_kb"] > rss_limit:
                    failures.append(f"wave {w['wave']}: RSS {w['rss_kb']} kB after the wave, over the baseline "
                                    f"{baseline[0]} kB + {args.rss_tolerance}%")
                if w["fds"] > fd_limit or w["fds"] < baseline[1] * (1 - args.fd_tolerance / 100) - 8:
                    failures.append(f"wave {w['wave']}: {w['fds']} fds after the wave, baseline {baseline[1]}")
        finally:
            stop_sampling.set()
            th.join(10)
            slow.stop()
            # The counters at the end, while the sink (the local server) is still up.
            end_metrics = {}
            if proxy.alive():
                time.sleep(2)
                end_metrics = scrape(admin)
            tool.stdin.close()
            tool.wait(60)
        if not end_metrics:
            failures.append(f"s2s-proxy died ({proxy.returncode}):\n{proxy.tail()}")

        # Counters: no error counter grew; received = delivered + bounced + dropped.
        grew = {}
        if end_metrics:
            e0, e1 = errors_of(start_metrics), errors_of(end_metrics)
            grew = {k: v - e0.get(k, 0) for k, v in e1.items() if v > e0.get(k, 0)}
            for k, v in grew.items():
                failures.append(f"error counter grew: {k} +{v:g}")
            rec = total(end_metrics, "s2s_proxy_stanzas_received_total")
            acc = (total(end_metrics, "s2s_proxy_stanzas_delivered_total")
                   + total(end_metrics, "s2s_proxy_stanzas_bounced_total")
                   + total(end_metrics, "s2s_proxy_stanzas_dropped_total"))
            if rec != acc:
                failures.append(f"counters do not balance: received {rec:g}, delivered+bounced+dropped {acc:g}")
        # Slowloris: every one closed by s2s-proxy by its deadline, none outliving it.
        deadline = args.state_timeout + args.slack
        late = [c for c in slow.closed if c[2] and c[1] > deadline]
        if late:
            failures.append(f"{len(late)} slowloris connections closed after their deadline; worst "
                            f"{max(c[1] for c in late):.1f} s ({late[0][0]})")
        if slow.outlived:
            failures.append(f"{len(slow.outlived)} slowloris connections still open past their deadline at the end")
        if not slow.closed:
            failures.append("no slowloris connection was closed")
        if slow.open_failures:
            failures.append(f"{slow.open_failures} slowloris connections could not connect")

        summary = summarize(args, samples, waves, slow, grew, failures, baseline)
        write_outputs(out, samples, waves, slow, summary)
        err = plot(out, samples, waves)
        if err:
            log(f"plot: {err}")
        log(json.dumps(summary, indent=1))
    if failures:
        for f in failures:
            log(f"FAIL {f}")
        log(f"soak: {len(failures)} checks failed")
        return 1
    log("soak: passed")
    return 0


def summarize(args, samples, waves, slow, grew, failures, baseline):
    lags = sorted(s["lag_ms"] for s in samples)
    measured = [w for w in waves if "rss_vs_baseline_pct" in w]
    by_kind = {}
    for kind, secs, by_server in slow.closed:
        k = by_kind.setdefault(kind, {"closed": 0, "max_s": 0.0})
        k["closed"] += 1
        k["max_s"] = round(max(k["max_s"], secs), 2)
    return {
        "minutes": round((samples[-1]["t"] if samples else 0) / 60, 1),
        "waves": len(waves),
        "links": int(sum(w.get("links", 0) for w in waves)),
        "stanzas_sent": int(sum(w.get("sent", 0) for w in waves)),
        "stanzas_delivered": int(sum(w.get("delivered", 0) for w in waves)),
        "baseline_rss_kb": baseline[0] if baseline else None,
        "baseline_fds": baseline[1] if baseline else None,
        "after_wave_rss_pct_max": max((w["rss_vs_baseline_pct"] for w in measured), default=None),
        "after_wave_rss_pct_last": measured[-1]["rss_vs_baseline_pct"] if measured else None,
        "after_wave_fds_max_delta": max((w["fds_vs_baseline"] for w in measured), default=None),
        "peak_rss_kb": max((s["rss_kb"] for s in samples), default=None),
        "peak_fds": max((s["fds"] for s in samples), default=None),
        "loop_lag_ms_median": lags[len(lags) // 2] if lags else None,
        "loop_lag_ms_max": lags[-1] if lags else None,
        "slowloris": by_kind,
        "slowloris_deadline_s": args.state_timeout + args.slack,
        "error_counters_grew": grew,
        "failures": failures,
    }


def write_outputs(out, samples, waves, slow, summary):
    if samples:
        with open(os.path.join(out, "samples.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(samples[0].keys()))
            w.writeheader()
            w.writerows(samples)
    keys = ["wave", "t", "seconds", "links", "failures", "sent", "delivered", "rss_kb", "fds",
            "rss_vs_baseline_pct", "fds_vs_baseline", "error"]
    with open(os.path.join(out, "waves.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(waves)
    with open(os.path.join(out, "slowloris.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["kind", "seconds_to_close", "closed_by_server"])
        w.writerows((k, round(s, 3), int(b)) for k, s, b in slow.closed)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


def plot(out, samples, waves):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot not found (make soak installs gnuplot-nox)"
    if not samples:
        return "no samples"
    data = os.path.join(out, "samples.csv")
    after = os.path.join(out, "waves.csv")
    script = os.path.join(out, "soak.gp")
    png = os.path.join(out, "soak.png")
    with open(script, "w") as f:
        f.write(f"""# written by tests/bench/soak.py
set terminal png size 1200,760 font ",10"
set output "{png}"
set datafile separator ","
set key autotitle columnhead below
set multiplot layout 2,1
set grid
set xlabel "minutes"
set title "s2s-proxy memory and descriptors: waves of links, slowloris throughout"
set ylabel "RSS, MB"
set y2label "open descriptors"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot "{data}" using ($1/60):($2/1024) with lines lw 1 title "RSS (every sample)", \\
     "{after}" using ($2/60):($8/1024) with points pt 7 ps 1 title "RSS after each wave", \\
     "{data}" using ($1/60):3 axes x1y2 with lines lw 1 title "descriptors"
set title "event loop lag (worst over 10-20 s) and open streams"
set ylabel "lag, ms"
set y2label "open streams"
plot "{data}" using ($1/60):4 with lines lw 1 title "loop lag", \\
     "{data}" using ($1/60):5 axes x1y2 with lines lw 1 title "streams"
unset multiplot
""")
    cp = subprocess.run([gnuplot, script], capture_output=True, text=True, timeout=60)
    if cp.returncode != 0:
        return f"gnuplot failed: {cp.stderr[-500:]}"
    return ""


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KitError as e:
        sys.exit(f"soak: {e}")
