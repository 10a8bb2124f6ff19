#!/bin/bash
# mmdebstrap customize hook of build.sh: $1 is the new root (proc and sys mounted). Everything
# here must give the same bytes on every run (SOURCE_DATE_EPOCH is exported).
set -euo pipefail
root=$1

# The svm user (deploy/svm.sysusers); the shadow entry's "last change" day is the epoch's, not
# today's.
chroot "$root" systemd-sysusers
days=$(( SOURCE_DATE_EPOCH / 86400 ))
sed -i -E "s/^(svm:[^:]*):[0-9]*:/\1:$days:/" "$root/etc/shadow"

# Configuration written at first boot lives on /var (the root is read-only).
rm -rf "$root/etc/svm"
ln -s /var/etc/svm "$root/etc/svm"
echo svm >"$root/etc/hostname"

# The initrd opens the verity device (etc/initramfs-tools/{hooks,scripts}/...).
chroot "$root" update-initramfs -u -k all

systemctl --root="$root" enable systemd-networkd.service systemd-resolved.service \
    systemd-timesyncd.service svm-growvar.service svm-setup.service svm-enroll.service svm.service \
    svm-boot-report.service
# No package updates from inside the appliance (updates come as signed images), no first-boot
# prompt on the console (the root is read-only and the machine id transient).
systemctl --root="$root" mask apt-daily.timer apt-daily-upgrade.timer systemd-firstboot.service \
    e2scrub_all.timer e2scrub_reap.service 2>/dev/null || true

# Whatever records the build's time or machine.
rm -f "$root"/etc/*- "$root/var/cache/ldconfig/aux-cache" "$root/var/lib/dbus/machine-id"
: >"$root/etc/machine-id"
find "$root/var/log" "$root/var/cache/apt" "$root/var/lib/apt/lists" -type f -delete
