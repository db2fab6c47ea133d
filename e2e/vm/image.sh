#!/usr/bin/env bash
# Builds the Debian 12 guest for e2e/vm/run.sh into DIR (run as root):
#   DIR/rootfs.img  raw ext4 made with mkfs.ext4 -d: systemd as PID 1, cgroup v2 only
#   DIR/vmlinuz     Debian's kernel (linux-image-amd64, installed in the guest)
#   DIR/initrd.img  Debian's initramfs-tools image for it, listing virtio and ext4
# Everything comes from Debian packages (debootstrap from the Debian mirror; downloaded
# .debs are kept in DEBS, default DIR/../debs, for the next build). The guest runs
# /usr/local/sbin/crust-vm-run at boot: it mounts the host's 9p shares, runs the script the
# host hands it (e2e/vm/guest.sh, from the repo, so it is not part of the image), writes
# its exit code back and powers off. This file is the recipe: run.sh rebuilds the image
# whenever this file changes.
set -euo pipefail
dir=${1:?usage: image.sh DIR [DEBS]}
debs=${2:-$(dirname "$dir")/debs}
mirror=${VM_MIRROR:-http://deb.debian.org/debian}
# What the guest needs: systemd (PID 1; its D-Bus API through dbus), Debian's kernel and
# modules (overlay, 9p), the e2e harness's registry and busybox, containerd and runc for the
# containerd interop tests, CA certificates (the registry client loads them even for plain
# HTTP), the tools the tests read cgroup and unit state with, and criu for checkpoint/restore
# (the host's kernel is too new for Debian's criu 3.17; the guest's 6.1 is not).
packages=(systemd-sysv udev kmod dbus linux-image-amd64 initramfs-tools
  ca-certificates busybox-static docker-registry containerd runc iproute2 nftables procps
  e2fsprogs jq criu iptables)

t() { # t LABEL CMD...: runs CMD with its output in the build log, prints its duration
  local label=$1 t0=$SECONDS
  shift
  if ! "$@" >>"$work/build.log" 2>&1; then
    tail -40 "$work/build.log"
    echo "vm-image: $label failed" >&2
    return 1
  fi
  echo "vm-image: $label: $((SECONDS - t0)) s"
}

mkdir -p "$debs" "$(dirname "$dir")"
work=$(mktemp -d "${dir%/}.build.XXXXXX")
# The root tree is built on a private tmpfs: dpkg syncs every file it unpacks, which on a
# loaded disk makes the install several times slower.
mount -t tmpfs -o size=3g,mode=0755 crust-vm-build "$work"
cleanup() {
  umount -R "$work" 2>/dev/null || umount -l "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
root=$work/root
inc=$(IFS=,; echo "${packages[*]}")
t "debootstrap (download, unpack)" debootstrap --variant=minbase --foreign \
  --cache-dir="$(realpath "$debs")" --include="$inc" bookworm "$root" "$mirror"
# Debian's initramfs with just what finding the root disk needs, rather than most modules.
mkdir -p "$root/etc/initramfs-tools/conf.d"
echo MODULES=list >"$root/etc/initramfs-tools/conf.d/crust-vm"
printf '%s\n' virtio_pci virtio_blk ext4 >>"$root/etc/initramfs-tools/modules"
t "debootstrap second stage (dpkg)" chroot "$root" /debootstrap/debootstrap --second-stage

echo crust-vm >"$root/etc/hostname"
printf '127.0.0.1 localhost crust-vm\n::1 localhost\n' >"$root/etc/hosts"
printf '/dev/vda / ext4 rw,relatime 0 1\n' >"$root/etc/fstab"
# Packaged services the tests start their own instances of, and ones that only cost boot
# time under emulation.
chroot "$root" systemctl disable docker-registry.service containerd.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
  systemd-timesyncd.service >/dev/null 2>&1 || true
chroot "$root" systemctl mask getty@tty1.service serial-getty@ttyS0.service \
  systemd-networkd-wait-online.service >/dev/null 2>&1 || true

cat >"$root/usr/local/sbin/crust-vm-run" <<'RUN'
#!/bin/sh
# Mounts the host's 9p shares ("out" read-write for results, "repo" read-only at the host's
# path of the repository), runs the repository's e2e/vm/guest.sh and writes its exit code
# to /mnt/out/rc. The unit powers the guest off afterwards.
set -u
modprobe 9pnet_virtio
mkdir -p /mnt/out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /mnt/out || exit 1
. /mnt/out/env
mkdir -p "$CRUST_VM_REPO"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro repo \
  "$CRUST_VM_REPO" || exit 1
cd "$CRUST_VM_REPO" || exit 1
sh e2e/vm/guest.sh
echo "$?" >/mnt/out/rc
sync
RUN
chmod 755 "$root/usr/local/sbin/crust-vm-run"
cat >"$root/etc/systemd/system/crust-vm-run.service" <<'UNIT'
[Unit]
Description=crust VM test run (e2e/vm/run.sh)
After=multi-user.target dbus.service
Wants=dbus.service
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/crust-vm-run
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable crust-vm-run.service >/dev/null 2>&1
chroot "$root" systemctl set-default multi-user.target >/dev/null 2>&1

cp "$root"/boot/vmlinuz-* "$work/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/initrd.img"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/debootstrap
t mkfs.ext4 mkfs.ext4 -q -F -L crust-vm -d "$root" "$work/rootfs.img" 6G
rm -rf "$dir"
mkdir -p "$dir"
cp --sparse=always "$work/rootfs.img" "$dir/"
cp "$work/vmlinuz" "$work/initrd.img" "$dir/"
echo "vm-image: $(du -h "$dir/rootfs.img" | cut -f1) used of 6G, kernel $(ls "$root/lib/modules")"
