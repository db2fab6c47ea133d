#!/usr/bin/env bash
# Installs the Debian packages crust needs to build, test and benchmark.
# Idempotent; run as root. Pass --runtime-only to skip the test/benchmark references.
set -euo pipefail
build=(protobuf-compiler libseccomp-dev pkg-config gcc)
runtime=(busybox-static iproute2 nftables procps)
test=(e2fsprogs docker-registry apache2-utils runc crun containerd containernetworking-plugins hyperfine jq python3 golang-go golang-github-docker-spdystream-dev golang-github-gorilla-websocket-dev)
want=("${build[@]}" "${runtime[@]}")
[ "${1:-}" = "--runtime-only" ] || want+=("${test[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's docker-registry and containerd start as services on install; the tests and
# benchmarks start their own instances on free ports, so the packaged ones are not needed.
for s in docker-registry containerd; do
  systemctl disable --now "$s" >/dev/null 2>&1 || true
done
if ! command -v cargo >/dev/null; then
  echo "deps: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
