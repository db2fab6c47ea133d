#!/usr/bin/env bash
# Installs the Debian packages crust needs to build, test and benchmark.
# Idempotent; run as root. Pass --runtime-only to skip the test/benchmark references.
set -euo pipefail
build=(protobuf-compiler libseccomp-dev pkg-config gcc)
runtime=(busybox-static iproute2 nftables procps)
# qemu-system-x86, debootstrap: the VM suite (e2e/vm/run.sh) builds and boots a Debian guest;
# dpkg-dev, debootstrap, lintian: the package stage.
# criu: runtime_checkpoint checks the refusal where `criu check` fails (checkpoints run in
# the VM suite's guest).
test=(dpkg-dev debootstrap lintian qemu-system-x86 e2fsprogs docker-registry apache2-utils runc crun containerd containernetworking-plugins hyperfine jq python3 prometheus golang-go golang-github-docker-spdystream-dev golang-github-gorilla-websocket-dev criu
  # the interop suite's Go CRI client: grpc-go 1.33, protobuf APIv2 (golang/protobuf 1.5
  # replaces 1.3, whose codec cannot marshal APIv2 messages), the protoc plugins
  golang-google-grpc-dev golang-github-golang-protobuf-1-5-dev golang-google-protobuf-dev protoc-gen-go protoc-gen-go-grpc
  python3-venv)
want=("${build[@]}" "${runtime[@]}")
[ "${1:-}" = "--runtime-only" ] || want+=("${test[@]}")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Some of these packages (containerd, docker-registry, prometheus) start a service on install. The
  # tests and benchmarks start their own instances on their own sockets and ports, so while
  # our apt-get runs a temporary policy-rc.d (exit 101: "action forbidden", honoured by
  # invoke-rc.d and deb-systemd-invoke) keeps the packages installed now from starting or
  # restarting anything. Services the node already runs are never stopped, disabled or
  # reconfigured. An existing policy-rc.d (a container image's) is left as it is.
  policy=/usr/sbin/policy-rc.d
  ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from crust deploy/deps.sh (removed when its apt-get ends)\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    ours=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  if [ "$ours" = 1 ]; then rm -f "$policy"; trap - EXIT; fi
fi
# The interop suite's Python CRI client: PyPI's grpcio (+ grpcio-tools for the stubs,
# websocket-client for the streaming URLs) in a venv of its own.
venv=/opt/crust-test/venv
if [ "${1:-}" != "--runtime-only" ] && ! "$venv/bin/python" -c 'import grpc, grpc_tools, websocket' 2>/dev/null; then
  echo "deps: making $venv (grpcio, grpcio-tools, websocket-client from PyPI)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'grpcio==1.85.*' 'grpcio-tools==1.85.*' 'websocket-client==1.9.*'
fi
if ! command -v cargo >/dev/null; then
  echo "deps: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
# The fuzz stage (fuzz/run.sh): cargo-fuzz from crates.io, built with the machine's stable
# toolchain (the targets need no nightly: fuzz/README.md).
if [ "${1:-}" != "--runtime-only" ] && ! cargo fuzz --version >/dev/null 2>&1; then
  echo "deps: installing cargo-fuzz (crates.io)"
  cargo install --locked cargo-fuzz --version '^0.13'
fi
