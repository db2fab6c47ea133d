#!/usr/bin/env bash
# Tests crust's Debian package as an operator installs it, on a clean Debian 12: a
# debootstrap chroot (--variant=minbase, cached in target/pkgtest/ so it is built once),
# where
#   0. lintian (Debian's package checker) finds no error in it;
#   1. `apt-get install ./crust_*.deb` pulls the Depends from the Debian mirror and needs
#      no Rust toolchain (there is none in the chroot);
#   2. crustd from the package starts on the packaged /etc/crust/config.toml, in private
#      mount, PID and network namespaces with its own state and socket, and answers a CRI
#      Version call from the packaged crustctl;
#   3. `apt-get remove` removes the binaries and the unit and keeps the configuration and
#      /var/lib/crust; `apt-get purge` (plus autoremove of the Depends) leaves the chroot's
#      file list exactly as before the install.
# Usage: deploy/test-package.sh [DEB]  (default: package target/debug's binaries with
# deploy/package.sh --fast, so CI tests the packaging without a release build)
# Needs root, debootstrap, dpkg-dev and the Debian mirror (CRUST_DEBIAN_MIRROR, default
# http://deb.debian.org/debian); says why and exits 0 when it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
say() { echo "test-package: $*"; }
skip() { say "SKIPPED: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (chroot, namespaces)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed (deploy/deps.sh installs it)"
command -v unshare >/dev/null || skip "unshare (util-linux) is missing"

mirror=${CRUST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=$repo/target/pkgtest
mkdir -p "$cache"
C=$cache/chroot
passed=0 failed=0
check() { # DESCRIPTION COMMAND...: one counted check
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); say "ok: $what"; else failed=$((failed + 1)); say "FAILED: $what"; fi
}
cleanup() {
  set +e
  awk -v d="$C" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$C"
}
trap cleanup EXIT

deb=${1:-}
if [ -z "$deb" ]; then
  for b in crustd crustctl crust-shim crust-runc; do
    [ -x "target/debug/$b" ] || { say "target/debug/$b missing: run cargo build --workspace --bins first" >&2; exit 1; }
  done
  deb=$(deploy/package.sh --bin-dir target/debug --out "$cache" --fast)
fi
[ -f "$deb" ] || { say "no package at $deb" >&2; exit 1; }
say "package $deb ($(du -h "$deb" | cut -f1))"
# Debian's own package checker: no error-level tag (warnings, e.g. no manual pages, are printed).
if command -v lintian >/dev/null; then
  # The default Maintainer (crust@localhost, see package.sh) is a placeholder for whoever
  # publishes the package; everything else must pass.
  if lintian --fail-on error --tag-display-limit 0 \
       --suppress-tags bogus-mail-host,bogus-mail-host-in-debian-changelog "$deb" > "$cache/lintian.log" 2>&1; then
    passed=$((passed + 1)); say "ok: lintian finds no error ($(grep -c '^W:' "$cache/lintian.log") warnings)"
  else
    failed=$((failed + 1)); say "FAILED: lintian:"; grep -E '^[EW]:' "$cache/lintian.log" | sed 's/^/    /'
  fi
else
  say "lintian is not installed: package not linted (deploy/deps.sh installs it)"
fi

base=$cache/bookworm-minbase.tar
if [ ! -f "$base" ]; then
  say "building the Debian 12 minbase chroot (once; cached as $base)"
  t0=$SECONDS
  rm -rf "$cache/debootstrap"
  debootstrap --variant=minbase bookworm "$cache/debootstrap" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; say "debootstrap failed (mirror $mirror)" >&2; exit 1; }
  tar -C "$cache/debootstrap" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$cache/debootstrap"
  say "chroot built in $((SECONDS - t0)) s"
fi
cleanup
mkdir -p "$C"
tar -C "$C" -xf "$base"
cp /etc/resolv.conf "$C/etc/resolv.conf"
cp "$deb" "$C/tmp/crust.deb"

# Runs a shell command in the chroot (host network, for apt).
in_chroot() { chroot "$C" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive /bin/sh -c "$1"; }
# The chroot's files, less what apt, dpkg and logs keep for themselves.
listing() {
  (cd "$C" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp \
     -o -path ./var/cache -o -path ./var/lib/apt -o -path ./var/lib/dpkg -o -path ./var/log \
     -o -path ./run -o -path ./etc/ld.so.cache -o -path ./var/lib/systemd/deb-systemd-helper-enabled \) -prune -o -print | sort)
}
in_chroot 'apt-get update -q' > "$cache/apt.log" 2>&1 || { tail "$cache/apt.log" >&2; exit 1; }
listing > "$cache/before.txt"

check "no Rust toolchain in the chroot" in_chroot '! command -v cargo && ! command -v rustc'
if in_chroot 'apt-get install -y -q --no-install-recommends /tmp/crust.deb' >> "$cache/apt.log" 2>&1; then
  passed=$((passed + 1)); say "ok: apt-get install ./crust.deb (with its Depends)"
else
  failed=$((failed + 1)); tail -n 20 "$cache/apt.log" >&2; say "FAILED: apt-get install ./crust.deb"
  exit 1
fi
check "the four binaries, the shim link and the unit are installed" in_chroot \
  'for f in /usr/bin/crustd /usr/bin/crustctl /usr/bin/crust-shim /usr/bin/crust-runc /lib/systemd/system/crustd.service; do [ -f $f ] || exit 1; done; [ "$(readlink /usr/bin/containerd-shim-crust-v2)" = crust-shim ]'
check "crustd.service is enabled for when systemd runs" in_chroot \
  '[ "$(readlink /etc/systemd/system/multi-user.target.wants/crustd.service)" = /lib/systemd/system/crustd.service ]'
check "config.toml and crictl.yaml are conffiles" in_chroot \
  'dpkg-query -W -f="\${Conffiles}" crust | grep -q /etc/crust/config.toml && dpkg-query -W -f="\${Conffiles}" crust | grep -q /etc/crictl.yaml'
check "postinst said crustd was not started and would run unsupervised" grep -q "no systemd here, crustd was not started.*unsupervised" "$cache/apt.log"
check "every binary's libraries resolve" in_chroot \
  'for b in crustd crustctl crust-shim crust-runc; do /usr/bin/$b --help >/dev/null || exit 1; done'

# crustd from the package, in its own mount/PID/network namespaces inside the chroot.
cat > "$C/tmp/serve.sh" <<'SH'
set -e
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
ip link set lo up 2>/dev/null || true
crustd --root /var/lib/crust --state /run/crust-pkgtest --listen /run/crust-pkgtest/crust.sock > /tmp/crustd.log 2>&1 &
pid=$!
for i in $(seq 100); do [ -S /run/crust-pkgtest/crust.sock ] && break; sleep 0.1; done
crustctl -r unix:///run/crust-pkgtest/crust.sock version
kill -TERM $pid
wait $pid
SH
if out=$(unshare --mount --pid --net --fork chroot "$C" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/sh /tmp/serve.sh 2>&1) &&
   echo "$out" | grep -q "RuntimeName:  crust"; then
  passed=$((passed + 1)); say "ok: the packaged crustd answers Version:"; echo "$out" | sed 's/^/    /'
else
  failed=$((failed + 1)); say "FAILED: the packaged crustd did not answer Version:"; echo "$out" | sed 's/^/    /'
  sed 's/^/    crustd: /' "$C/tmp/crustd.log" | tail -n 20
fi

in_chroot 'apt-get remove -y -q crust' >> "$cache/apt.log" 2>&1
check "remove: binaries and unit gone" in_chroot '! [ -e /usr/bin/crustd ] && ! [ -e /usr/bin/containerd-shim-crust-v2 ] && ! [ -e /lib/systemd/system/crustd.service ]'
check "remove: configuration and /var/lib/crust kept" in_chroot '[ -f /etc/crust/config.toml ] && [ -f /etc/crictl.yaml ] && [ -d /var/lib/crust ]'
in_chroot 'apt-get purge -y -q crust && apt-get autoremove --purge -y -q' >> "$cache/apt.log" 2>&1
listing > "$cache/after.txt"
if diff -u "$cache/before.txt" "$cache/after.txt" > "$cache/leftovers.diff"; then
  passed=$((passed + 1)); say "ok: purge + autoremove leave the chroot as it was"
else
  failed=$((failed + 1)); say "FAILED: purge left files behind:"; sed 's/^/    /' "$cache/leftovers.diff" | head -n 30
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
