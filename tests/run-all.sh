#!/usr/bin/env bash
# Runs every test suite and ends with one line totalling them: "N passed, N failed".
# Each suite prints its own summary; this script adds them up. Environment:
#   BUILD      build directory (default build)
#   SKIP_FUZZ  set to skip the fuzz targets (the sanitizer build has none)
#   FUZZ_SECONDS  seconds per fuzz target (default 20)
#   SAN        set (by make asan) when the binaries carry sanitizers: every report they write goes
#              to $BUILD/test-logs/sanitizer/ and each counts as a failure
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
PY=/usr/bin/python3
passed=0 failed=0 skipped=0
logdir=$BUILD/test-logs
mkdir -p "$logdir"
if [ -n "${SAN:-}" ]; then
  sandir=$(cd "$logdir" && pwd)/sanitizer
  rm -rf "$sandir"; mkdir -p "$sandir"
  export ASAN_OPTIONS="log_path=$sandir/asan:detect_leaks=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="log_path=$sandir/ubsan:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
fi

count() {  # count NAME PASSED FAILED [SKIPPED]
  passed=$((passed + $2)); failed=$((failed + $3)); skipped=$((skipped + ${4:-0}))
  printf '%-12s %s passed, %s failed\n' "$1:" "$2" "$3"
}

# 1. Unit tests (doctest).
echo "== unit tests"
"$BUILD/unit-tests" --no-intro=true 2>&1 | tee "$logdir/unit.log" | grep -v '^\[doctest\] run with'
line=$(grep '^\[doctest\] test cases:' "$logdir/unit.log" | tail -1)
if [ -n "$line" ]; then
  p=$(echo "$line" | sed -E 's/.*\| *([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.*\| *([0-9]+) failed.*/\1/')
  count unit "$p" "$f"
else
  count unit 0 1   # the binary crashed or printed no summary
fi

# 2. The binary from the outside: command line, config examples, start and stop.
# Every tests/cli/test_*.py module, each ending with its own cli-summary line.
echo "== command-line tests"
for t in tests/cli/test_*.py; do
  name=$(basename "$t" .py); name=${name#test_}
  BUILD="$BUILD" "$PY" "$t" 2>&1 | tee "$logdir/cli_$name.log"
  line=$(grep -E '^cli-summary: [0-9]+ passed, [0-9]+ failed' "$logdir/cli_$name.log" | tail -1)
  if [ -n "$line" ]; then
    set -- $(echo "$line" | sed -E 's/cli-summary: ([0-9]+) passed, ([0-9]+) failed/\1 \2/')
    count "cli $name" "$1" "$2"
  else
    count "cli $name" 0 1
  fi
done

# 3. Real peers: Prosody, ejabberd, dnsmasq and slixmpp clients on loopback (needs root).
echo "== integration tests"
if [ "$(id -u)" = 0 ]; then
  BUILD="$BUILD" "$PY" tests/integration/run_all.py 2>&1 | tee "$logdir/integration.log" | grep -E '^(ok|FAIL|ERROR|integration-summary)|\.\.\. ' || true
  line=$(grep -E '^integration-summary: [0-9]+ passed, [0-9]+ failed' "$logdir/integration.log" | tail -1)
  if [ -n "$line" ]; then
    set -- $(echo "$line" | sed -E 's/integration-summary: ([0-9]+) passed, ([0-9]+) failed.*/\1 \2/')
    count integration "$1" "$2"
  else
    tail -40 "$logdir/integration.log"
    count integration 0 1
  fi
else
  echo "integration tests need root (servers run as their own users): skipped"
  skipped=$((skipped + 1))
fi

# 4. The container and Kubernetes kit: make install, the Dockerfile, the manifests.
echo "== docker and kubernetes kit"
for t in install manifests; do
  BUILD="$BUILD" "$PY" tests/docker/test_$t.py > "$logdir/docker_$t.log" 2>&1
  grep -E '^(FAIL|ERROR|skipped):' "$logdir/docker_$t.log"
  line=$(grep -E '^docker-summary: [0-9]+ passed, [0-9]+ failed' "$logdir/docker_$t.log" | tail -1)
  if [ -n "$line" ]; then
    set -- $(echo "$line" | sed -E 's/docker-summary: ([0-9]+) passed, ([0-9]+) failed/\1 \2/')
    count "docker $t" "$1" "$2"
  else
    tail -30 "$logdir/docker_$t.log"
    count "docker $t" 0 1
  fi
done

# 5. The benchmark tools with small N (make bench is the real run).
echo "== benchmark smoke run"
BUILD="$BUILD" tests/bench/smoke.sh > "$logdir/bench_smoke.log" 2>&1
line=$(grep -E '^bench-summary: [0-9]+ passed, [0-9]+ failed' "$logdir/bench_smoke.log" | tail -1)
if [ -n "$line" ]; then
  set -- $(echo "$line" | sed -E 's/bench-summary: ([0-9]+) passed, ([0-9]+) failed/\1 \2/')
  [ "$2" = 0 ] || tail -30 "$logdir/bench_smoke.log"
  count "bench smoke" "$1" "$2"
else
  tail -30 "$logdir/bench_smoke.log"
  count "bench smoke" 0 1
fi

# 6. Fuzz targets: a bounded run of each on its seed corpus; a crash fails it.
if [ -z "${SKIP_FUZZ:-}" ]; then
  echo "== fuzz targets (${FUZZ_SECONDS}s each)"
  for bin in "$BUILD"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=${bin##*/fuzz_}
    scratch=$(mktemp -d)
    if "$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 -artifact_prefix="$logdir/fuzz_$name-" \
         "$scratch" "tests/fuzz/corpus/$name" \
         >"$logdir/fuzz_$name.log" 2>&1; then
      count "fuzz $name" 1 0
    else
      tail -30 "$logdir/fuzz_$name.log"
      count "fuzz $name" 0 1
    fi
    rm -rf "$scratch"
  done
fi

# 7. Sanitizer reports from any process of any suite (make asan).
if [ -n "${SAN:-}" ]; then
  echo "== sanitizer reports"
  reports=$(find "$sandir" -type f | wc -l)
  for r in $(find "$sandir" -type f | head -5); do echo "--- $r"; head -40 "$r"; done
  count sanitizer $((reports == 0 ? 1 : 0)) "$reports"
fi

echo
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
