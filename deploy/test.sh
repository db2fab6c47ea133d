#!/usr/bin/env bash
# Runs crust's whole test suite on a fresh Debian 12 machine, as root.
# This is the test command README.md gives, and .ci/run calls it unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/deps.sh
# The e2e and shim tests run the workspace's binaries (crustd, crustctl, crust-shim,
# crust-runc) from the target dir; `cargo test` alone rebuilds only the binaries of packages
# that have integration tests, so build them all first and never test a stale one.
cargo build --workspace --bins --locked
cargo test --workspace --locked --no-fail-fast
