#!/usr/bin/env bash
# Replay throughput harness: process a capture N times over in memory with the release build and
# print packets/s and bits/s of the processing alone (loading excluded), next to a baseline run of
# the same binary with the attack blocker off, in one run on one machine.
#   scripts/bench-replay.sh CAPTURE [LOOPS] [BASELINE_SVM_BINARY]
# A third argument compares against another build (e.g. the base commit's target/release/svm).
set -euo pipefail
cap=${1:?usage: bench-replay.sh CAPTURE [LOOPS] [BASELINE_BINARY]}
loops=${2:-48}
base_bin=${3:-}
bin=target/release/svm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'version: bench\nattack_blocker:\n  enabled: false\n' > "$tmp/off.yaml"

run() { # label binary extra-args...
  local label=$1 b=$2; shift 2
  "$b" replay "$cap" --loop "$loops" -k none --summary-json "$tmp/s.json" "$@" > /dev/null
  python3 - "$label" "$tmp/s.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]:<34} {s['packets']:>10} pkts {s['seconds']:8.3f} s {s['packets_per_sec']/1e6:8.3f} Mpps {s['bits_per_sec']/1e9:8.3f} Gbit/s  detections {sum(s['detections'].values())}")
PY
}
echo "capture: $cap x $loops on $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ)"
run "attack blocker off (baseline)" "$bin" --policy "$tmp/off.yaml"
run "attack blocker on, mirror" "$bin"
run "attack blocker on, inline" "$bin" --inline
if [ -n "$base_bin" ]; then
  run "baseline binary, blocker on" "$base_bin"
fi
