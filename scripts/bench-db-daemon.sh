#!/usr/bin/env bash
# The daemon's side of signed databases: how long `svm run` takes to fetch a bundle holding ET
# Open and every shared list from an HTTPS mirror, verify it, stage and check it (rules compiled,
# lists checked, self-test replayed), and swap its rules and lists into the running worker; and
# how long a rollback takes (within the probation, the replaced set put back as it was). Each
# figure is the wall time of the API call that does it (POST /api/v1/db/update, POST
# /api/v1/db/rollback) and the daemon's CPU time over it, and the daemon's own log line
# splitting fetch+check from the swap.
#   sudo scripts/bench-db-daemon.sh [RUNS]
# Needs root (a network namespace with a veth pair of its own for the mirror-mode daemon, so no
# traffic leaves it), openssl, python3, curl; the release build (target/release/svm).
# The daemon is pinned to one core (taskset -c 0).
set -euo pipefail
runs=${1:-3}
shared=${SHARED:-../shared}
bin=$(realpath "${SVM_BIN:-target/release/svm}")
testgen=target/release/svm-testgen
[ -x "$testgen" ] || testgen=target/debug/svm-testgen
tmp=$(mktemp -d)
ns=svmdbb$$
svm_pid=
mirror_pid=
cleanup() {
  [ -n "$svm_pid" ] && kill "$svm_pid" 2>/dev/null || true
  [ -n "$mirror_pid" ] && kill "$mirror_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add d0 type veth peer name d1
ip -n "$ns" link set d0 up
ip -n "$ns" link set d1 up

# Certificates: a CA, one server certificate for 127.0.0.1 (mirror and API), an admin client.
cd "$tmp"
q() { "$@" > /dev/null 2>&1; }
q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt \
  -subj /CN=bench-ca -days 2 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=keyCertSign
issue() { # name cn extensions
  q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
  printf '%b' "$3" > "$1.ext"
  q openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 2 -extfile "$1.ext"
}
issue srv 127.0.0.1 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'
issue admin svm-admin 'extendedKeyUsage=clientAuth\n'
cd - > /dev/null

# Bundles v1 .. v(RUNS+1): the same targets as scripts/bench-db.sh.
"$testgen" demo "$tmp/demo.pcap" > /dev/null
"$bin" db keygen "$tmp/keys" > /dev/null
lists=()
for f in malware-domains malware-ip-hosts malware-urls; do lists+=("malware=$shared/urls/$f.txt"); done
for f in phishing-domains phishing-ip-hosts phishing-urls; do lists+=("phishing=$shared/urls/$f.txt"); done
lists+=("scam=$shared/urls/scam-domains.txt")
for v in $(seq 1 $((runs + 1))); do
  "$bin" db build --keys "$tmp/keys" --version "$v" \
    --rules "$shared"/rules/et-open/*.rules deploy/demo.rules \
    --classification "$shared/rules/et-open/classification.config" \
    --url-list "${lists[@]}" --self-test "$tmp/demo.pcap" -o "$tmp/v$v.tar" > /dev/null
done
mkdir -p "$tmp/www"
publish() {
  cp "$tmp/v$1.tar" "$tmp/www/bundle.tar"
  tar -xOf "$tmp/v$1.tar" metadata/timestamp.json > "$tmp/www/timestamp.json"
}
publish 1
cat > "$tmp/mirror.py" <<'EOF'
import functools, http.server, ssl, sys
d, port, cert, key = sys.argv[1:5]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
h = functools.partial(Quiet, directory=d)
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), h)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
EOF
ip netns exec "$ns" python3 "$tmp/mirror.py" "$tmp/www" 8444 "$tmp/srv.crt" "$tmp/srv.key" &
mirror_pid=$!
for _ in $(seq 100); do
  ip netns exec "$ns" curl -s -o /dev/null --cacert "$tmp/ca.crt" https://127.0.0.1:8444/timestamp.json && break
  sleep 0.1
done

cat > "$tmp/svm.yaml" <<EOF
backend: af-packet
mode: mirror
interface: d0
workers: 1
state_dir: $tmp/state
api:
  listen: 127.0.0.1:8443
  cert: $tmp/srv.crt
  key: $tmp/srv.key
  client_ca: $tmp/ca.crt
  admin: [CN=svm-admin]
db:
  root: $tmp/keys/root.json
  mirror: https://127.0.0.1:8444
  ca: $tmp/ca.crt
  interval_secs: 604800
  jitter_secs: 0
EOF
ip netns exec "$ns" taskset -c 0 "$bin" run --config "$tmp/svm.yaml" > "$tmp/svm.log" 2>&1 &
svm_pid=$!
for _ in $(seq 600); do
  grep -q "database version 1 in force" "$tmp/svm.log" && grep -q " worker" "$tmp/svm.log" && break
  sleep 0.1
done
grep "database version 1 in force" "$tmp/svm.log" || { cat "$tmp/svm.log"; exit 1; }
echo "bundle: $(stat -c %s "$tmp/v1.tar") bytes; $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1 /proc/loadavg)"
api() {
  ip netns exec "$ns" curl -s -o /dev/null -w '%{http_code} %{time_total} s' --max-time 120 \
    --cacert "$tmp/ca.crt" --cert "$tmp/admin.crt" --key "$tmp/admin.key" -X POST \
    "https://127.0.0.1:8443/api/v1/db/$1"
}
# The daemon's CPU time (user + system, every thread) in seconds: less noisy than wall time on
# a shared machine.
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$svm_pid/stat"; }
for i in $(seq "$runs"); do
  v=$((i + 1))
  publish "$v"
  c0=$(cpu)
  w=$(api update)
  echo "update to v$v: $w, daemon CPU $(awk -v a="$c0" -v b="$(cpu)" 'BEGIN {printf "%.2f", b - a}') s"
  grep "database version $v in force" "$tmp/svm.log"
  c0=$(cpu)
  w=$(api rollback)
  echo "rollback: $w, daemon CPU $(awk -v a="$c0" -v b="$(cpu)" 'BEGIN {printf "%.2f", b - a}') s"
  grep "rolled back from version $v" "$tmp/svm.log"
done
grep -E "rules loaded|database" "$tmp/svm.log" | head -3
