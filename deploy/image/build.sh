#!/bin/bash
# Builds the SVM appliance image (docs/deployment.md): target/image/svm.qcow2 and svm.ova.
#
# Root filesystem: a Debian 12 tree from mmdebstrap (Debian's mirror only), packed as squashfs and
# verified by dm-verity (the root hash is on the kernel command line). Disk (GPT): ESP (a unified
# kernel image: kernel, initrd and that command line, signed for Secure Boot), root (squashfs),
# verity (hash tree), var (ext4, grows to fill the disk on first boot). Reproducible:
# SOURCE_DATE_EPOCH fixes every time stamp, the verity salt and UUIDs are derived from it, so two
# builds from the same packages give the same root hash (printed at the end and written to
# target/image/roothash).
#
# Usage: deploy/image/build.sh [--svm PATH] [--out DIR]
#   --svm PATH   the svm binary to ship (default target/release/svm, built with --features dpdk)
#   --out DIR    output directory (default target/image)
# Environment: SOURCE_DATE_EPOCH (default: the last commit's time), MIRROR (Debian mirror URL,
# default: apt's own), SVM_IMAGE_DISK (virtual disk size, default 4G), SVM_SB_KEY and SVM_SB_CERT
# (the Secure Boot signing key and certificate, PEM; default: DIR/secureboot/db.{key,crt},
# generated on the first build).
set -euo pipefail

# One function, read whole before it runs: editing this file during a build cannot break it.
main() {

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
svm_bin=$repo/target/release/svm
out=$repo/target/image
while [ $# -gt 0 ]; do
    case $1 in
    --svm) svm_bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 1 ;;
    esac
done

for tool in mmdebstrap mksquashfs veritysetup sfdisk mkfs.ext4 mkfs.vfat mcopy qemu-img objcopy sbsign openssl \
    /usr/lib/systemd/boot/efi/linuxx64.efi.stub; do
    command -v "$tool" >/dev/null || [ -f "$tool" ] || {
        echo "build.sh: $tool is missing; apt-get install mmdebstrap squashfs-tools cryptsetup-bin fdisk e2fsprogs dosfstools mtools qemu-utils binutils sbsigntool systemd-boot-efi openssl" >&2
        exit 1
    }
done
[ -x "$svm_bin" ] || { echo "build.sh: $svm_bin not found (make image builds it)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root (mmdebstrap's chroot mode, file ownership in the image)" >&2; exit 1; }

: "${SOURCE_DATE_EPOCH:=$(git -C "$repo" log -1 --format=%ct)}"
export SOURCE_DATE_EPOCH
disk_size=${SVM_IMAGE_DISK:-4G}
# Fixed identifiers derived from the epoch: the same inputs give the same bytes.
seed=$(printf 'svm-image-%s' "$SOURCE_DATE_EPOCH" | sha256sum | cut -c1-64)
uuid() { local h; h=$(printf '%s-%s' "$seed" "$1" | sha256sum); echo "${h:0:8}-${h:8:4}-4${h:13:3}-8${h:17:3}-${h:20:12}"; }
salt=${seed:0:64}

work=$out/work
mkdir -p "$work" "$out"
log() { echo "== image: $*"; }
t0=$(date +%s)

# The Secure Boot signing key: the admin's (SVM_SB_KEY and SVM_SB_CERT, PEM), else the one in
# $out/secureboot, generated on the first build and kept for the next ones, so that hosts that
# enrolled its certificate keep booting new images.
if [ -n "${SVM_SB_KEY:-}${SVM_SB_CERT:-}" ]; then
    sb_key=${SVM_SB_KEY:-} sb_cert=${SVM_SB_CERT:-}
    [ -r "$sb_key" ] && [ -r "$sb_cert" ] ||
        { echo "build.sh: SVM_SB_KEY and SVM_SB_CERT must both name readable PEM files" >&2; exit 1; }
else
    sb_key=$out/secureboot/db.key sb_cert=$out/secureboot/db.crt
    if [ ! -e "$sb_key" ]; then
        log "Secure Boot: no key given (SVM_SB_KEY, SVM_SB_CERT): generating $sb_key"
        mkdir -p "$out/secureboot"
        chmod 0700 "$out/secureboot"
        # RSA 2048 with SHA-256: what every UEFI firmware verifies.
        openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 -subj "/CN=SVM image signing key $(date -u +%Y-%m-%d)/" \
            -keyout "$sb_key" -out "$sb_cert" 2>/dev/null
    fi
fi
openssl x509 -in "$sb_cert" -noout 2>/dev/null || { echo "build.sh: $sb_cert is not a PEM certificate" >&2; exit 1; }

# The DPDK libraries svm links (NEEDED entries), mapped to their Debian packages, plus the PMDs
# EAL loads at start for the NICs an appliance meets (virtio, vmxnet3) and the buses they sit on.
# (dpkg knows a library by the path its package ships, /usr/lib or /lib.)
dpdk_pkgs=$(for lib in $(ldd "$svm_bin" | awk '/librte_/ {print $3}'); do
    dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "${lib#/usr}"
done | cut -d: -f1 | sort -u | tr '\n' ',')
pmds="librte-net-virtio23,librte-net-vmxnet3-23,librte-bus-pci23,librte-bus-vdev23,librte-mempool-ring23,librte-net-af-packet23"
pkgs="systemd-sysv,systemd-resolved,systemd-timesyncd,udev,dbus,linux-image-cloud-amd64,initramfs-tools,cryptsetup-bin"
pkgs="$pkgs,e2fsprogs,cloud-guest-utils,fdisk,openssl,curl,ca-certificates,jq,iproute2,kmod,ethtool,open-vm-tools,${dpdk_pkgs}${pmds}"

rootfs=$work/rootfs
if [ -n "${SVM_IMAGE_REUSE_ROOTFS:-}" ] && [ -d "$rootfs/usr" ]; then
# For work on the later steps only: keeps the tree of the previous build (its svm binary too).
log "root filesystem: reusing $rootfs (SVM_IMAGE_REUSE_ROOTFS)"
else
rm -rf "$rootfs" "$work/stage"
log "root filesystem (mmdebstrap, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
mkdir -p "$work/stage"
install -m 0755 "$svm_bin" "$work/stage/svm"
install -m 0644 "$repo/deploy/svm.sysusers" "$work/stage/svm.conf"   # sysusers reads *.conf
# Documentation, manuals and translations are left out; the kernel's modules for hardware an
# appliance VM never has (sound, wireless, GPUs, media, InfiniBand) too.
mmdebstrap --variant=apt --include="$pkgs" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/zoneinfo/right/*' \
    --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/sound/*' \
    --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/gpu/*' \
    --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/media/*' \
    --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/infiniband/*' \
    --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/drivers/net/wireless/*' \
    --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/net/wireless/*' \
    --dpkgopt='path-exclude=/usr/lib/modules/*/kernel/net/mac80211/*' \
    --customize-hook="sync-in '$here/rootfs' /" \
    --customize-hook="copy-in '$work/stage/svm' /usr/bin" \
    --customize-hook="copy-in '$repo/deploy/svm.service' /usr/lib/systemd/system" \
    --customize-hook="copy-in '$work/stage/svm.conf' /usr/lib/sysusers.d" \
    --customize-hook="'$here/customize.sh' \"\$1\"" \
    bookworm "$rootfs" ${MIRROR:+"$MIRROR"}
fi

log "root filesystem as squashfs, dm-verity hash tree"
# /var and /boot leave the root: /var becomes its own partition, /boot's kernel and initrd go to
# the ESP.
rm -rf "$work/var" "$work/boot"
mkdir -p "$work/var" "$work/boot"
cp -a "$rootfs/var/." "$work/var/"
cp -L "$(ls "$rootfs"/boot/vmlinuz-* | tail -n1)" "$work/boot/vmlinuz"
cp -L "$(ls "$rootfs"/boot/initrd.img-* | tail -n1)" "$work/boot/initrd.img"
rm -f "$work/root.squashfs"
# mksquashfs takes its time stamps (file system and files) from SOURCE_DATE_EPOCH.
mksquashfs "$rootfs" "$work/root.squashfs" -noappend -comp zstd -Xcompression-level 15 \
    -quiet -no-progress \
    -wildcards -e 'var/*' 'boot/*' 'vmlinuz*' 'initrd.img*'
veritysetup format "$work/root.squashfs" "$work/root.verity" --salt="$salt" --uuid="$(uuid verity)" \
    --root-hash-file="$work/roothash" >"$work/verity.txt"
roothash=$(cat "$work/roothash")

log "ESP: unified kernel image (systemd's EFI stub, kernel, initrd, command line), signed"
# One PE binary holds the kernel, the initrd and the command line with the root hash, and its
# signature covers all three: under Secure Boot the firmware runs it only if it verifies against a
# certificate in db, and the stub then ignores any command line given from outside. The same file
# boots firmware without Secure Boot. It is the firmware's default boot path, so no boot entry
# (and no boot loader) is needed.
printf '%s' "root=/dev/mapper/root rootfstype=squashfs ro svm.verity=$roothash console=tty0 console=ttyS0,115200 systemd.firstboot=off panic=10" \
    >"$work/cmdline"
cp -L "$rootfs/usr/lib/os-release" "$work/os-release"
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
# The sections go after the stub's last one, each on a page boundary, in ukify's order (the
# kernel last).
vma=0
while read -r v n; do
    [ $((16#$v + 16#$n)) -gt $vma ] && vma=$((16#$v + 16#$n))
done < <(objdump -h -w "$stub" | awk '$1 ~ /^[0-9]+$/ { print $4, $3 }')
sections=()
for s in .osrel=os-release .cmdline=cmdline .initrd=boot/initrd.img .linux=boot/vmlinuz; do
    vma=$(( (vma + 4095) / 4096 * 4096 ))
    sections+=(--add-section "${s%%=*}=$work/${s#*=}" --change-section-vma "${s%%=*}=$(printf 0x%x $vma)")
    vma=$((vma + $(stat -c %s "$work/${s#*=}")))
done
rm -f "$work/svm.efi.unsigned"
objcopy "${sections[@]}" "$stub" "$work/svm.efi.unsigned"
# objcopy stamps the PE header with the time of day: the epoch's instead (TimeDateStamp, 4 bytes
# little-endian, 8 bytes into the PE header whose offset is at 0x3c).
pe=$(od -An -tu4 -j60 -N4 "$work/svm.efi.unsigned" | tr -d ' ')
e=$SOURCE_DATE_EPOCH
printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((e & 255)) $((e >> 8 & 255)) $((e >> 16 & 255)) $((e >> 24 & 255)))" |
    dd of="$work/svm.efi.unsigned" bs=1 seek=$((pe + 8)) conv=notrunc status=none
# sbsign adds the signing time to the signature, so the signed file differs between builds in its
# last bytes (and the PE checksum). Its warning about data after the last section is about
# objcopy's symbol table, which the signature covers like the rest.
sbsign --key "$sb_key" --cert "$sb_cert" --output "$work/BOOTX64.EFI" "$work/svm.efi.unsigned" 2>&1 |
    grep -v -e '^Signing Unsigned original image$' -e 'gaps between PE/COFF sections' || true
verify=$(sbverify --cert "$sb_cert" "$work/BOOTX64.EFI" 2>&1) ||
    { echo "build.sh: the signed kernel image does not verify against $sb_cert: $verify" >&2; exit 1; }
openssl x509 -in "$sb_cert" -outform der -out "$work/secureboot.cer"
esp=$work/esp.img
rm -f "$esp"
truncate -s 96M "$esp"
# --invariant fixes the FAT's serial (1234-ABCD) and time stamps.
mkfs.vfat -F 32 -n SVM-ESP --invariant "$esp" >/dev/null
touch -d "@$SOURCE_DATE_EPOCH" "$work/BOOTX64.EFI" "$work/secureboot.cer"
MTOOLS_SKIP_CHECK=1 mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/svm
MTOOLS_SKIP_CHECK=1 mcopy -m -i "$esp" "$work/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
# The certificate (DER) for enrollment from the firmware's own menu (docs/deployment.md).
MTOOLS_SKIP_CHECK=1 mcopy -m -i "$esp" "$work/secureboot.cer" ::/EFI/svm/secureboot.cer

log "/var partition (ext4, grows on first boot)"
var=$work/var.img
truncate -s 256M "$var"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mkfs.ext4 -q -b 4096 -L svm-var -U "$(uuid var)" \
    -E "hash_seed=$(uuid var-hash),root_owner=0:0" -d "$work/var" "$var"

log "disk (GPT)"
mib() { echo $(( ($(stat -c %s "$1") + 1048575) / 1048576 )); }
root_mib=$(( $(mib "$work/root.squashfs") + 8 ))
verity_mib=$(( $(mib "$work/root.verity") + 1 ))
raw=$work/disk.raw
rm -f "$raw"
truncate -s "$disk_size" "$raw"
# Partition types: ESP; Linux root (x86-64) verity data and its hash tree; Linux /var.
sfdisk -q --no-reread --no-tell-kernel "$raw" <<SFDISK
label: gpt
label-id: $(uuid disk)
first-lba: 2048
start=1MiB, size=96MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$(uuid p1), name=svm-esp
size=${root_mib}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$(uuid p2), name=svm-root
size=${verity_mib}MiB, type=2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5, uuid=$(uuid p3), name=svm-verity
size=256MiB, type=4D21B016-B534-45C2-A9FB-5C16E091FD2D, uuid=$(uuid p4), name=svm-var
SFDISK
start() { sfdisk -J "$raw" | jq -r ".partitiontable.partitions[$1].start"; }
put() { dd if="$1" of="$raw" bs=512 seek="$2" conv=notrunc,sparse status=none; }
put "$esp" "$(start 0)"
put "$work/root.squashfs" "$(start 1)"
put "$work/root.verity" "$(start 2)"
put "$var" "$(start 3)"

log "qcow2 (compressed)"
qemu-img convert -f raw -O qcow2 -c "$raw" "$out/svm.qcow2"

log "OVA (OVF, streamOptimized VMDK, manifest)"
ova=$work/ova
mkdir -p "$ova"
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$raw" "$ova/svm-disk1.vmdk"
capacity=$(stat -c %s "$raw")
vmdk_size=$(stat -c %s "$ova/svm-disk1.vmdk")
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$repo/svm/Cargo.toml" | head -n1)
sed -e "s/@CAPACITY@/$capacity/g" -e "s/@VMDK_SIZE@/$vmdk_size/g" -e "s/@VERSION@/$version/g" \
    "$here/svm.ovf.in" >"$ova/svm.ovf"
(cd "$ova" && for f in svm.ovf svm-disk1.vmdk; do
    echo "SHA256($f)= $(sha256sum "$f" | cut -d' ' -f1)"
done >svm.mf)
touch -d "@$SOURCE_DATE_EPOCH" "$ova"/*
# The descriptor comes first in an OVA (OVF 2.0, section 5.3), then the manifest may follow.
tar --format=ustar --owner=0 --group=0 --numeric-owner -C "$ova" -cf "$out/svm.ova" svm.ovf svm.mf svm-disk1.vmdk

install -m 0644 "$work/roothash" "$out/roothash"
install -m 0644 "$sb_cert" "$out/secureboot.crt"
install -m 0644 "$work/secureboot.cer" "$out/secureboot.cer"
log "done in $(( $(date +%s) - t0 )) s"
log "root hash $roothash"
log "Secure Boot: signed with $sb_cert, $(openssl x509 -in "$sb_cert" -noout -subject -fingerprint -sha256 | tr '\n' ' ')"
ls -l "$out/svm.qcow2" "$out/svm.ova"
}

main "$@"; exit $?
