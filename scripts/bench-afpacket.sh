#!/usr/bin/env bash
# AF_PACKET throughput over veth: tcpreplay --topspeed from a sender namespace through the inline
# `svm run` into a sink namespace; prints what was sent, what svm received/forwarded/dropped
# (kernel ring drops included) and what the sink received. Root only. Usage:
#   scripts/bench-afpacket.sh [WORKERS] [FRAME_BYTES] [FRAMES] [LOOPS]
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${1:-1}; SIZE=${2:-64}; FRAMES=${3:-100000}; LOOPS=${4:-5}
SVM=${SVM_BIN:-target/release/svm}
[ "$(id -u)" = 0 ] || { echo "bench-afpacket: needs root" >&2; exit 1; }
[ -x "$SVM" ] || { echo "bench-afpacket: build $SVM first (cargo build --release -p svm)" >&2; exit 1; }
P=$$; T=$(mktemp -d); NS_T=svmbT$P; NS_S=svmbS$P; NS_R=svmbR$P
cleanup() { kill "$SVM_PID" 2>/dev/null || true; for n in $NS_T $NS_S $NS_R; do ip netns del $n 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
for n in $NS_T $NS_S $NS_R; do ip netns add $n; done
ip link add t$P netns $NS_T type veth peer name n$P netns $NS_S
ip link add r$P netns $NS_R type veth peer name m$P netns $NS_S
for x in "$NS_T t$P" "$NS_S n$P" "$NS_S m$P" "$NS_R r$P"; do set -- $x
  ip netns exec $1 ethtool -K $2 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ip -n $1 link set $2 up; done
# UDP frames over 256 flows (distinct address pairs, so fanout spreads them).
python3 - "$T/in.pcap" "$SIZE" "$FRAMES" <<'PY'
import struct, sys
path, size, n = sys.argv[1], max(int(sys.argv[2]), 60), int(sys.argv[3])
with open(path, 'wb') as f:
    f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    for i in range(n):
        flow = i % 256
        ip_len = size - 14
        ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, ip_len, i & 0xffff, 0, 64, 17, 0,
                         bytes([10, 88, 0, flow]), bytes([10, 88, 1, flow]))
        udp = struct.pack('!HHHH', 10000 + flow, 9, ip_len - 20, 0)
        frame = b'\x02\0\0\0\0\x02' + b'\x02\0\0\0\0\x01' + b'\x08\0' + ip + udp
        frame += b'\0' * (size - len(frame))
        f.write(struct.pack('<IIII', 0, i, len(frame), len(frame)) + frame)
PY
cat > "$T/svm.yaml" <<CFG
backend: af-packet
mode: inline
vm_interface: m$P
network_interface: n$P
workers: $WORKERS
af_packet: { block_count: 64 }
CFG
ip netns exec $NS_S "$SVM" run --config "$T/svm.yaml" 2>"$T/svm.log" & SVM_PID=$!
for _ in $(seq 50); do grep -q "svm run: " "$T/svm.log" && break; sleep 0.1; done
rx0=$(ip netns exec $NS_R cat /sys/class/net/r$P/statistics/rx_packets)
ip netns exec $NS_T tcpreplay -q --topspeed --loop "$LOOPS" -i t$P "$T/in.pcap" 2>&1 | grep -E "Actual|Rated" || true
sleep 1
rx1=$(ip netns exec $NS_R cat /sys/class/net/r$P/statistics/rx_packets)
kill -TERM $SVM_PID; wait $SVM_PID || true; SVM_PID=
grep -E "svm status|port [01]:|per worker" "$T/svm.log"
echo "sent $((FRAMES * LOOPS)) frames of $SIZE bytes; sink received $((rx1 - rx0)); workers $WORKERS"
