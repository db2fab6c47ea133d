#!/usr/bin/env bash
# Exec latency benchmark: ExecSync `true` and streamed exec `true` (Exec RPC + SPDY session
# with crust's client), N times each in a running busybox container, through crustd and
# through a private Debian containerd+runc (its own CRI streaming server), same client;
# medians and ratios. Binaries as installed (deploy/build.sh).
# Usage: sudo bench/exec.sh [RUNS]   (needs docker-registry and containerd: deploy/deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# The binaries as installed (deploy/build.sh): daemon-profile crustd, static shim and runtime.
deploy/build.sh "$CARGO_TARGET_DIR/bench-bin"
cargo build --release -p crust-e2e --bin bench_exec
CRUSTD="$CARGO_TARGET_DIR/bench-bin/crustd" "$CARGO_TARGET_DIR/release/bench_exec" "${1:-30}"
