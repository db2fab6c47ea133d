#!/usr/bin/env bash
# Runs crust's whole test suite on a fresh Debian 12 machine, as root.
# This is the test command README.md gives, and .ci/run calls it unchanged.
#
# The suite runs in stages; each prints its duration and every stage runs even when an
# earlier one failed (the exit status is non-zero if any failed). A summary table comes last.
# Each stage is bounded by its own timeout (STAGE_TIMEOUT_<NAME> seconds overrides it).
set -uo pipefail
cd "$(dirname "$0")/.."

declare -a SUMMARY=()
FAILED=0
# stage NAME TIMEOUT_SECS CMD...: runs CMD under a timeout, records its result and duration.
stage() {
  local name=$1 limit=$2
  shift 2
  local var="STAGE_TIMEOUT_${name^^}"
  var=${var//-/_}
  limit=${!var:-$limit}
  local t0=$SECONDS rc
  echo "==== stage $name (limit ${limit}s): $*"
  timeout --kill-after=30 "$limit" "$@"
  rc=$?
  local d=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then
    SUMMARY+=("$(printf '%-14s ok      %5d s' "$name" "$d")")
  else
    [ $rc -eq 124 ] && rc="timeout"
    SUMMARY+=("$(printf '%-14s FAILED  %5d s  (%s)' "$name" "$d" "$rc")")
    FAILED=1
  fi
  echo "==== stage $name: $([ "$rc" = 0 ] && echo ok || echo "FAILED ($rc)") in ${d} s"
}

stage deps 900 deploy/deps.sh
# The e2e and shim tests run the workspace's binaries (crustd, crustctl, crust-shim,
# crust-runc) from the target dir; `cargo test` alone rebuilds only the binaries of packages
# that have integration tests, so build them all first and never test a stale one.
stage build 1800 cargo build --workspace --bins --tests --locked
stage cargo-test 2400 cargo test --workspace --locked --no-fail-fast
# CRI clients nobody here wrote (Debian's grpc-go, PyPI's grpcio) against crustd: e2e/tests/interop.rs.
stage interop 600 cargo test -p crust-e2e --locked --test interop -- --ignored
# libFuzzer (cargo-fuzz, stable toolchain) on every decoder of untrusted bytes: each of the
# 7 targets of fuzz/ for 12 s after its seed corpus (~90 s). The instrumented release build
# of crustd's whole dependency tree comes first, from nothing on a fresh machine: 8.7 min of
# CPU measured here (about 5 min on two free cores), so the stage is bounded at 15 min.
stage fuzz 900 fuzz/run.sh 12
# The Debian package, made from target/debug's binaries, installed into a Debian 12 minbase
# debootstrap chroot (debootstrapped once from the Debian mirror, then cached in
# target/pkgtest/), where the packaged crustd must start and answer; then removed and purged.
stage package 900 deploy/test-package.sh
# A Debian 12 qemu guest (systemd PID 1, cgroup v2 only) running the tests that need such a
# node (e2e/vm/run.sh: image cached under target/vm, ~1 min to build on first use; TCG).
stage vm 900 e2e/vm/run.sh

echo
echo "==== summary"
printf '%s\n' "${SUMMARY[@]}"
echo "total ${SECONDS} s"
exit $FAILED
