#!/usr/bin/env bash
# Times `plexnet up` and `plexnet down` (build excluded) for figure4 (5
# images) and for generated sysplexes of 16, 32 and 64 images (`plexnet
# generate --images N`: figure4's layout), RUNS times each; writes the
# medians to target/bench/lab.json and prints a table with the targets
# (figure4 up in 3 s, 64 images up in 15 s: issue 16).
# Uses its own namespace prefix, so a lab the user has up is left alone.
set -euo pipefail
BIN=${1:-target/release/plexnet}
RUNS=${RUNS:-5}
PREFIX=plxscalebench-
[ "$(id -u)" -eq 0 ] || { echo "bench-lab needs root (namespaces): sudo make bench-lab" >&2; exit 1; }
mkdir -p target/bench
cleanup() { "$BIN" --prefix "$PREFIX" down --all >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

# median FILE: the middle line of FILE's numbers, sorted.
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench NAME FILE: brings FILE up and down RUNS times; prints "UP DOWN",
# the median times in ms. A failed up or down fails the bench.
bench() {
  local name=$1 file=$2 ups downs
  ups=$(mktemp) downs=$(mktemp)
  for i in $(seq 1 "$RUNS"); do
    local t0 t1 t2
    t0=$(date +%s%N)
    "$BIN" --prefix "$PREFIX" up "$file" >/dev/null
    t1=$(date +%s%N)
    "$BIN" --prefix "$PREFIX" down --all >/dev/null
    t2=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 )) >> "$ups"
    echo $(( (t2 - t1) / 1000000 )) >> "$downs"
    echo "  $name run $i: up $(tail -1 "$ups") ms, down $(tail -1 "$downs") ms" >&2
  done
  echo "$(median "$ups") $(median "$downs")"
  rm -f "$ups" "$downs"
}

echo "plexnet up / down, $RUNS runs each (median):" >&2
rows=()
json=()
for n in 5 16 32 64; do
  if [ "$n" -eq 5 ]; then
    name=figure4 file=topologies/figure4.toml target=3000
  else
    name=generated$n file=target/bench/generated$n.toml target=$([ "$n" -eq 64 ] && echo 15000 || echo null)
    "$BIN" generate --images "$n" > "$file"
  fi
  read -r up down < <(bench "$name" "$file")
  rows+=("$name $n $up $down $target")
  json+=("  {\"topology\": \"$name\", \"images\": $n, \"up_ms_median\": $up, \"down_ms_median\": $down, \"up_target_ms\": $target, \"runs\": $RUNS}")
done

{
  echo "["
  for i in "${!json[@]}"; do
    sep=$([ "$i" -lt $(( ${#json[@]} - 1 )) ] && echo "," || echo "")
    echo "${json[$i]}$sep"
  done
  echo "]"
} > target/bench/lab.json

printf '%-12s %6s %12s %14s %12s\n' TOPOLOGY IMAGES "UP (median)" "DOWN (median)" "UP TARGET"
fail=0
for r in "${rows[@]}"; do
  read -r name n up down target <<< "$r"
  verdict=""
  if [ "$target" != null ]; then
    if [ "$up" -le "$target" ]; then verdict=" ok"; else verdict=" MISSED"; fail=1; fi
    target="$target ms"
  else
    target="-"
  fi
  printf '%-12s %6s %9s ms %11s ms %12s%s\n' "$name" "$n" "$up" "$down" "$target" "$verdict"
done
echo "wrote target/bench/lab.json"
exit $fail
