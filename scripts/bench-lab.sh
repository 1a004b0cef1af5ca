#!/usr/bin/env bash
# Times `plexnet up` (build excluded) for figure4 and for a generated
# 32-image topology; writes target/bench/lab.json and prints a table.
# Uses its own namespace prefix, so a lab the user has up is left alone.
set -euo pipefail
BIN=${1:-target/release/plexnet}
RUNS=${RUNS:-5}
PREFIX=plxbench-
[ "$(id -u)" -eq 0 ] || { echo "bench-lab needs root (namespaces): sudo make bench-lab" >&2; exit 1; }
mkdir -p target/bench
GEN=target/bench/generated32.toml
"$BIN" generate --images 32 > "$GEN"
cleanup() { "$BIN" --prefix "$PREFIX" down --all >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

# median_ms FILE: brings FILE up and down RUNS times, prints the median up time in ms.
median_ms() {
  local file=$1 times=()
  for i in $(seq 1 "$RUNS"); do
    local t0 t1
    t0=$(date +%s%N)
    "$BIN" --prefix "$PREFIX" up "$file" >/dev/null
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000000 )))
    "$BIN" --prefix "$PREFIX" down "$file" >/dev/null
    echo "  $(basename "$file") run $i: ${times[-1]} ms" >&2
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

echo "plexnet up, $RUNS runs each (median):" >&2
f4=$(median_ms topologies/figure4.toml)
g32=$(median_ms "$GEN")
cat > target/bench/lab.json <<JSON
[
  {"topology": "figure4", "images": 5, "up_ms_median": $f4, "target_ms": 3000, "runs": $RUNS},
  {"topology": "generated32", "images": 32, "up_ms_median": $g32, "target_ms": 15000, "runs": $RUNS}
]
JSON
printf '%-12s %6s %12s %10s\n' TOPOLOGY IMAGES "UP (median)" TARGET
printf '%-12s %6s %9s ms %7s ms\n' figure4 5 "$f4" 3000 generated32 32 "$g32" 15000
echo "wrote target/bench/lab.json"
