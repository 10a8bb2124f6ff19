#!/usr/bin/env bash
# Isolation: replay throughput with one protected VM isolated against none, with the release
# build, in one run on one machine, rounds interleaved so load drifts hit every configuration.
#   scripts/bench-isolation.sh [CAPTURE] [LOOPS] [ROUNDS]
# The capture's frames are given consecutive timestamps 100 us apart (the shared merged capture
# spans decades, and an isolation lasts at most 30 days); the five busiest source MACs become
# protected VMs, the busiest TCP talker among them (vm-a) the isolated one.
# OTHERS=1: replay only the frames that are not vm-a's (neither MAC is its), so that every frame
# is another VM's, and measure with callgrind the instructions a frame costs (a LOOPS-pass run
# minus a 1-pass run, so loading cancels out): independent of the machine's load, which the
# Mpps figures are not. SVM_BIN=PATH uses another build.
set -euo pipefail
cap=${1:-../shared/bench/pcaps/ndpi-tests-merged.pcap}
loops=${2:-16}
rounds=${3:-3}
bin=${SVM_BIN:-target/release/svm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$cap" "$tmp/cap.pcap" "$tmp/inv.yaml" "$tmp/others.pcap" <<'PY'
import collections, struct, sys
src, dst, inv, others = sys.argv[1:5]
data = open(src, 'rb').read()
assert struct.unpack('<I', data[:4])[0] == 0xa1b2c3d4, 'a microsecond little-endian pcap'
out = bytearray(data[:24])
off, i, t0 = 24, 0, 1_767_225_600 * 1_000_000
macs, tcp, ip_of = collections.Counter(), collections.Counter(), {}
while off + 16 <= len(data):
    _, _, incl, orig = struct.unpack('<IIII', data[off:off + 16])
    frame = data[off + 16:off + 16 + incl]
    off += 16 + incl
    t = t0 + i * 100
    i += 1
    out += struct.pack('<IIII', t // 1_000_000, t % 1_000_000, incl, orig) + frame
    if len(frame) >= 34 and frame[12:14] == b'\x08\x00':
        macs[frame[6:12]] += 1
        tcp[frame[6:12]] += frame[23] == 6
        ip_of.setdefault(frame[6:12], '.'.join(map(str, frame[26:30])))
open(dst, 'wb').write(out)
top = [m for m, _ in macs.most_common(5)]
isolated = max(top, key=lambda m: tcp[m])
# The frames that are not the isolated VM's.
rest, off, n = bytearray(out[:24]), 24, 0
while off + 16 <= len(out):
    incl = struct.unpack('<I', out[off + 8:off + 12])[0]
    rec = out[off:off + 16 + incl]
    off += 16 + incl
    if isolated not in (rec[16:22], rec[22:28]):
        rest += rec
        n += 1
open(others, 'wb').write(rest)
print(f'{n} frames are not the isolated VM\'s')
top.remove(isolated)
with open(inv, 'w') as f:
    f.write('inventory:\n')
    for name, m in [('vm-a', isolated)] + [(f'vm-{c}', m) for c, m in zip('bcde', top)]:
        f.write(f'  - {{id: {name}, name: {name}, nsx_external_id: {name}, interfaces: '
                f'[{{mac: "{m.hex(":")}", vlan: untagged, addresses: [{ip_of[m]}]}}]}}\n')
print(f'{i} frames; isolated vm-a = {isolated.hex(":")} ({macs[isolated]} frames sent, {tcp[isolated]} TCP)')
PY
run() { # label extra-args...
  local label=$1; shift
  "$bin" replay "$tmp/cap.pcap" --inline --loop "$loops" -k none --summary-json "$tmp/s.json" "$@" > /dev/null
  python3 - "$label" "$tmp/s.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[2]))
i = s.get('isolation') or {}
print(f"{sys.argv[1]:<26} {s['packets']:>9} pkts {s['seconds']:7.3f} s {s['packets_per_sec']/1e6:7.3f} Mpps  "
      f"forwarded {s['forwarded']:>9}  isolated drops {i.get('dropped', 0):>7}  flows reset {i.get('flows_reset', 0)}")
PY
}
if [ "${OTHERS:-0}" = 1 ]; then
  # label extra-args... -> instructions a frame (callgrind), LOOPS passes minus one
  ir() {
    local n=$1; shift
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" replay "$tmp/others.pcap" \
      --inline --loop "$n" -k none --summary-json "$tmp/s.json" "$@" > /dev/null 2> "$tmp/vg"
    python3 - "$tmp/vg" "$tmp/s.json" <<'PY'
import json, re, sys
ir = int(re.search(r'Collected : (\d+)', open(sys.argv[1]).read()).group(1))
print(ir, json.load(open(sys.argv[2]))['packets'])
PY
  }
  others() {
    local label=$1; shift
    read -r i1 p1 < <(ir 1 "$@")
    read -r iL pL < <(ir "$loops" "$@")
    python3 -c "import sys; print(f'{sys.argv[1]:<26} {(int(sys.argv[4])-int(sys.argv[2]))/(int(sys.argv[5])-int(sys.argv[3])):8.1f} instructions/frame')" \
      "$label" "$i1" "$p1" "$iL" "$pL"
  }
  echo "others only: $tmp/others.pcap x $loops (callgrind), $rounds rounds, $(date -u +%Y-%m-%dT%H:%MZ)"
  for r in $(seq "$rounds"); do
    others "no inventory"
    others "inventory, none isolated" --inventory "$tmp/inv.yaml"
    others "inventory, vm-a isolated" --inventory "$tmp/inv.yaml" --isolate vm-a:43200
  done
  exit 0
fi
echo "capture: $cap (retimed) x $loops, $rounds rounds, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
# Every other round in reverse order, so the order within a round favours no configuration.
for r in $(seq "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then
    run "no inventory"
    run "inventory, none isolated" --inventory "$tmp/inv.yaml"
    run "inventory, vm-a isolated" --inventory "$tmp/inv.yaml" --isolate vm-a:43200
  else
    run "inventory, vm-a isolated" --inventory "$tmp/inv.yaml" --isolate vm-a:43200
    run "inventory, none isolated" --inventory "$tmp/inv.yaml"
    run "no inventory"
  fi
done
