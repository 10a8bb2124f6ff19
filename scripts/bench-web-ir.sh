#!/usr/bin/env bash
# Web address scan cost in `svm replay` as instructions (valgrind's callgrind), which the
# machine's load does not change: the same capture with every shared address list against none,
# a (LOOPS+1)-pass run minus a 2-pass run, so passes 3 to LOOPS+1 (loading the capture and
# compiling the lists cancel out: both runs hold the capture in memory, which replay does from 2
# passes on; a 1-pass run streams it, and subtracting one counted the in-memory load in the
# figure, more with the lists loaded, whose compile leaves the heap so that the capture's
# buffers are copied as they grow), and the web scan's own instructions a frame in those passes
# (the hook `Worker::web_scan`, inclusive: reading heads, lookups, actions).
#   scripts/bench-web-ir.sh CAPTURE [LOOPS] [LISTS_DIR] [BINARY...]
# POLICY=FILE replays with that policy.
set -euo pipefail
cap=${1:?usage: bench-web-ir.sh CAPTURE [LOOPS] [LISTS_DIR] [BINARY...]}
loops=${2:-3}
dir=${3:-../shared/urls}
shift $(( $# < 3 ? $# : 3 ))
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(target/release/svm)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=scripts/web-lists.sh
. "$(dirname "$0")/web-lists.sh"

# binary loops extra-args... -> "total-Ir web_scan-Ir packets"
measure() {
  local bin=$1 n=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" \
    "$bin" replay "$cap" --loop "$n" -k none --summary-json "$tmp/s.json" ${POLICY:+--policy "$POLICY"} "$@" \
    > /dev/null 2> "$tmp/err"
  local total web
  # (awk reads to the end: an early exit would fail the pipe under pipefail)
  total=$(callgrind_annotate "$tmp/cg" 2>/dev/null \
    | awk '/PROGRAM TOTALS/ && !n++ {gsub(",", "", $1); print $1}')
  # --threshold=100 lists every function: by default callgrind_annotate stops once the listed
  # ones cover 99.9% of the total, and the hook (under 1%) was left out, so this read 0.
  web=$(callgrind_annotate --inclusive=yes --threshold=100 "$tmp/cg" 2>/dev/null \
    | awk '/Worker>::web_scan|Worker::web_scan/ && /\[/ && !n++ {gsub(",", "", $1); print $1}')
  echo "$total ${web:-0} $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets"])' "$tmp/s.json")"
}

echo "capture: $cap x $loops, ${#lists[@]} lists from $dir, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
for bin in "${bins[@]}"; do
  for cfg in none lists; do
    args=(--inline)
    [ "$cfg" = lists ] && args+=(--url-list "${lists[@]}")
    read -r t1 w1 p1 < <(measure "$bin" 2 "${args[@]}")
    read -r tL wL pL < <(measure "$bin" $((loops + 1)) "${args[@]}")
    python3 - "$bin" "$cfg" "$t1" "$w1" "$p1" "$tL" "$wL" "$pL" <<'PY'
import sys
bin_, cfg, t1, w1, p1, tL, wL, pL = sys.argv[1:]
t1, w1, p1, tL, wL, pL = map(float, (t1, w1, p1, tL, wL, pL))
n = round(2 * pL / p1)
print(f"{bin_:<28} {cfg:<6} {(tL-t1)/(pL-p1):8.1f} instructions/frame (passes 3-{n}) | "
      f"web_scan {(wL-w1)/(pL-p1):6.1f} instructions/frame in passes 3-{n}")
PY
  done
done
