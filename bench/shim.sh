#!/usr/bin/env bash
# Shim memory benchmark: N pods (N = 1 and 10 by default) through crust-shim and, side
# by side, through Debian's containerd with containerd-shim-runc-v2. Prints RSS and PSS
# per shim (from /proc/<pid>/smaps_rollup, in kB) and the ratios. Root only.
#
#   bench/shim.sh [N...]
#
# crust side: shim_bench (shim/examples) starts one crust-shim per pod through the shim
# v2 `start` bootstrap, creates+starts a busybox `sleep` container writing a CRI log, and
# measures every shim. containerd side: a private containerd (own root/state/socket,
# restrict_oom_score_adj = true), a busybox OCI image imported with `ctr images import`,
# N `ctr run -d` containers, each shim found as the parent of its task's pid.
# Env: SHIM_RUNTIME (OCI runtime under crust-shim, default runc).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/containerd-crust.sh --lib
NS=("$@"); [[ ${#NS[@]} -gt 0 ]] || NS=(1 10)
RUNTIME="${SHIM_RUNTIME:-runc}"

shim="$(build_shim)"
(RUSTFLAGS= cargo build -q --release -p crust-shim --example shim_bench)
bench_bin="$TARGET/release/examples/shim_bench"
echo "crust-shim binary: $shim ($(stat -c %s "$shim") bytes), runtime: $RUNTIME"

declare -A CR_RSS CR_PSS RC_RSS RC_PSS
while read -r name n rss pss; do
    CR_RSS[$n]=$rss; CR_PSS[$n]=$pss
done < <("$bench_bin" "$shim" "$RUNTIME" "${NS[@]}")

dir="$(mktemp -d /tmp/crust-bench-ctd-XXXXXX)"
trap 'ctd_stop "$dir"' EXIT
ctd_start "$dir"
ctd_import_busybox "$dir"
for n in "${NS[@]}"; do
    for i in $(seq "$n"); do
        "${CTR[@]}" run -d "$IMAGE" "b$n-$i" sh -c 'echo started; exec sleep 1000' >/dev/null
    done
    sleep 1
    rss=0; pss=0
    for i in $(seq "$n"); do
        pid="$("${CTR[@]}" tasks ls | awk -v c="b$n-$i" '$1==c{print $2}')"
        shim_pid="$(awk '{print $4}' "/proc/$pid/stat")"
        r=$(awk '/^Rss:/{print $2}' "/proc/$shim_pid/smaps_rollup")
        p=$(awk '/^Pss:/{print $2}' "/proc/$shim_pid/smaps_rollup")
        rss=$((rss + r)); pss=$((pss + p))
    done
    RC_RSS[$n]=$((rss / n)); RC_PSS[$n]=$((pss / n))
    for i in $(seq "$n"); do "${CTR[@]}" tasks kill -s 9 "b$n-$i" >/dev/null 2>&1 || true; done
    sleep 0.5
    for i in $(seq "$n"); do
        "${CTR[@]}" tasks delete "b$n-$i" >/dev/null 2>&1 || true
        "${CTR[@]}" containers delete "b$n-$i" >/dev/null 2>&1 || true
    done
done

printf '\n%-6s %-26s %-26s %s\n' pods "crust-shim RSS / PSS (kB)" "runc-v2 RSS / PSS (kB)" "ratio RSS, PSS (runc-v2 / crust)"
for n in "${NS[@]}"; do
    printf '%-6s %-26s %-26s %s\n' "$n" "${CR_RSS[$n]} / ${CR_PSS[$n]}" "${RC_RSS[$n]} / ${RC_PSS[$n]}" \
        "$(awk -v a="${RC_RSS[$n]}" -v b="${CR_RSS[$n]}" -v c="${RC_PSS[$n]}" -v d="${CR_PSS[$n]}" \
            'BEGIN{printf "%.1fx, %.1fx", a/b, c/d}')"
done
