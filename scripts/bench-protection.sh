#!/usr/bin/env bash
# Per-VM protection: callgrind instructions a frame of a replay pass, the base binary against
# this one, without an inventory, with one (five VMs: the capture's five busiest source MACs,
# untagged, with the address they send from) and no `protection` section, and with per-VM
# settings (the lookup runs for every frame) and with only_listed_vms.
#   scripts/bench-protection.sh BASE_SVM [CAPTURE]
# A pass is the instructions of --loop 2 less those of --loop 1, divided by the capture's
# frames: start-up and loading cancel out.
set -euo pipefail
base=$1
cap=${2:-../shared/bench/pcaps/ndpi-tests-merged.pcap}
bin=target/release/svm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
frames=$(python3 - "$cap" "$tmp/inv.yaml" <<'PY'
import collections, struct, sys
data = open(sys.argv[1], 'rb').read()
assert struct.unpack('<I', data[:4])[0] == 0xa1b2c3d4, 'a microsecond little-endian pcap'
off, n, macs, ip_of = 24, 0, collections.Counter(), {}
while off + 16 <= len(data):
    incl = struct.unpack('<I', data[off + 8:off + 12])[0]
    frame = data[off + 16:off + 16 + incl]
    off += 16 + incl
    n += 1
    if len(frame) >= 34 and frame[12:14] == b'\x08\x00':
        macs[frame[6:12]] += 1
        ip_of.setdefault(frame[6:12], '.'.join(map(str, frame[26:30])))
with open(sys.argv[2], 'w') as f:
    f.write('inventory:\n')
    for c, (m, _) in zip('abcde', macs.most_common(5)):
        f.write(f'  - {{id: vm-{c}, name: vm-{c}, nsx_external_id: vm-{c}, interfaces: '
                f'[{{mac: "{m.hex(":")}", vlan: untagged, addresses: [{ip_of[m]}]}}]}}\n')
print(n)
PY
)
cat > "$tmp/none.yaml" <<'EOF'
{}
EOF
cat > "$tmp/per-vm.yaml" <<'EOF'
protection:
  vms:
    vm-a: {direction: inbound}
    vm-b: {activity_scanner: false, web_address_scan: false}
    vm-c: {attack_blocker: false}
EOF
cat > "$tmp/only.yaml" <<'EOF'
protection:
  only_listed_vms: true
  vms:
    vm-a: {}
    vm-b: {direction: outbound}
EOF
ir() { # binary loops args...
  local b=$1 loops=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$b" replay "$cap" --inline \
    --loop "$loops" "$@" > /dev/null 2> "$tmp/vg.log"
  grep -E '^summary:|^totals:' "$tmp/cg.out" | head -1 | awk '{print $2}'
}
pass() { # label binary args...
  local label=$1 b=$2; shift 2
  local one two
  one=$(ir "$b" 1 "$@")
  two=$(ir "$b" 2 "$@")
  python3 -c "import sys; o,t,n=map(int,sys.argv[1:4]); print(f'{sys.argv[4]:<40} loop1 {o/1e6:9.1f} M  a pass {(t-o)/1e6:8.1f} M  {(t-o)/n:7.1f} a frame')" \
    "$one" "$two" "$frames" "$label"
}
echo "capture: $cap ($frames frames), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
pass "base, no inventory" "$base" --policy "$tmp/none.yaml"
pass "this, no inventory" "$bin" --policy "$tmp/none.yaml"
pass "base, inventory" "$base" --policy "$tmp/none.yaml" --inventory "$tmp/inv.yaml"
pass "this, inventory, no protection section" "$bin" --policy "$tmp/none.yaml" --inventory "$tmp/inv.yaml"
pass "this, inventory, per-VM settings" "$bin" --policy "$tmp/per-vm.yaml" --inventory "$tmp/inv.yaml"
pass "this, inventory, only_listed_vms" "$bin" --policy "$tmp/only.yaml" --inventory "$tmp/inv.yaml"
