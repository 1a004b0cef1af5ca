#!/usr/bin/env bash
# make fuzz: every cargo-fuzz target of fuzz/ for FUZZ_SECONDS each (default
# 60), on its corpus in fuzz/corpus/<target>/ (kept in the repository),
# which is minimized afterwards (`cargo fuzz cmin`). Installs cargo-fuzz
# when it is missing. Crashes land in fuzz/artifacts/<target>/; the run
# fails if any target crashed. Writes target/bench/fuzz.json (execs,
# execs/s, corpus size per target).
#
# The machine has a stable toolchain only: cargo-fuzz passes nightly flags
# (-Z...), which RUSTC_BOOTSTRAP=1 lets a stable rustc take. The targets
# are built without a sanitizer (`--sanitizer none`): the protocol crate
# forbids unsafe code, so AddressSanitizer would find nothing that
# Rust's bounds checks do not, at twice the cost per input; debug
# assertions (overflow checks) stay on, as cargo fuzz builds by default.
# FUZZ_SANITIZER=address brings it back (needs the sanitizer runtime).
#
# Environment: FUZZ_SECONDS, FUZZ_TARGETS (default: every target, one at
# a time in one process each), FUZZ_TARGET_DIR (default fuzz/target),
# FUZZ_SANITIZER (default none).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
SANITIZER=${FUZZ_SANITIZER:-none}
TARGET_DIR=${FUZZ_TARGET_DIR:-fuzz/target}
export RUSTC_BOOTSTRAP=1
CARGO=${CARGO:-cargo}

if ! "$CARGO" fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (cargo install --locked cargo-fuzz)" >&2
  "$CARGO" install --locked cargo-fuzz
fi
TARGETS=${FUZZ_TARGETS:-$("$CARGO" fuzz list)}
FLAGS=(--sanitizer "$SANITIZER" --target-dir "$TARGET_DIR")
echo "fuzz: building $(echo $TARGETS | wc -w) targets (release, debug assertions, sanitizer $SANITIZER)" >&2
"$CARGO" fuzz build "${FLAGS[@]}"

mkdir -p target/bench target/fuzz-logs
RESULTS=target/fuzz-logs/results.jsonl
: >"$RESULTS"
crashed=0
n=$(echo $TARGETS | wc -w); i=0
for t in $TARGETS; do
  i=$((i + 1))
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus"
  logf=target/fuzz-logs/$t.log
  before=$(ls "$corpus" | wc -l)
  echo "fuzz: [$i/$n] $t for ${SECONDS_EACH}s, corpus $before inputs" >&2
  # Progress every 10 s: libFuzzer's latest status line.
  ( while sleep 10; do
      line=$(grep -E '^#[0-9]+' "$logf" 2>/dev/null | tail -1 | cut -c1-110)
      [ -n "$line" ] && echo "fuzz:   $t $line" >&2
    done ) &
  progress=$!
  set +e
  "$CARGO" fuzz run "${FLAGS[@]}" "$t" "$corpus" -- \
    -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    >"$logf" 2>&1
  rc=$?
  set -e
  kill "$progress" 2>/dev/null || true; wait "$progress" 2>/dev/null || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logf" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logf" | tail -1)
  if [ "$rc" -ne 0 ]; then
    crashed=$((crashed + 1))
    echo "fuzz: $t FAILED (exit $rc): $(grep -m1 -E 'panicked|ERROR|SUMMARY' "$logf")" >&2
    echo "fuzz:   input in fuzz/artifacts/$t/, log $logf" >&2
  fi
  # Keep the repository's corpus small: only inputs that add an edge
  # (-use_counters=0: hit counts of an edge do not keep an input).
  "$CARGO" fuzz cmin "${FLAGS[@]}" "$t" "$corpus" -- -use_counters=0 >"target/fuzz-logs/$t.cmin.log" 2>&1 \
    || echo "fuzz: cmin of $t failed, see target/fuzz-logs/$t.cmin.log" >&2
  after=$(ls "$corpus" | wc -l)
  bytes=$(du -sb "$corpus" | cut -f1)
  echo "fuzz:   $t: ${execs:-?} execs, ${rate:-?} execs/s, exit $rc, corpus $before -> $after inputs ($bytes bytes)" >&2
  printf '{"target":"%s","seconds":%s,"execs":%s,"execs_per_sec":%s,"exit":%s,"corpus_before":%s,"corpus_after":%s,"corpus_bytes":%s}\n' \
    "$t" "$SECONDS_EACH" "${execs:-null}" "${rate:-null}" "$rc" "$before" "$after" "$bytes" >>"$RESULTS"
done
python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
json.dump(rows, open("target/bench/fuzz.json", "w"), indent=2)
print(f"{'TARGET':<18} {'EXECS':>12} {'EXECS/S':>9} {'CORPUS':>7}  RESULT")
for r in rows:
    print(f"{r['target']:<18} {r['execs'] or 0:>12} {r['execs_per_sec'] or 0:>9} {r['corpus_after']:>7}  {'ok' if r['exit'] == 0 else 'CRASH'}")
print("wrote target/bench/fuzz.json")
PY
[ "$crashed" -eq 0 ] || { echo "fuzz: $crashed target(s) crashed" >&2; exit 1; }
