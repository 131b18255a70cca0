#!/usr/bin/env bash
# The benchmark tools with small N (make bench-smoke; part of make test): every phase of
# tests/bench/run.py runs for a moment, then the output is checked: each phase succeeded,
# results.json has exactly the expected keys and each is a number in a sane range.
# Prosody is included when running as root with Prosody installed (about 8 s more).
# Last line: "bench-summary: N passed, M failed". Environment: BUILD (default build).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
OUT=$BUILD/bench-smoke
PY=/usr/bin/python3
rm -rf "$OUT"
mkdir -p "$OUT"
# The tools are not part of `make all`: build them here when missing or stale.
make --no-print-directory BUILD="$BUILD" bench-tools >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; }

args=(--build "$BUILD" --out "$OUT" --smoke)
if [ "$(id -u)" != 0 ] || ! command -v prosody >/dev/null 2>&1; then
  args+=(--skip-prosody)
fi
"$PY" tests/bench/run.py "${args[@]}" >"$OUT/run.log" 2>&1
rc=$?
cat "$OUT/run.log"

"$PY" - "$OUT" "$rc" >"$OUT/check.log" 2>&1 <<'EOF'
import json, math, os, shutil, sys

out, rc = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, "tests/bench")
from run import KEYS, PHASES   # noqa: E402

passed = failed = 0

def check(name, ok, why=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}" + (f": {why}" if why else ""))

try:
    details = json.load(open(os.path.join(out, "details.json")))
    results = json.load(open(os.path.join(out, "results.json")))
except (OSError, ValueError) as e:
    check("run.py wrote results.json and details.json", False, str(e))
    print(f"bench-summary: {passed} passed, {failed + 1} failed")
    sys.exit(0)

check("run.py exit status", rc == 0, f"exit {rc}")
ran = details["phases"]
for phase in PHASES:
    if phase not in ran:
        print(f"skip  phase {phase}")
        continue
    check(f"phase {phase}", phase not in details["errors"], details["errors"].get(phase, ""))

check("results.json has exactly the expected keys", sorted(results) == sorted(KEYS),
      f"extra {sorted(set(results) - set(KEYS))}, missing {sorted(set(KEYS) - set(results))}")

prosody_keys = {"prosody_stanzas_per_s", "prosody_rss_per_idle_tls_link_kb"}
ranges = {   # loose: the smoke run only shows the tools measure something plausible
    "limit_stanzas_per_s": (1e3, 1e8), "proxy_stanzas_per_s": (100, 1e8), "proxy_cpu_s_per_100k": (1e-3, 100),
    "prosody_stanzas_per_s": (10, 1e8), "proxy_100_links_stanzas_per_s": (100, 1e8),
    "added_latency_p50_ms": (-50, 50), "added_latency_p99_ms": (-50, 200), "added_latency_p999_ms": (-50, 500),
    "rss_per_idle_tls_link_kb_1k": (1, 2000), "rss_per_idle_tls_link_kb_10k": (1, 2000),
    "prosody_rss_per_idle_tls_link_kb": (1, 5000), "handshakes_per_s": (1, 1e6), "limit_handshakes_per_s": (1, 1e6),
}
if os.environ.get("SAN"):   # make asan: the sanitizer's shadow memory inflates our RSS per link
    for key in ("rss_per_idle_tls_link_kb_1k", "rss_per_idle_tls_link_kb_10k"):
        ranges[key] = (1, 20000)
for key in KEYS:
    v = results.get(key)
    if key in prosody_keys and "prosody" not in ran:
        check(f"{key} is null without Prosody", v is None, repr(v))
        continue
    lo, hi = ranges[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
    check(f"{key} = {v}", ok, f"expected a number in [{lo}, {hi}]")

if shutil.which("gnuplot"):
    png = os.path.join(out, "bench.png")
    check("bench.png drawn", os.path.exists(png) and os.path.getsize(png) > 1000)
else:
    print("skip  bench.png (no gnuplot; make bench installs gnuplot-nox)")
check("table.txt written", os.path.exists(os.path.join(out, "table.txt")))
print(f"bench-summary: {passed} passed, {failed} failed")
EOF
cat "$OUT/check.log"
grep -q '^bench-summary: ' "$OUT/check.log" || echo "bench-summary: 0 passed, 1 failed"
