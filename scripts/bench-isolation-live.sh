#!/usr/bin/env bash
# Isolation, live (issue 18): from the API's answer to POST /api/v1/isolations to the last frame
# of the VM forwarded, with the VM sending a UDP datagram every millisecond through `svm run`
# (AF_PACKET, inline, two workers) in network namespaces; ROUNDS isolations and releases.
#   scripts/bench-isolation-live.sh [ROUNDS]
# Needs root, dnsmasq and udhcpc (as tests/tests/live_isolation.rs). Runs the debug svm binary
# (built first); SVM_BIN=PATH uses another build (the test harness reads it), e.g.
# target/release/svm.
set -euo pipefail
rounds=${1:-10}
if [ -n "${SVM_BIN:-}" ]; then export SVM_BIN; SVM_BIN=$(realpath "$SVM_BIN"); else cargo build -q -p svm; fi
echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
ROUNDS=$rounds cargo test -q -p svm-e2e --test live_isolation -- --ignored --nocapture \
  bench_api_answer_to_last_forwarded_frame 2>&1 | grep -E '^round|SKIPPED|panicked'
