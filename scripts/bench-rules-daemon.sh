#!/usr/bin/env bash
# Rule load and SIGHUP reload times of the live daemon with the ET Open set: `svm run` (AF_PACKET
# mirror on a veth inside a private network namespace, no traffic needed), RELOADS reloads, then
# SIGUSR1 and SIGTERM. Prints the daemon's own load/reload lines and its peak RSS. Needs root.
# Usage: scripts/bench-rules-daemon.sh [SVM_BINARY] [RELOADS]
set -euo pipefail
cd "$(dirname "$0")/.."
SVM=${1:-target/release/svm}
RELOADS=${2:-3}
SHARED=${SVM_SHARED:-$(cd .. && pwd)/shared}
test -x "$SVM" || { echo "build first: cargo build --release -p svm" >&2; exit 1; }
NS=svmrl$$
DIR=$(mktemp -d)
ip netns add "$NS"
cleanup() {
  if [ -n "${PID:-}" ]; then kill -TERM "$PID" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
ip netns exec "$NS" ip link add rla type veth peer name rlb
for d in lo rla rlb; do ip netns exec "$NS" ip link set "$d" up; done
cat > "$DIR/svm.yaml" <<Y
backend: af-packet
mode: mirror
interface: rla
rules:
  files: [$SHARED/rules/et-open/*.rules]
  classification_file: $SHARED/rules/et-open/classification.config
Y
echo "== $(date -u +%FT%TZ) load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
ip netns exec "$NS" /usr/bin/time -f 'peak RSS %M KiB' "$SVM" run --config "$DIR/svm.yaml" \
  > "$DIR/log" 2>&1 &
WRAP=$!
for _ in $(seq 300); do grep -q ' worker' "$DIR/log" && break; sleep 0.1; done
# `ip netns exec` execs time(1), whose child is svm.
PID=$(pgrep -P "$WRAP" | head -n1)
for _ in $(seq "$RELOADS"); do
  n=$(grep -c 'rules reloaded\|reload failed' "$DIR/log" || true)
  kill -HUP "$PID"
  for _ in $(seq 300); do
    [ "$(grep -c 'rules reloaded\|reload failed' "$DIR/log" || true)" -gt "$n" ] && break
    sleep 0.1
  done
done
kill -TERM "$PID"
PID=
wait "$WRAP" || true
grep -E '^svm run: rules (loaded|reloaded)|reload failed|peak RSS' "$DIR/log"
