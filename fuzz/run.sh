#!/usr/bin/env bash
# Builds crust's fuzz targets (cargo-fuzz, libFuzzer) and runs each for SECONDS (default
# 60): `fuzz/run.sh [SECONDS] [TARGET...]`, as root (the layer target creates device
# nodes and sets owners, as crustd does). CI's `fuzz` stage runs it with a short time.
#
# Toolchain: the machine's stable Rust (a CI machine has only the toolchain rustup put
# there; no nightly can be fetched). `-s none` (no sanitizer) makes cargo-fuzz pass only
# stable flags (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*, --cfg fuzzing):
# memory errors are caught by Rust's own checks (bounds, overflow and debug assertions).
#
# Inputs: seeds/<target> (checked in, written by `cargo run --example seeds`),
# regressions/<target> (every crash found, checked in), corpus/<target> (what libFuzzer
# adds, not checked in). A crash is written to artifacts/<target>/ and fails the run.
# The targets' scratch files go to a temp dir given as CRUST_FUZZ_SCRATCH (not TMPDIR:
# cargo would rebuild the crates whose build scripts watch it).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
scratch=$(mktemp -d /tmp/crust-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
t0=$SECONDS
cargo fuzz build -s none
echo "fuzz: build took $((SECONDS - t0)) s"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
case $(uname -m) in x86_64) ;; *) echo "fuzz/run.sh: only x86_64 is wired up" >&2; exit 1 ;; esac
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  dirs=("corpus/$t")
  for d in "seeds/$t" "regressions/$t"; do [ -d "$d" ] && dirs+=("$d"); done
  echo "==== fuzz $t for ${secs} s"
  # -timeout: one input taking 10 s is a hang (a FIFO read, a decompression bomb);
  # -rss_limit_mb: one taking 2 GB is the OOM of issue 18 item 2.
  rc=0
  # The binary cargo-fuzz built (`cargo fuzz run` would run cargo again for each target).
  CRUST_FUZZ_SCRATCH=$scratch "target/x86_64-unknown-linux-gnu/release/$t" "${dirs[@]}" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" >"$scratch/log" 2>&1 || rc=$?
  if [ $rc -eq 0 ]; then
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$scratch/log" | tail -n 25
  else
    cat "$scratch/log"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs} s each, no crash"
