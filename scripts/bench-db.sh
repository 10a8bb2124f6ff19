#!/usr/bin/env bash
# Signed database harness: build one bundle holding ET Open (every rule file and its
# classification.config), the demo's rules and every shared threat list, with the demo capture as
# its self-test; then time, on one core, `svm db verify` (signatures, versions, expiry, every
# target's length and SHA-256) and `svm db update` into a fresh state directory (the same
# verification, staging to disk, the rules compiled, the lists checked, the self-test replayed,
# the A/B switch; the daemon's swap is timed by scripts/bench-db-daemon.sh).
#   scripts/bench-db.sh [RUNS]
set -euo pipefail
runs=${1:-3}
shared=${SHARED:-../shared}
bin=target/release/svm
testgen=target/release/svm-testgen
[ -x "$testgen" ] || testgen=target/debug/svm-testgen
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$testgen" demo "$tmp/demo.pcap" > /dev/null
"$bin" db keygen "$tmp/keys" > /dev/null
lists=()
for f in malware-domains malware-ip-hosts malware-urls; do lists+=("malware=$shared/urls/$f.txt"); done
for f in phishing-domains phishing-ip-hosts phishing-urls; do lists+=("phishing=$shared/urls/$f.txt"); done
lists+=("scam=$shared/urls/scam-domains.txt")
"$bin" db build --keys "$tmp/keys" --version 1 \
  --rules "$shared"/rules/et-open/*.rules deploy/demo.rules \
  --classification "$shared/rules/et-open/classification.config" \
  --url-list "${lists[@]}" --self-test "$tmp/demo.pcap" -o "$tmp/db.tar"
echo "bundle: $(stat -c %s "$tmp/db.tar") bytes; $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ)"
t() { /usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB max RSS" taskset -c 0 "$@"; }
for i in $(seq "$runs"); do
  printf 'verify %s: ' "$i"; t "$bin" db verify --root "$tmp/keys/root.json" "$tmp/db.tar" 2>&1 > /dev/null
  rm -rf "$tmp/state"
  printf 'update %s: ' "$i"; t "$bin" db update --state-dir "$tmp/state" --root "$tmp/keys/root.json" \
    --from "$tmp/db.tar" 2>&1 > /dev/null
done
"$bin" db status --state-dir "$tmp/state"
