#!/bin/sh
# Crash-consistency soak (issue 18): the suite of e2e/tests/crash_consistency.rs for many
# rounds. Each round kills crustd (or a shim) with SIGKILL during bursts of CRI calls on
# ten pods, restarts it and checks that every acknowledged pod and container is listed in
# the right state and that nothing is left for what is not listed.
#
#   e2e/crash/soak.sh [ROUNDS] [SEED]     (as root; defaults: 200 rounds, seed from the clock)
#
# Not in CI yet: it still finds a pod cgroup left behind now and then (see issue 18). A
# failure prints its seed: rerun with it to replay the same choices (timing still varies).
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-200}
SEED=${2:-$(date +%s%N)}
echo "crash soak: $ROUNDS rounds, seed $SEED"
cargo build -p crust-cri --bin crustd -p crust-shim --bin crust-shim -p crust-runc --bin crust-runc
CRUST_CRASH_ROUNDS=$ROUNDS CRUST_CRASH_SEED=$SEED \
  cargo test -p crust-e2e --test crash_consistency -- --ignored --test-threads 1 --nocapture
