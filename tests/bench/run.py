#!/usr/bin/python3
"""make bench: s2s-proxy against the hardware limit and Prosody, on loopback, in one run.

    /usr/bin/python3 tests/bench/run.py --build build --out build/bench        # what make bench runs
    ... --smoke                       # small N, a few seconds (tests/bench/smoke.sh)
    ... --only=limit,throughput       # some phases only (others are null in results.json)
    ... --skip-prosody                # no Prosody comparisons

Phases (tests/bench/README.md has the method): limit (the stanza micro-benchmark), throughput
(1 and 100 TLS links through s2s-proxy), latency (through s2s-proxy and direct), handshakes (the
handshake micro-benchmark, then new links into s2s-proxy; full and resumed), memory (idle links
into s2s-proxy), prosody (the same generator against Prosody 0.12).
The load generator, the sink and the micro-benchmarks are build/s2s-bench (tests/bench/*.cpp);
this script makes the certificates, starts s2s-proxy, dnsmasq and Prosody on loopback (through
tests/integration/kit), runs the tool, and writes:

    OUT/results.json   exactly the keys in KEYS (numbers; null if a phase did not run or failed)
    OUT/details.json   every raw measurement
    OUT/table.txt      the table printed at the end
    OUT/bench.png      latency distributions and throughput (gnuplot), OUT/bench.gp its script

Exit status 1 if a phase that ran failed. Needs root (Prosody runs as its own user).
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from kit import CA, Dnsmasq, Procs, Prosody, Zone, free_port  # noqa: E402
from kit.procs import KitError  # noqa: E402
from proxy_config import write_proxy_config  # noqa: E402

KEYS = [
    "limit_stanzas_per_s", "proxy_stanzas_per_s", "proxy_cpu_s_per_100k", "prosody_stanzas_per_s",
    "proxy_100_links_stanzas_per_s", "added_latency_p50_ms", "added_latency_p99_ms", "added_latency_p999_ms",
    "rss_per_idle_tls_link_kb_1k", "rss_per_idle_tls_link_kb_10k", "prosody_rss_per_idle_tls_link_kb",
    "handshakes_per_s", "limit_handshakes_per_s",
]
PHASES = ["limit", "throughput", "latency", "handshakes", "memory", "prosody"]

LOCAL = "local.test"      # the domain s2s-proxy fronts (the sink plays its server)
GEN = "gen.test"          # the generator's domains: gen.test and l<N>.gen.test

# Sizes of a full run and of the smoke run.
FULL = dict(limit_stanzas=200_000, limit_rounds=3, hs_limit_s=3, warmup=1, tput_s=5, links=100,
            lat_rate=1000, lat_s=15, hs_s=6, hs_conc=64, idle_counts=[1000, 10000], idle_settle=16,
            prosody_s=6, prosody_idle=1000, prosody_settle=5)
SMOKE = dict(limit_stanzas=20_000, limit_rounds=1, hs_limit_s=0.3, warmup=0.2, tput_s=0.5, links=5,
             lat_rate=1000, lat_s=0.5, hs_s=0.7, hs_conc=4, idle_counts=[20, 40], idle_settle=0.3,
             prosody_s=1, prosody_idle=20, prosody_settle=0.3)


def log(msg):
    print(msg, flush=True)


class ToolError(Exception):
    pass


class Bench:
    def __init__(self, procs, build, out, sizes):
        self.procs = procs
        self.build = build
        self.out = out
        self.n = sizes
        self.tool_bin = os.path.join(build, "s2s-bench")
        self.proxy_bin = os.path.join(build, "s2s-proxy")
        for b in (self.tool_bin, self.proxy_bin):
            if not os.access(b, os.X_OK):
                raise KitError(f"{b} is missing: make bench-tools BUILD={build}")
        self.details = {}
        self.errors = {}
        ca = CA(procs.mkdir("ca"))
        self.ca = ca
        self.local_cert = ca.issue(LOCAL, name="local")
        self.gen_cert = ca.issue(GEN, sans=[GEN, "*." + GEN], name="gen")
        self.certs = [f"--server-cert={self.local_cert.chain}", f"--server-key={self.local_cert.key}",
                      f"--client-cert={self.gen_cert.chain}", f"--client-key={self.gen_cert.key}",
                      f"--ca={ca.cert}"]
        self.proxy = None

    # -- the tool ------------------------------------------------------------------------------
    def tool(self, name, *args, timeout=120):
        argv = [self.tool_bin, *args, *self.certs]
        t = time.monotonic()
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ToolError(f"{name}: no result after {timeout} s") from None
        lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            raise ToolError(f"{name}: no result (exit {cp.returncode}): {cp.stdout[-500:]} {cp.stderr[-500:]}")
        result = json.loads(lines[-1])
        result["wall_s"] = round(time.monotonic() - t, 2)
        self.details[name] = result
        if "error" in result:
            raise ToolError(f"{name}: {result['error']}")
        return result

    # -- s2s-proxy -----------------------------------------------------------------------------
    def start_proxy(self, sink_port):
        """A fresh s2s-proxy: [[listen.s2s]] with STARTTLS, the CA trusted for client certificates
        (SASL EXTERNAL), local.server = the sink. Its resolver points at a loopback port where
        nothing answers, so a bounce toward the generator's domains never leaves the machine."""
        self.stop_proxy()
        d = self.procs.mkdir("s2s-proxy")
        port, local_port = free_port("127.0.0.1"), free_port("127.0.0.1")
        cfg = write_proxy_config(os.path.join(d, "s2s-proxy.toml"), written_by="tests/bench/run.py",
                                 sink_port=sink_port, port=port, ca=self.ca, cert=self.local_cert,
                                 secret="bench-dialback-secret",
                                 tail=f"""
[[listen.local]]
port = {local_port}
ip_address = "127.0.0.1"
""")
        proc = self.procs.start("s2s-proxy", [self.proxy_bin, "--config", cfg], cwd=d,
                                log_path=os.path.join(d, "s2s-proxy.log"))
        self.procs.wait_port("127.0.0.1", port, 10, proc)
        self.proxy = proc
        return proc, port

    def stop_proxy(self):
        if self.proxy:
            self.proxy.stop()
            self.proxy = None

    def proxy_run(self, name, command, *args, timeout=120):
        """`command` against a fresh s2s-proxy whose local server is the tool's sink."""
        sink = free_port("127.0.0.1")
        proc, port = self.start_proxy(sink)
        try:
            return self.tool(name, command, f"--target=127.0.0.1:{port}", f"--sink=127.0.0.1:{sink}",
                             f"--pid={proc.pid}", "--sources=8", *args, timeout=timeout)
        finally:
            if not proc.alive():
                raise ToolError(f"{name}: s2s-proxy died ({proc.returncode}):\n{proc.tail()}")
            self.stop_proxy()

    # -- phases --------------------------------------------------------------------------------
    def phase_limit(self):
        n = self.n
        self.tool("limit", "limit", f"--stanzas={n['limit_stanzas']}", f"--rounds={n['limit_rounds']}")

    def phase_throughput(self):
        n = self.n
        common = [f"--warmup={n['warmup']}", f"--seconds={n['tput_s']}"]
        self.proxy_run("proxy_1_link", "throughput", "--links=1", *common)
        self.proxy_run("proxy_100_links", "throughput", f"--links={n['links']}", *common)

    def latency_run(self, name, through_proxy):
        """One latency measurement: the sink in a process of its own (as the receiving server is),
        the generator sending `lat_rate` stanzas/s, either into s2s-proxy (whose local server is the
        sink) or straight into the sink, which then does STARTTLS and the TLS decryption itself."""
        n = self.n
        sink = free_port("127.0.0.1")
        out = os.path.join(self.out, f"latency-{'proxy' if through_proxy else 'direct'}.dat")
        argv = [self.tool_bin, "latency-sink", f"--sink=127.0.0.1:{sink}", f"--warmup={n['warmup']}",
                f"--seconds={n['lat_s']}", f"--samples-out={out}", f"--raw-out={out[:-4]}-raw.dat", *self.certs]
        if not through_proxy:
            argv.append("--sink-tls")
        sink_proc = self.procs.start(f"sink-{name}", argv)
        try:
            self.procs.wait_port("127.0.0.1", sink, 10, sink_proc)
            pace = [f"--rate={n['lat_rate']}", f"--seconds={n['warmup'] + n['lat_s'] + 0.5}"]
            if through_proxy:
                proc, port = self.start_proxy(sink)
                try:
                    self.tool(name + "_generator", "pace", f"--target=127.0.0.1:{port}", *pace)
                finally:
                    self.stop_proxy()
            else:
                self.tool(name + "_generator", "pace", f"--target=127.0.0.1:{sink}", "--auth=dialback", *pace)
            end = time.monotonic() + 15
            while sink_proc.alive() and time.monotonic() < end:
                time.sleep(0.05)
        finally:
            sink_proc.stop()
        with open(sink_proc.log_path) as f:
            lines = [ln for ln in f.read().splitlines() if ln.startswith("{")]
        if not lines:
            raise ToolError(f"{name}: the sink printed no result:\n{sink_proc.tail()}")
        result = json.loads(lines[-1])
        self.details[name] = result
        if "error" in result:
            raise ToolError(f"{name}: {result['error']}")
        return result

    def phase_latency(self):
        self.latency_run("latency_proxy", True)
        self.latency_run("latency_direct", False)

    def phase_handshakes(self):
        """Links that authenticate (STARTTLS, full handshake with a client certificate, SASL
        EXTERNAL) and end at once, `hs_conc` at a time; then the same resuming a TLS session
        (session ticket) as a remote server reconnecting would."""
        n = self.n
        # The limit right before, so that both see the machine in the same state.
        self.tool("handshake_limit", "handshake-limit", f"--seconds={n['hs_limit_s']}")
        self.proxy_run("handshakes", "handshakes", f"--concurrency={n['hs_conc']}", f"--seconds={n['hs_s']}",
                       f"--warmup={n['warmup']}")
        self.tool("handshake_limit_resumed", "handshake-limit", "--resume", f"--seconds={n['hs_limit_s'] / 3}")
        self.proxy_run("handshakes_resumed", "handshakes", "--resume", "--concurrency=16",
                       f"--seconds={n['hs_s'] / 2}", f"--warmup={n['warmup']}")

    def phase_memory(self):
        n = self.n
        counts = ",".join(str(c) for c in n["idle_counts"])
        self.proxy_run("idle_proxy", "idle", f"--counts={counts}", f"--settle={n['idle_settle']}",
                       "--concurrency=64", timeout=600)

    def phase_prosody(self):
        """The same generator against Prosody 0.12 as the receiving server: STARTTLS, then dialback,
        which Prosody verifies with the generator's authoritative server (the tool's sink, found
        through DNS SRV for gen.test on a dnsmasq on loopback)."""
        n = self.n
        sink = free_port("127.0.0.1")
        zone = (Zone().srv(f"_xmpp-server._tcp.{GEN}", f"host.{GEN}", sink).a(f"host.{GEN}", "127.0.0.1")
                .absent(f"_xmpps-server._tcp.{GEN}"))
        dns = Dnsmasq(self.procs, zone, log_queries=False).start()
        p = Prosody(self.procs, "bench", ip="127.0.0.1", dns=dns, ca=self.ca, s2s_require_encryption=False,
                    log_level="warn")
        p.add_host(LOCAL, cert=self.local_cert)
        p.start()
        try:
            link = [f"--target=127.0.0.1:{p.s2s_port}", f"--sink=127.0.0.1:{sink}", f"--sink-domain={GEN}",
                    f"--pid={p.proc.pid}", f"--from={GEN}", "--auth=dialback", "--sources=8"]
            self.tool("prosody_idle", "idle", *link, f"--counts={n['prosody_idle']}",
                      f"--settle={n['prosody_settle']}", "--concurrency=32", timeout=300)
            self.tool("prosody_1_link", "throughput", *link, "--links=1", "--markers=1000",
                      f"--warmup={n['warmup']}", f"--seconds={n['prosody_s']}", timeout=120)
        finally:
            if not p.proc.alive():
                raise ToolError(f"Prosody died:\n{p.proc.tail()}")
            p.stop()
            dns.stop()

    # -- results -------------------------------------------------------------------------------
    def results(self):
        d = self.details

        def get(name, key, index=None):
            v = d.get(name, {}).get(key)
            if v is None or "error" in d.get(name, {}):
                return None
            return v[index] if index is not None else v

        def diff(a, b):
            return None if a is None or b is None else a - b

        def per_link(count):
            idle = d.get("idle_proxy", {})
            if "error" in idle:
                return None
            for links, kb in zip(idle.get("links", []), idle.get("per_link_kb", [])):
                if links == count:
                    return kb
            return None

        counts = self.n["idle_counts"]
        r = {
            "limit_stanzas_per_s": get("limit", "limit_stanzas_per_s"),
            "proxy_stanzas_per_s": get("proxy_1_link", "stanzas_per_s"),
            "proxy_cpu_s_per_100k": get("proxy_1_link", "cpu_s_per_100k"),
            "prosody_stanzas_per_s": get("prosody_1_link", "stanzas_per_s"),
            "proxy_100_links_stanzas_per_s": get("proxy_100_links", "stanzas_per_s"),
            "added_latency_p50_ms": diff(get("latency_proxy", "p50_ms"), get("latency_direct", "p50_ms")),
            "added_latency_p99_ms": diff(get("latency_proxy", "p99_ms"), get("latency_direct", "p99_ms")),
            "added_latency_p999_ms": diff(get("latency_proxy", "p999_ms"), get("latency_direct", "p999_ms")),
            "rss_per_idle_tls_link_kb_1k": per_link(counts[0]),
            "rss_per_idle_tls_link_kb_10k": per_link(counts[-1]),
            "prosody_rss_per_idle_tls_link_kb": get("prosody_idle", "per_link_kb", 0),
            "handshakes_per_s": get("handshakes", "handshakes_per_s"),
            "limit_handshakes_per_s": get("handshake_limit", "limit_handshakes_per_s"),
        }
        return {k: tidy(v) for k, v in r.items()}


# -- table and plot --------------------------------------------------------------------------------
def tidy(v):
    """A figure rounded to what the measurement can tell (4 significant digits)."""
    if v is None:
        return None
    return float(f"{v:.4g}") if abs(v) < 1e4 else round(v)


def fmt(v, digits=3):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def table(r, details, sizes):
    limit_cpu_100k = None if r["limit_stanzas_per_s"] is None else 1e5 / r["limit_stanzas_per_s"]
    hs = details.get("handshakes", {})
    hsr = details.get("handshakes_resumed", {})
    hslr = details.get("handshake_limit_resumed", {})

    def util(name):
        d = details.get(name, {})
        if "server_cpu_util" not in d:
            return ""
        return f"; server at {d['server_cpu_util']:.0%} of a core, {fmt(d.get('stanzas_per_cpu_s'))}/CPU s"

    rows = [
        ("stanzas/s, limit (1 core: decrypt + parse + serialize + write)", r["limit_stanzas_per_s"], ""),
        ("stanzas/s, s2s-proxy, 1 TLS link", r["proxy_stanzas_per_s"],
         f"{fmt(ratio(r['proxy_stanzas_per_s'], r['limit_stanzas_per_s']))} x limit, "
         f"{fmt(ratio(r['proxy_stanzas_per_s'], r['prosody_stanzas_per_s']))} x Prosody" + util("proxy_1_link")),
        ("CPU s per 100k stanzas, s2s-proxy", r["proxy_cpu_s_per_100k"],
         f"{fmt(ratio(r['proxy_cpu_s_per_100k'], limit_cpu_100k))} x limit ({fmt(limit_cpu_100k)})"),
        (f"stanzas/s, s2s-proxy, {sizes['links']} TLS links", r["proxy_100_links_stanzas_per_s"],
         f"{fmt(ratio(r['proxy_100_links_stanzas_per_s'], r['limit_stanzas_per_s']))} x limit" + util("proxy_100_links")),
        ("stanzas/s, Prosody 0.12, 1 STARTTLS link", r["prosody_stanzas_per_s"],
         f"{fmt(ratio(r['prosody_stanzas_per_s'], r['limit_stanzas_per_s']))} x limit" + util("prosody_1_link")),
        ("added latency p50, ms (1k stanzas/s)", r["added_latency_p50_ms"],
         f"through {fmt(details.get('latency_proxy', {}).get('p50_ms'))}, direct "
         f"{fmt(details.get('latency_direct', {}).get('p50_ms'))}"),
        ("added latency p99, ms", r["added_latency_p99_ms"],
         f"through {fmt(details.get('latency_proxy', {}).get('p99_ms'))}, direct "
         f"{fmt(details.get('latency_direct', {}).get('p99_ms'))}"),
        ("added latency p99.9, ms", r["added_latency_p999_ms"],
         f"through {fmt(details.get('latency_proxy', {}).get('p999_ms'))}, direct "
         f"{fmt(details.get('latency_direct', {}).get('p999_ms'))}"),
        (f"RSS per idle TLS link, KB, {sizes['idle_counts'][0]} links", r["rss_per_idle_tls_link_kb_1k"],
         f"{fmt(ratio(r['rss_per_idle_tls_link_kb_1k'], r['prosody_rss_per_idle_tls_link_kb']))} x Prosody"),
        (f"RSS per idle TLS link, KB, {sizes['idle_counts'][-1]} links", r["rss_per_idle_tls_link_kb_10k"], ""),
        (f"RSS per idle TLS link, KB, Prosody, {sizes['prosody_idle']} links",
         r["prosody_rss_per_idle_tls_link_kb"], ""),
        ("new TLS S2S links/s, s2s-proxy", r["handshakes_per_s"],
         f"{fmt(ratio(r['handshakes_per_s'], r['limit_handshakes_per_s']))} x limit; s2s-proxy CPU "
         f"{fmt(hs.get('server_cpu_util'))} of a core, {fmt(hs.get('handshakes_per_cpu_s'))} per CPU second"),
        ("TLS handshakes/s, limit (mbedTLS, server side, 1 core)", r["limit_handshakes_per_s"],
         details.get("handshake_limit", {}).get("suite", "")),
        ("resumed TLS S2S links/s, s2s-proxy (session ticket)", hsr.get("handshakes_per_s"),
         f"s2s-proxy CPU {fmt(hsr.get('server_cpu_util'))} of a core, {fmt(hsr.get('handshakes_per_cpu_s'))} per CPU "
         f"second; generator CPU {fmt(hsr.get('generator_cpu_util'))}"),
        ("resumed TLS handshakes/s, limit", hslr.get("limit_handshakes_per_s"), ""),
    ]
    w = max(len(x[0]) for x in rows)
    lines = [f"{'figure':<{w}}  {'value':>10}  ratio / note", "-" * (w + 40)]
    for name, v, note in rows:
        lines.append(f"{name:<{w}}  {fmt(v):>10}  {note}")

    # The targets of issue 7.
    idle = details.get("idle_proxy", {})
    held = None if "links" not in idle or "error" in idle else (idle.get("failures") == 0 and
                                                               idle["links"][-1] == sizes["idle_counts"][-1])
    targets = [
        ("s2s-proxy >= 0.5 x limit (stanzas/s)", ratio(r["proxy_stanzas_per_s"], r["limit_stanzas_per_s"]), 0.5, True),
        ("s2s-proxy >= 10 x Prosody (stanzas/s)", ratio(r["proxy_stanzas_per_s"], r["prosody_stanzas_per_s"]), 10, True),
        ("added latency p99 <= 0.5 ms", r["added_latency_p99_ms"], 0.5, False),
        (f"RSS per idle TLS link at {sizes['idle_counts'][-1]} links <= 37 KB", r["rss_per_idle_tls_link_kb_10k"], 37,
         False),
        ("new links/s >= 0.9 x handshake limit", ratio(r["handshakes_per_s"], r["limit_handshakes_per_s"]), 0.9, True),
    ]
    lines += ["", "targets (issue 7):"]
    for name, v, bound, at_least in targets:
        verdict = "-" if v is None else ("met" if (v >= bound if at_least else v <= bound) else "SHORT")
        lines.append(f"  {name:<{w - 2}}  {fmt(v):>10}  {verdict}")
    name = f"{sizes['idle_counts'][-1]} idle links held with no error"
    lines.append(f"  {name:<{w - 2}}  {'-' if held is None else ('yes' if held else 'NO'):>10}")
    return "\n".join(lines)


def plot(out, r):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot not found (make bench installs gnuplot-nox)"
    bars = os.path.join(out, "throughput.dat")
    with open(bars, "w") as f:
        for i, (label, key) in enumerate((("limit", "limit_stanzas_per_s"), ("s2s-proxy\\n1 link", "proxy_stanzas_per_s"),
                                          ("s2s-proxy\\n100 links", "proxy_100_links_stanzas_per_s"),
                                          ("Prosody\\n1 link", "prosody_stanzas_per_s"))):
            v = r.get(key)
            f.write(f'{i} "{label}" {0 if v is None else v / 1000:.2f}\n')
    top = max([(r.get(k) or 0) / 1000 for k in ("limit_stanzas_per_s", "proxy_stanzas_per_s",
                                                "proxy_100_links_stanzas_per_s", "prosody_stanzas_per_s")] + [1]) * 1.15
    script = os.path.join(out, "bench.gp")
    png = os.path.join(out, "bench.png")
    lat_p = os.path.join(out, "latency-proxy.dat")
    lat_d = os.path.join(out, "latency-direct.dat")
    with open(script, "w") as f:
        f.write(f"""# written by tests/bench/run.py
set terminal png size 1200,480 font ",10"
set output "{png}"
set multiplot layout 1,2
set title "One-way delay at 1k stanzas/s (fraction of stanzas slower than x)"
set logscale xy
set xlabel "delay, ms"
set ylabel "fraction slower"
set format y "%g"
set yrange [0.0005:1]
set xrange [0.01:100]
set key top right
set grid
plot "{lat_d}" using 1:($2 < 1 ? 1 - $2 : 1/0) with lines lw 2 title "generator -> sink (direct, TLS)", \\
     "{lat_p}" using 1:($2 < 1 ? 1 - $2 : 1/0) with lines lw 2 title "generator -> s2s-proxy -> sink"
unset logscale
set title "Stanzas per second (one core; 300-byte stanzas over TLS)"
set bmargin 4
set xlabel ""
set ylabel "thousand stanzas/s"
set yrange [0:{top:.0f}]
set xrange [-0.6:3.6]
set style fill solid 0.6
set boxwidth 0.6
set xtics nomirror
unset grid
set grid ytics
plot "{bars}" using 1:3:xtic(2) with boxes notitle, \\
     "" using 1:3:(sprintf("%.1fk", $3)) with labels offset 0,1 notitle
unset multiplot
""")
    cp = subprocess.run([gnuplot, script], capture_output=True, text=True, timeout=60)
    if cp.returncode != 0:
        return f"gnuplot failed: {cp.stderr[-500:]}"
    return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=None)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated phases: " + ",".join(PHASES))
    ap.add_argument("--skip-prosody", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build if os.path.isabs(args.build) else os.path.join(REPO, args.build))
    out = os.path.abspath(args.out or os.path.join(build, "bench"))
    os.makedirs(out, exist_ok=True)
    sizes = SMOKE if args.smoke else FULL
    phases = [p for p in (args.only.split(",") if args.only else PHASES) if p]
    for p in phases:
        if p not in PHASES:
            ap.error(f"unknown phase {p} (known: {', '.join(PHASES)})")
    if args.skip_prosody and "prosody" in phases:
        phases.remove("prosody")
    if os.geteuid() != 0 and "prosody" in phases:
        log("bench: not root: Prosody cannot run as its own user; skipping the Prosody phase")
        phases.remove("prosody")
    # 10k links need 10k descriptors in s2s-proxy (and Prosody): children inherit this limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    started = time.monotonic()
    failed = []
    with Procs(prefix="s2s-bench-") as procs:
        bench = Bench(procs, build, out, sizes)
        for p in phases:
            t = time.monotonic()
            log(f"bench: {p} ...")
            try:
                getattr(bench, "phase_" + p)()
                log(f"bench: {p} done in {time.monotonic() - t:.1f} s")
            except (ToolError, KitError) as e:
                failed.append(p)
                bench.errors[p] = str(e)
                log(f"bench: {p} FAILED: {e}")
        results = bench.results()
        details = bench.details
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "details.json"), "w") as f:
        json.dump({"sizes": sizes, "phases": phases, "errors": bench.errors, "runs": details,
                   "total_s": round(time.monotonic() - started, 1)}, f, indent=2)
        f.write("\n")
    text = table(results, details, sizes)
    with open(os.path.join(out, "table.txt"), "w") as f:
        f.write(text + "\n")
    print()
    print(text)
    why = plot(out, results) if ("latency" in phases or "throughput" in phases) else "no latency or throughput phase"
    print()
    print(f"bench: results in {os.path.join(out, 'results.json')}" +
          (f", plot {os.path.join(out, 'bench.png')}" if not why else f" (no plot: {why})"))
    print(f"bench: {time.monotonic() - started:.0f} s in all" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
