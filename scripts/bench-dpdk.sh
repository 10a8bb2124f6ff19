#!/usr/bin/env bash
# DPDK inline forwarding throughput on one core, over two net_null vdevs (no NIC, no hugepages):
# our backend (dataplane example dpdk_fwd) with blind forwarding, with the real worker and default
# policy, and the worker alone without DPDK; then dpdk-testpmd io forwarding for comparison.
# Throughput is compared, not asserted (STYLE 18). Figures go to docs/benchmarks.md (DPDK section) by hand.
#
# usage: scripts/bench-dpdk.sh [SECONDS] [BASELINE_DPDK_FWD]
#   (needs libdpdk-dev; dpdk-testpmd is in Debian's dpdk-dev). A second argument, another build of
#   the dpdk_fwd example (e.g. a copy of the base commit's target/release/examples/dpdk_fwd), runs
#   its worker and worker-only figures in the same session for a before/after comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
base_bin=${2:-}
command -v dpdk-testpmd >/dev/null || { echo "error: dpdk-testpmd missing (apt-get install dpdk-dev)" >&2; exit 1; }
cargo build --release -q -p dataplane --features dpdk --example dpdk_fwd
echo "machine: $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dpdk: $(pkg-config --modversion libdpdk); rustc: $(rustc --version)"
for handler in forward worker worker-only; do
  target/release/examples/dpdk_fwd --seconds "$secs" --handler "$handler" | grep -E '^EAL|Mpps' | sed "s/^/[$handler] /"
done
if [ -n "$base_bin" ]; then
  for handler in worker worker-only; do
    "$base_bin" --seconds "$secs" --handler "$handler" | grep -E 'Mpps' | sed "s/^/[baseline $handler] /"
  done
fi
# testpmd: main lcore 0, one forwarding lcore (1); io mode forwards port 0 <-> port 1 without
# touching the frames. --tx-first primes the loop, --stats-period prints per-second rates until
# SIGINT. Its default pool does not fit in -m 512: 8191 mbufs like ours.
cmd=(dpdk-testpmd --no-huge -m 512 --no-pci --no-shconf --no-telemetry --vdev=net_null0 --vdev=net_null1
     -l 0-1 -- --forward-mode=io --auto-start --tx-first --stats-period=1 --total-num-mbufs=8191)
echo "[testpmd] ${cmd[*]}"
out=$(timeout -s INT $((secs + 6)) "${cmd[@]}" 2>&1 || true)
# Rx-pps lines come in pairs (port 0, port 1): sum each pair, skip the idle ones and the first
# busy one (partial second), report the median.
echo "$out" | awk '/Rx-pps:/ { s += $2; if (++k % 2 == 0) { print s; s = 0 } }' \
  | awk '$1 > 0' | tail -n +2 | sort -n \
  | awk '{ v[NR] = $1 } END { if (NR == 0) { print "[testpmd] no rate seen"; exit 1 }
         m = v[int((NR + 1) / 2)]; printf "[testpmd] io forwarding: %.2f Mpps both ports (median of %d one-second samples)\n", m / 1e6, NR }'
