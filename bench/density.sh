#!/usr/bin/env bash
# Density benchmark (issue 20): N pods (default 10 110 250) with one busybox sleep container
# each, started and then stopped+removed by 10 concurrent CRI clients, through crustd and
# through a private Debian containerd 1.6 + runc, both rooted on this machine's own root fs;
# wall times, effective concurrency, ListPodSandbox time, daemon and per-shim RSS (by pid),
# crustd's restart after kill -9 with the pods running, ratios, load average; PNG under
# target/bench-out (BENCH_OUT). Binaries as installed (deploy/build.sh).
# Usage: sudo bench/density.sh [--clients C] [N...]   (needs docker-registry, containerd, gnuplot)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
deploy/build.sh "$CARGO_TARGET_DIR/bench-bin"
cargo build --release -p crust-e2e --bin bench_density
CRUSTD="$CARGO_TARGET_DIR/bench-bin/crustd" "$CARGO_TARGET_DIR/release/bench_density" "$@"
