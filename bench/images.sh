#!/usr/bin/env bash
# Image pull benchmark: the same ~200 MB image (5 layers, ~21000 small files plus large
# files) pulled and unpacked from a loopback docker-registry through crustd and through a
# private containerd instance (CRI plugin, overlayfs), fresh root per run, same CRI client.
# Prints per-run times, medians and the ratio (target: crust <= 0.5x containerd).
# Usage: sudo bench/images.sh [RUNS]   (needs docker-registry and containerd: deploy/deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p crust-cri --bin crustd
cargo build --release -p crust-e2e --bin bench_images
CRUSTD="$CARGO_TARGET_DIR/release/crustd" "$CARGO_TARGET_DIR/release/bench_images" "${1:-3}"
