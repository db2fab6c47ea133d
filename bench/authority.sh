#!/usr/bin/env bash
# Cost of the :authority adapter on the common path: Version and ListPodSandbox latency
# through crustd with the adapter and with CRUST_AUTHORITY_FIX=0, side by side in one run;
# medians, p90 and ratios. crustd as installed (deploy/build.sh).
# Usage: sudo bench/authority.sh [CALLS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
deploy/build.sh "$CARGO_TARGET_DIR/bench-bin"
cargo build --release -p crust-e2e --bin bench_authority
CRUSTD="$CARGO_TARGET_DIR/bench-bin/crustd" "$CARGO_TARGET_DIR/release/bench_authority" "${1:-3000}"
