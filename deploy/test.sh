#!/usr/bin/env bash
# Runs crust's whole test suite on a fresh Debian 12 machine, as root.
# This is the test command README.md gives, and .ci/run calls it unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/deps.sh
cargo test --workspace --locked --no-fail-fast
