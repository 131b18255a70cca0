#!/usr/bin/env bash
# make fuzz-long: runs every fuzz target for FUZZ_SECONDS (default 600) from its corpus under
# tests/fuzz/corpus/<name>/, then replaces that corpus with a minimised merge of itself and what
# the run found (libFuzzer -merge=1 into a fresh directory); hand-written seeds keep their names.
# A crash fails the run and leaves the input and the log in $BUILD/fuzz-long/; the corpus of that
# target is left as it was.
#   BUILD         build directory (default build)
#   FUZZ_SECONDS  seconds per target (default 600)
#   FUZZ_TARGETS  names to run (default: every $BUILD/fuzz/fuzz_* binary), e.g. "s2s_in admin"
set -u
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-600}
out="$BUILD/fuzz-long"
mkdir -p "$out"
names=${FUZZ_TARGETS:-}
if [ -z "$names" ]; then
  for bin in "$BUILD"/fuzz/fuzz_*; do
    [ -x "$bin" ] && names="$names ${bin##*/fuzz_}"
  done
fi
failed=0
for name in $names; do
  bin="$BUILD/fuzz/fuzz_$name"
  corpus="tests/fuzz/corpus/$name"
  found="$out/$name.found"
  merged="$out/$name.merged"
  mkdir -p "$corpus"
  rm -rf "$found" "$merged"
  mkdir -p "$found" "$merged"
  before=$(ls "$corpus" | wc -l)
  echo "== fuzz $name: ${FUZZ_SECONDS}s from $before inputs"
  if ! "$bin" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -artifact_prefix="$out/$name-" \
       "$found" "$corpus" >"$out/$name.log" 2>&1; then
    echo "FAIL fuzz $name: see $out/$name.log"
    grep -E 'ERROR|SUMMARY|Test unit written' "$out/$name.log" | head -5
    failed=1
    continue
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$out/$name.log" | tr '\n' ' '
  echo
  if ! "$bin" -merge=1 "$merged" "$corpus" "$found" >"$out/$name.merge.log" 2>&1; then
    echo "FAIL merge $name: see $out/$name.merge.log"
    failed=1
    continue
  fi
  # Hand-written seeds (named, not a libFuzzer hash) stay under their names, merged or not.
  for seed in "$corpus"/*; do
    base=${seed##*/}
    [[ $base =~ ^[0-9a-f]{40}$ ]] && continue
    rm -f "$merged/$(sha1sum <"$seed" | cut -c1-40)"
    cp "$seed" "$merged/$base"
  done
  rm -rf "$corpus"
  mv "$merged" "$corpus"
  rm -rf "$found"
  echo "   corpus: $before -> $(ls "$corpus" | wc -l) inputs ($(tail -1 "$out/$name.merge.log"))"
done
exit $failed
