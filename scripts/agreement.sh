#!/usr/bin/env bash
# svm's alerts with ET Open against Suricata 8.0.6's on every shared benchmark capture
# (../shared/bench/suricata-reference, its README says how they were made): one line per capture,
# `matched M of N (P%), missed X, extra Y`; with --by-sid, the missed and extra sids too.
#   scripts/agreement.sh [SHARED_DIR] [SVM_BINARY] [--by-sid]
set -euo pipefail
shared=${1:-../shared}
bin=${2:-target/release/svm}
by_sid=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The attack blocker is off: the reference holds rule alerts only.
printf 'version: agreement\nattack_blocker:\n  enabled: false\n' > "$tmp/off.yaml"
for ref in "$shared"/bench/suricata-reference/*.alerts.tsv; do
  cap=$(basename "$ref" .alerts.tsv)
  "$bin" replay "$shared/bench/pcaps/$cap.pcap" -k none --policy "$tmp/off.yaml" \
    --rules "$shared"/rules/et-open/*.rules --eve "$tmp/$cap.json" > /dev/null
  printf '%-32s ' "$cap"
  python3 "$(dirname "$0")/agreement.py" "$ref" "$tmp/$cap.json" $by_sid
done
