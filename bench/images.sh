#!/usr/bin/env bash
# Image pull benchmark: the same ~200 MB image (5 layers, ~21000 small files plus large
# files) pulled and unpacked from a loopback docker-registry through crustd and through a
# private containerd instance (CRI plugin, overlayfs), same CRI client. Every pull gets its
# root on a fresh ext4 (loop device over a sparse file in /var/tmp) and starts with the page
# cache dropped; BENCH_FS=host uses the host temp dir instead (runs 65 s apart).
# Prints per-run wall and CPU times, medians and the ratios (target: crust <= 0.5x containerd).
# Usage: sudo bench/images.sh [RUNS]   (needs docker-registry and containerd: deploy/deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# The binaries as installed (deploy/build.sh): daemon-profile crustd, static shim and runtime.
deploy/build.sh "$CARGO_TARGET_DIR/bench-bin"
cargo build --release -p crust-e2e --bin bench_images
CRUSTD="$CARGO_TARGET_DIR/bench-bin/crustd" "$CARGO_TARGET_DIR/release/bench_images" "${1:-3}"
