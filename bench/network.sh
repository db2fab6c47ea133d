#!/usr/bin/env bash
# Pod networking benchmark (issue 7): RunPodSandbox and StopPodSandbox + RemovePodSandbox of
# pods with their own network, N times each, side by side: (a) crustd's built-in bridge
# (10.201.0.0/24), (b) crustd with Debian's CNI bridge + host-local + portmap conflist
# (10.202.0.0/24, private conf dir, plugins from /usr/lib/cni), (c) a private Debian
# containerd (restrict_oom_score_adj = true, local pause image) with the same conflist.
# Same Rust CRI client (bench_pods --network). Prints medians and the ratios to containerd
# (target: built-in <= 0.1x containerd's RunPodSandbox). Bridges, nft tables, pods, netns
# and processes are removed afterwards, also on failure. Binaries as installed (deploy/build.sh).
# Usage: sudo bench/network.sh [RUNS]
#   (needs docker-registry, containerd, containernetworking-plugins, nftables: deploy/deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# The binaries as installed (deploy/build.sh): daemon-profile crustd, static shim and runtime.
deploy/build.sh "$CARGO_TARGET_DIR/bench-bin"
cargo build --release -p crust-e2e --bin bench_pods
CRUSTD="$CARGO_TARGET_DIR/bench-bin/crustd" "$CARGO_TARGET_DIR/release/bench_pods" --network "${1:-20}"
