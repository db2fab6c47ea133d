#!/usr/bin/env bash
# Pod start benchmark: RunPodSandbox + CreateContainer + StartContainer (image present),
# then StopPodSandbox and RemovePodSandbox, N times through crustd and through a private
# Debian containerd+runc (restrict_oom_score_adj = true), same Rust CRI client, in two
# layouts in one run: roots on this machine's own root fs and on fresh journaled loop
# filesystems; all four interleaved pod by pod. Per-phase medians and ratios for both
# layouts with the load average, crustd's idle RSS; PNG of the latency distributions
# under target/bench-out (BENCH_OUT). Binaries as installed (deploy/build.sh).
# Usage: sudo bench/pods.sh [RUNS]   (needs docker-registry and containerd: deploy/deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# The binaries as installed (deploy/build.sh): daemon-profile crustd, static shim and runtime.
deploy/build.sh "$CARGO_TARGET_DIR/bench-bin"
cargo build --release -p crust-e2e --bin bench_pods
CRUSTD="$CARGO_TARGET_DIR/bench-bin/crustd" "$CARGO_TARGET_DIR/release/bench_pods" "${1:-20}"
