#!/usr/bin/env bash
# Runs every test suite and ends with one line totalling them: "N passed, N failed".
# Each suite prints its own summary; this script adds them up. Environment:
#   BUILD      build directory (default build)
#   SKIP_FUZZ  set to skip the fuzz targets (the sanitizer build has none)
#   FUZZ_SECONDS  seconds per fuzz target (default 20)
#   SAN        set (by make asan) when the binaries carry sanitizers: every report they write goes
#              to $BUILD/test-logs/sanitizer/ and each counts as a failure
#   SAN_BUILD  a second build directory whose binaries carry sanitizers (make test: build/asan):
#              the unit and command-line suites run against it instead of BUILD, after the
#              others; its reports go to $SAN_BUILD/test-logs/sanitizer/ and each counts as a failure
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
PY=/usr/bin/python3
passed=0 failed=0 skipped=0
logdir=$BUILD/test-logs
mkdir -p "$logdir"

# Sends every sanitizer report of the processes started from here on to DIR/sanitizer/ (emptied
# first): ASan's errors and LeakSanitizer's leaks as asan.PID, UBSan's as ubsan.PID.
sanitizer_logs() {  # sanitizer_logs DIR
  sandir=$(cd "$1" && pwd)/sanitizer
  rm -rf "$sandir"; mkdir -p "$sandir"
  export ASAN_OPTIONS="log_path=$sandir/asan:detect_leaks=1:abort_on_error=0${ASAN_OPTIONS_EXTRA:+:$ASAN_OPTIONS_EXTRA}"
  export UBSAN_OPTIONS="log_path=$sandir/ubsan:print_stacktrace=1${UBSAN_OPTIONS_EXTRA:+:$UBSAN_OPTIONS_EXTRA}"
}
ASAN_OPTIONS_EXTRA=${ASAN_OPTIONS:-} UBSAN_OPTIONS_EXTRA=${UBSAN_OPTIONS:-}
[ -z "${SAN:-}" ] || sanitizer_logs "$logdir"

count() {  # count NAME PASSED FAILED [SKIPPED]
  passed=$((passed + $2)); failed=$((failed + $3)); skipped=$((skipped + ${4:-0}))
  printf '%-12s %s passed, %s failed\n' "$1:" "$2" "$3"
}

# Every report in $sandir is one failure; the first few are printed.
count_sanitizer_reports() {  # count_sanitizer_reports NAME
  local reports r
  reports=$(find "$sandir" -type f | wc -l)
  for r in $(find "$sandir" -type f | sort | head -5); do echo "--- $r"; head -40 "$r"; done
  count "$1" $((reports == 0 ? 1 : 0)) "$reports"
}

# Unit tests (doctest) of one build.
unit_suite() {  # unit_suite BUILDDIR LOGDIR NAME
  local line p f
  "$1/unit-tests" --no-intro=true 2>&1 | tee "$2/unit.log" | grep -v '^\[doctest\] run with'
  line=$(grep '^\[doctest\] test cases:' "$2/unit.log" | tail -1)
  if [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/.*\| *([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*\| *([0-9]+) failed.*/\1/')
    count "$3" "$p" "$f"
  else
    count "$3" 0 1   # the binary crashed or printed no summary
  fi
}

# Every tests/cli/test_*.py module against one build, each ending with its own cli-summary line.
cli_suites() {  # cli_suites BUILDDIR LOGDIR NAME-PREFIX
  local t name line
  for t in tests/cli/test_*.py; do
    name=$(basename "$t" .py); name=${name#test_}
    BUILD="$1" "$PY" "$t" 2>&1 | tee "$2/cli_$name.log"
    line=$(grep -E '^cli-summary: [0-9]+ passed, [0-9]+ failed' "$2/cli_$name.log" | tail -1)
    if [ -n "$line" ]; then
      set -- "$1" "$2" "$3" $(echo "$line" | sed -E 's/cli-summary: ([0-9]+) passed, ([0-9]+) failed/\1 \2/')
      count "$3 $name" "$4" "$5"
    else
      count "$3 $name" 0 1
    fi
  done
}

# 1. Unit tests (doctest), and 2. the binary from the outside: command line, config examples,
# start and stop. With a sanitizer build beside (make test) they run against that one only
# (section 8), which checks more for the same results; the suites below take the normal build.
if [ -z "${SAN_BUILD:-}" ]; then
  echo "== unit tests"
  unit_suite "$BUILD" "$logdir" unit
  echo "== command-line tests"
  cli_suites "$BUILD" "$logdir" cli
else
  echo "== unit and command-line tests: against the sanitizer build, at the end"
fi

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

# 4. The container and Kubernetes kit (make install, the Dockerfile, the manifests) and the VM
# kit (the systemd unit, make deb).
echo "== docker, kubernetes and systemd kit"
for t in install manifests deb; do
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
  count_sanitizer_reports sanitizer
fi

# 8. The unit and command-line suites against the sanitizer build (make test).
if [ -n "${SAN_BUILD:-}" ]; then
  echo "== unit tests under ASan and UBSan ($SAN_BUILD)"
  sanlogdir=$SAN_BUILD/test-logs
  mkdir -p "$sanlogdir"
  sanitizer_logs "$sanlogdir"
  unit_suite "$SAN_BUILD" "$sanlogdir" "asan unit"
  echo "== command-line tests under ASan and UBSan ($SAN_BUILD)"
  cli_suites "$SAN_BUILD" "$sanlogdir" "asan cli"
  echo "== sanitizer reports ($SAN_BUILD)"
  count_sanitizer_reports "asan reports"
fi

echo
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
