#!/usr/bin/env bash
# Builds crust's four binaries as they are installed and copies them into OUTDIR:
#   crustd, crustctl   `cargo build --profile daemon -p crust-cri -p crust-ctl` (size-optimised; see Cargo.toml)
#   crust-shim         static, size-optimised (bench/containerd-crust.sh's build_shim)
#   crust-runc         static non-PIE `runtime` profile (runc/release.sh)
# Reuses those scripts so the demo, the installer and the benchmarks run the same builds.
# Cargo output goes to stderr, so `-q` builds are silent unless something fails.
# Usage: deploy/build.sh OUTDIR   (honours CARGO_TARGET_DIR; needs deploy/deps.sh's build set)
set -euo pipefail
out=${1:?usage: deploy/build.sh OUTDIR}
cd "$(dirname "$0")/.."
repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$out"

# Progress on stderr: which step, which binary, how long it took (a cold build takes several
# CPU-minutes per step; cargo itself is quiet unless something fails).
t_all=$SECONDS
step() { # N WHAT: announces a step; done_step reports its time
  t_step=$SECONDS
  echo "build: [$1/3] $2 ..." >&2
}
done_step() { echo "build:       done in $((SECONDS - t_step)) s" >&2; }
step 1 "crust-runc (static, profile runtime; runc/release.sh)"
runc=$(runc/release.sh)
done_step
step 2 "crust-shim (static, profile shim)"
# shellcheck source=../bench/containerd-crust.sh
shim=$(source bench/containerd-crust.sh --lib && build_shim)
done_step
step 3 "crustd and crustctl (profile daemon)"
cargo build -q --profile daemon --locked -p crust-cri --bin crustd -p crust-ctl --bin crustctl >&2
done_step

for b in "$target/daemon/crustd" "$target/daemon/crustctl" "$shim" "$runc"; do
  [ -x "$b" ] || { echo "build: $b was not built" >&2; exit 1; }
done
# install(1) replaces the file (new inode), so a running copy is never overwritten in place.
install -m 0755 "$target/daemon/crustd" "$target/daemon/crustctl" "$out/"
install -m 0755 "$shim" "$out/crust-shim"
install -m 0755 "$runc" "$out/crust-runc"
echo "build: crustd crustctl crust-shim crust-runc in $out ($((SECONDS - t_all)) s in all)" >&2
