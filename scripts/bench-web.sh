#!/usr/bin/env bash
# Web address scan cost in `svm replay`: the same capture with every shared address list against
# none, in one run, the two interleaved round after round.
#   scripts/bench-web.sh CAPTURE [LOOPS] [LISTS_DIR] [ROUNDS]
# POLICY=FILE replays with that policy (e.g. `web_address_scan: {quic: block}` to leave QUIC
# Initials undecrypted); SVM_BIN=PATH uses another build.
# Per configuration and round: the summary's processing time (capture and list loading excluded)
# and, from `perf stat`, user-space instructions and CPU time a frame of the processing alone
# (a run of LOOPS passes minus a run of 1 pass, so loading the lists and the capture cancels
# out). Instructions do not depend on the machine's load; times do (on a machine without a
# PMU, a virtual one, instructions read "nan").
set -euo pipefail
cap=${1:?usage: bench-web.sh CAPTURE [LOOPS] [LISTS_DIR] [ROUNDS]}
loops=${2:-48}
dir=${3:-../shared/urls}
rounds=${4:-3}
bin=${SVM_BIN:-target/release/svm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=scripts/web-lists.sh
. "$(dirname "$0")/web-lists.sh"

# label loops extra-args... -> "instructions task-clock-ms packets seconds lookups hits"
measure() {
  local n=$1; shift
  perf stat -x, -e instructions:u,task-clock -o "$tmp/perf" \
    "$bin" replay "$cap" --loop "$n" -k none --summary-json "$tmp/s.json" ${POLICY:+--policy "$POLICY"} "$@" \
    > /dev/null 2> "$tmp/err"
  python3 - "$tmp/perf" "$tmp/s.json" <<'PY'
import json, sys
ins = ms = 0.0
for line in open(sys.argv[1]):
    f = line.strip().split(",")
    if len(f) > 2 and f[2].startswith("instructions"):
        # Virtual machines without a PMU say "<not supported>": the CPU time still counts.
        ins = float(f[0]) if f[0][:1].isdigit() else float("nan")
    if len(f) > 2 and f[2] == "task-clock":
        ms = float(f[0])
s = json.load(open(sys.argv[2]))
w = s.get("web", {})
print(ins, ms, s["packets"], s["seconds"], w.get("lookups", 0), sum(w.get("hits", {}).values()))
PY
}

run() { # label extra-args...
  local label=$1; shift
  read -r i1 c1 p1 _ _ _ < <(measure 1 "$@")
  read -r iL cL pL secs lookups hits < <(measure "$loops" "$@")
  python3 - "$label" "$i1" "$c1" "$p1" "$iL" "$cL" "$pL" "$secs" "$lookups" "$hits" <<'PY'
import sys
label, i1, c1, p1, iL, cL, pL, secs, lookups, hits = sys.argv[1:]
i1, c1, p1, iL, cL, pL, secs = map(float, (i1, c1, p1, iL, cL, pL, secs))
d = pL - p1
print(f"{label:<10} {int(pL):>10} pkts {secs:8.3f} s {pL/secs/1e6:7.3f} Mpps | "
      f"{(iL-i1)/d:7.1f} instructions/frame {(cL-c1)*1e6/d:8.1f} ns CPU/frame | lookups {lookups} listed {hits}")
PY
}

echo "capture: $cap x $loops, ${#lists[@]} lists from $dir, $rounds rounds, $(nproc) cores, $(uname -m), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
for r in $(seq 1 "$rounds"); do
  run "none" --inline
  run "all lists" --inline --url-list "${lists[@]}"
done
