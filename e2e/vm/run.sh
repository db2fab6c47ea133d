#!/usr/bin/env bash
# Runs crust's tests inside a Debian 12 qemu guest with systemd as PID 1 and cgroup v2 only
# (what production Kubernetes nodes run), and brings back their output and exit code.
#
#   e2e/vm/run.sh [TEST-FILTER]       (as root; README.md "Tests in a VM")
#
# TEST-FILTER is TARGET or TARGET::NAME: a workspace test target (an e2e test file such as
# `vm_cgroup_v2`, or a crate's unit tests such as `crust_cgroups`) and a cargo-test name
# filter; without one the guest runs its default suite (e2e/vm/guest.sh). Environment:
#   CRUST_VM_DRIVERS   cgroup drivers the e2e tests run crustd with (default "cgroupfs systemd")
#   CRUST_VM_CACHE     image cache (default <target>/vm; rebuilt when e2e/vm/image.sh changes)
#   CRUST_VM_ACCEL     tcg | kvm (default: kvm only if a probe guest boots under it, else tcg)
#   CRUST_VM_MEM       guest memory in MiB (default 1536), CRUST_VM_CPUS (default 1: TCG is CPU-heavy)
#   CRUST_VM_TIMEOUT   seconds the guest may run (default 720; CI bounds the whole stage at 900)
#   CRUST_VM_NO_BUILD  1: use the binaries already built
#   CRUST_VM_SCRIPT    a shell script the guest runs instead of the tests (debugging)
# Each step prints what it does and how long it took.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
filter=${1:-}
target=${CARGO_TARGET_DIR:-$repo/target}
cache=${CRUST_VM_CACHE:-$target/vm}
mem=${CRUST_VM_MEM:-1536}
cpus=${CRUST_VM_CPUS:-1}
limit=${CRUST_VM_TIMEOUT:-720}
t_all=$SECONDS
step() { echo "vm: $*"; }
took() { echo "vm: $1: $(($SECONDS - $2)) s"; }

if [ "$(id -u)" != 0 ]; then
  echo "vm: skipped: needs root (debootstrap, qemu with 9p shares of root-owned files)"
  exit 0
fi
for c in qemu-system-x86_64 debootstrap mkfs.ext4 jq busybox; do
  command -v "$c" >/dev/null || { echo "vm: $c missing (deploy/deps.sh installs it)" >&2; exit 1; }
done

# 1. The image, cached by the hash of its recipe.
hash=$(sha256sum e2e/vm/image.sh | cut -c1-16)
img=$cache/image-$hash
if [ ! -f "$img/rootfs.img" ]; then
  t0=$SECONDS
  step "building the guest image $img (e2e/vm/image.sh changed or first use)"
  e2e/vm/image.sh "$img" "$cache/debs"
  for old in "$cache"/image-*; do
    [ "$old" = "$img" ] || rm -rf "$old"
  done
  took "image build" $t0
else
  step "guest image $img (cached)"
fi

# 2. Fresh binaries and test programs (the guest runs them from the repo share).
t0=$SECONDS
manifest=$(mktemp "${TMPDIR:-/tmp}/crust-vm-tests.XXXXXX")
out="" probe=""
trap 'rm -rf "$manifest" "$manifest.log" ${out:+"$out"} ${probe:+"$probe"}' EXIT
if [ "${CRUST_VM_NO_BUILD:-0}" != 1 ]; then
  step "building the workspace's binaries and tests"
  cargo build --workspace --bins --tests --locked --quiet
fi
# One line per test program: "<target name> <path>".
if ! cargo test --workspace --no-run --locked --message-format=json 2>"$manifest.log" |
  jq -r 'select(.reason == "compiler-artifact" and .executable != null and .profile.test)
         | "\(.target.name) \(.executable)"' >"$manifest"; then
  tail -40 "$manifest.log" >&2
  echo "vm: building the test programs failed" >&2
  exit 1
fi
took "build" $t0
if ! grep -q . "$manifest"; then
  echo "vm: no test programs found" >&2
  exit 1
fi

# 3. Accelerator: KVM only when a probe guest (busybox initramfs that prints a marker and
# powers off) boots under it; on hosts where /dev/kvm opens but guests hang, TCG.
accel=${CRUST_VM_ACCEL:-}
if [ -z "$accel" ]; then
  accel=tcg
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    t0=$SECONDS
    probe=$(mktemp -d "${TMPDIR:-/tmp}/crust-vm-probe.XXXXXX")
    mkdir -p "$probe/i/bin" "$probe/i/dev"
    cp "$(command -v busybox)" "$probe/i/bin/busybox"
    printf '#!/bin/busybox sh\n/bin/busybox mount -t devtmpfs d /dev\n/bin/busybox echo CRUST-VM-KVM-OK >/dev/ttyS0\n/bin/busybox poweroff -f\n' >"$probe/i/init"
    chmod 755 "$probe/i/init"
    (cd "$probe/i" && find . | busybox cpio -o -H newc 2>/dev/null) >"$probe/initrd"
    # qemu runs under an inner shell that polls it for 15 s then kills it, with all its
    # output (including that shell's report of qemu aborting) in qemu.log.
    bash -c '"$@" & q=$!; for _ in $(seq 150); do kill -0 $q 2>/dev/null || break; sleep 0.1; done
      kill -9 $q 2>/dev/null; wait $q; true' probe \
      qemu-system-x86_64 -accel kvm -cpu host -m 256 -nodefaults \
      -display none -monitor none -serial "file:$probe/out" -no-reboot \
      -kernel "$img/vmlinuz" -initrd "$probe/initrd" -append "console=ttyS0 quiet panic=-1" \
      >"$probe/qemu.log" 2>&1 </dev/null
    grep -q CRUST-VM-KVM-OK "$probe/out" 2>/dev/null && accel=kvm
    why=$(grep -m1 . "$probe/qemu.log" 2>/dev/null || echo "no output within 15 s")
    rm -rf "$probe"
    took "kvm probe ($([ $accel = kvm ] && echo "guest booted: using kvm" || echo "guest did not boot ($why): using tcg"))" $t0
  else
    step "no usable /dev/kvm: using tcg"
  fi
fi
case $accel in
  kvm) accel_args=(-accel kvm -cpu host) ;;
  tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
  *) echo "vm: CRUST_VM_ACCEL must be tcg or kvm" >&2; exit 1 ;;
esac

# 4. Boot the guest: the image copy-on-write (snapshot=on, the cached image is never
# written), the repo read-only and a per-run results dir read-write over 9p.
out=$(mktemp -d "${TMPDIR:-/tmp}/crust-vm-out.XXXXXX")
cp "$manifest" "$out/tests"
[ -z "${CRUST_VM_SCRIPT:-}" ] || cp "$CRUST_VM_SCRIPT" "$out/script"
{
  printf 'CRUST_VM_REPO=%q\n' "$repo"
  printf 'CRUST_VM_FILTER=%q\n' "$filter"
  printf 'CRUST_VM_DRIVERS=%q\n' "${CRUST_VM_DRIVERS:-cgroupfs systemd}"
  printf 'CRUST_VM_ACCEL=%q\n' "$accel"
} >"$out/env"
t0=$SECONDS
step "booting the guest ($accel, $cpus cpus, $mem MiB) and running ${filter:-the default suite}"
set +e
timeout -k 5 "$limit" qemu-system-x86_64 "${accel_args[@]}" -machine q35 -smp "$cpus" -m "$mem" \
  -nodefaults -display none -monitor none -serial stdio -no-reboot -nic none \
  -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 ${CRUST_VM_APPEND:-quiet} systemd.unified_cgroup_hierarchy=1 systemd.show_status=0 panic=-1" \
  -drive "file=$img/rootfs.img,format=raw,if=virtio,snapshot=on" \
  -virtfs "local,path=$repo,mount_tag=repo,security_model=none,readonly=on" \
  -virtfs "local,path=$out,mount_tag=out,security_model=none" \
  </dev/null 2>&1 | sed -u 's/\r$//'
qrc=${PIPESTATUS[0]}
set -e
took "guest run" $t0
if [ ! -f "$out/rc" ]; then
  echo "vm: the guest did not report a result (qemu exit $qrc$([ "$qrc" = 124 ] && echo ", timed out after ${limit}s"))" >&2
  exit 1
fi
rc=$(cat "$out/rc")
took "total" $t_all
echo "vm: guest tests exit code $rc"
exit "$rc"
