#!/usr/bin/env bash
# Pod start benchmark: RunPodSandbox + CreateContainer + StartContainer (image present),
# then stop/remove, N times through crustd and through a private Debian containerd+runc
# (restrict_oom_score_adj = true), same Rust CRI client; per-phase medians, ratios, and
# crustd's RSS idle and with 10 pods. Binaries as installed (deploy/build.sh).
# Usage: sudo bench/pods.sh [RUNS]   (needs docker-registry and containerd: deploy/deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# The binaries as installed (deploy/build.sh): daemon-profile crustd, static shim and runtime.
deploy/build.sh "$CARGO_TARGET_DIR/bench-bin"
cargo build --release -p crust-e2e --bin bench_pods
CRUSTD="$CARGO_TARGET_DIR/bench-bin/crustd" "$CARGO_TARGET_DIR/release/bench_pods" "${1:-20}"
