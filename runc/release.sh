#!/usr/bin/env bash
# Builds crust-runc as installed and benchmarked, and prints the binary's path:
# the `runtime` cargo profile (opt-level z, fat LTO, panic=abort, stripped), linked
# statically (glibc + libseccomp.a) and non-PIE. The runtime is exec'd several times per
# container, so this halves process start-up work and keeps peak RSS under crun's (no
# ld.so, no relocation of a large PIE image, no shared-library text). Trade-off: the
# binary image itself is not address-randomized (stack, heap and mmaps still are).
# Usage: runc/release.sh   (honours CARGO_TARGET_DIR; needs libseccomp-dev for libseccomp.a)
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
dir=${CARGO_TARGET_DIR:-$PWD/target}/static
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu) \
CARGO_TARGET_DIR=$dir \
  cargo build -q --profile runtime -p crust-runc --target "$target" >&2
echo "$dir/$target/runtime/crust-runc"
