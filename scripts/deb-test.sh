#!/bin/bash
# Install the .deb into a clean Debian 12 root and run the binary there (make deb-test).
# Usage: scripts/deb-test.sh PACKAGE.deb   (root; mmdebstrap and the Debian mirror)
# The root is a fresh mmdebstrap minbase (about 100 MB, no systemd): dpkg -i inside it checks
# the package's dependencies against a bare system, then `svm --version` and `svm policy check`
# of the default policy run from the installed files. The root is removed on exit, also on
# failure.
set -euo pipefail
deb=$(realpath "$1")
root=$(mktemp -d /tmp/svm-deb-test.XXXXXX)
trap 'rm -rf "$root"' EXIT
rmdir "$root"
start=$(date +%s)
mmdebstrap --quiet --variant=minbase bookworm "$root" http://deb.debian.org/debian
echo "deb-test: clean root in $(( $(date +%s) - start )) s"
cp "$deb" "$root/tmp/svm.deb"
chroot "$root" dpkg -i /tmp/svm.deb
chroot "$root" svm --version
chroot "$root" sh -c 'svm policy default > /tmp/policy.yaml && svm policy check /tmp/policy.yaml'
test -f "$root/etc/svm/svm.yaml"
test -f "$root/usr/share/man/man1/svm-run.1"
test -f "$root/usr/share/bash-completion/completions/svm"
test -f "$root/etc/logrotate.d/svm"
echo "deb-test: ok in $(( $(date +%s) - start )) s"
