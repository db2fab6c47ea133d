#!/usr/bin/env bash
# Times crust-runc (as built by runc/release.sh) side by side with Debian's runc and crun, with hyperfine:
#   run of /bin/true, create+start+kill+delete as separate calls, exec into a running
#   container, the same two with a seccomp profile (an allow-list of every x86_64 syscall,
#   as large as Docker's default: compiling and loading it is part of create and exec),
#   and peak RSS (max RSS of the runtime and its children, /usr/bin/time %M).
# Prints the means and the crust-runc/runc and crust-runc/crun ratios.
#
# crun does not start on this hybrid-cgroup host while /sys/fs/cgroup/unified is mounted,
# so the whole benchmark re-executes itself in a private mount namespace where that cgroup2
# mount is detached; all three runtimes run in that same environment.
# Usage: sudo [ROUNDS=5] bench/runc.sh [runs per operation (default 50)]   (CRUST_RUNC=/path/to/crust-runc skips the build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-50}

if [ -z "${CRUST_BENCH_INNER:-}" ]; then
  if [ -z "${CRUST_RUNC:-}" ]; then   # CRUST_RUNC=path skips the build
    CRUST_RUNC=$(runc/release.sh)
    export CRUST_RUNC
  fi
  export CRUST_BENCH_INNER=1
  exec unshare -m --propagation private "$0" "$@"
fi

if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
for b in hyperfine runc crun jq; do
  command -v "$b" >/dev/null || { echo "bench: $b missing (deploy/deps.sh installs it)"; exit 1; }
done

W=$(mktemp -d /tmp/crust-bench.XXXXXX)
cleanup() {
  for rt in crust runc crun; do
    for id in bench-exec bench-run bench-life bench-rss bench-sexec bench-slife; do
      "$(bin "$rt")" --root "$W/root-$rt" delete --force "$id-$rt" >/dev/null 2>&1 || true
    done
  done
  rm -rf "$W"
}
bin() { case $1 in crust) echo "$CRUST_RUNC" ;; runc) command -v runc ;; crun) command -v crun ;; esac; }
trap cleanup EXIT

# busybox-static bundle with runc's default spec (mounts, masked paths, namespaces).
mkdir -p "$W/bundle/rootfs/bin"
cp /bin/busybox "$W/bundle/rootfs/bin/"
for a in sh true sleep; do ln -s busybox "$W/bundle/rootfs/bin/$a"; done
(cd "$W/bundle" && runc spec)
jq '.process.terminal=false | .process.args=["/bin/true"]' "$W/bundle/config.json" > "$W/true.json"
mkdir -p "$W/sleepbundle" "$W/seccompbundle"
jq --arg r "$W/bundle/rootfs" '.process.terminal=false | .process.args=["/bin/sleep","1000"] | .root.path=$r' \
  "$W/bundle/config.json" > "$W/sleepbundle/config.json"
# Every syscall name of the x86_64 ABI (linux-libc-dev), allowed; everything else EPERM.
grep -oP '^#define __NR_\K\w+' /usr/include/x86_64-linux-gnu/asm/unistd_64.h \
  | jq -R . | jq -s '{defaultAction: "SCMP_ACT_ERRNO", architectures: ["SCMP_ARCH_X86_64"],
      syscalls: [{names: ., action: "SCMP_ACT_ALLOW"}]}' > "$W/seccomp.json"
jq --slurpfile s "$W/seccomp.json" '.linux.seccomp = $s[0]' "$W/sleepbundle/config.json" \
  > "$W/seccompbundle/config.json"
cp "$W/true.json" "$W/bundle/config.json"

# The host is shared and its load drifts, so each operation is measured in ROUNDS rounds,
# every round timing the three runtimes back to back; the figure is the median of the
# per-round hyperfine means.
ROUNDS=${ROUNDS:-5}
PER=$(( (RUNS + ROUNDS - 1) / ROUNDS ))
declare -A MEAN ROUNDMEANS
hf() { # command -> mean ms
  hyperfine -N --runs "$PER" --warmup 2 --export-json "$W/h.json" "$1" >/dev/null 2>&1 \
    || hyperfine --runs "$PER" --warmup 2 --export-json "$W/h.json" "$1" >/dev/null
  jq '.results[0].mean * 1000' "$W/h.json"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for rt in crust runc crun; do
  "$(bin "$rt")" --root "$W/root-$rt" run --detach --bundle "$W/sleepbundle" bench-exec-$rt >/dev/null
  "$(bin "$rt")" --root "$W/root-$rt" run --detach --bundle "$W/seccompbundle" bench-sexec-$rt >/dev/null
done
for round in $(seq "$ROUNDS"); do
  for rt in crust runc crun; do
    B=$(bin "$rt"); R="$W/root-$rt"
    ROUNDMEANS[run/$rt]+=" $(hf "$B --root $R run --bundle $W/bundle bench-run-$rt")"
    ROUNDMEANS[life/$rt]+=" $(hf "sh -c '$B --root $R create --bundle $W/sleepbundle bench-life-$rt && $B --root $R start bench-life-$rt && $B --root $R kill bench-life-$rt KILL && $B --root $R delete --force bench-life-$rt'")"
    ROUNDMEANS[exec/$rt]+=" $(hf "$B --root $R exec bench-exec-$rt /bin/true")"
    ROUNDMEANS[slife/$rt]+=" $(hf "sh -c '$B --root $R create --bundle $W/seccompbundle bench-slife-$rt && $B --root $R start bench-slife-$rt && $B --root $R kill bench-slife-$rt KILL && $B --root $R delete --force bench-slife-$rt'")"
    ROUNDMEANS[sexec/$rt]+=" $(hf "$B --root $R exec bench-sexec-$rt /bin/true")"
  done
  echo "bench: round $round/$ROUNDS done" >&2
done
for rt in crust runc crun; do
  B=$(bin "$rt"); R="$W/root-$rt"
  "$B" --root "$R" delete --force "bench-exec-$rt"
  "$B" --root "$R" delete --force "bench-sexec-$rt"
  for op in run life exec slife sexec; do MEAN[$op/$rt]=$(echo "${ROUNDMEANS[$op/$rt]}" | median); done
  rss=0
  for _ in 1 2 3 4 5; do
    r=$( { /usr/bin/time -f '%M' "$B" --root "$R" run --bundle "$W/bundle" "bench-rss-$rt" >/dev/null; } 2>&1 | tail -1)
    [ "$r" -gt "$rss" ] && rss=$r
  done
  MEAN["rss/$rt"]=$(awk -v r="$rss" 'BEGIN{print r/1024}')
done

printf '\n%-34s %10s %10s %10s %12s %12s\n' operation crust-runc runc crun "crust/runc" "crust/crun"
for op in run life exec slife sexec rss; do
  case $op in
    run) label="run /bin/true (ms)" ;;
    life) label="create+start+kill+delete (ms)" ;;
    exec) label="exec /bin/true (ms)" ;;
    slife) label="create..delete, seccomp (ms)" ;;
    sexec) label="exec, with seccomp (ms)" ;;
    rss) label="peak RSS (MB)" ;;
  esac
  c=${MEAN[$op/crust]}; r=${MEAN[$op/runc]}; n=${MEAN[$op/crun]}
  printf '%-34s %10.2f %10.2f %10.2f %12.2f %12.2f\n' "$label" "$c" "$r" "$n" \
    "$(awk -v a="$c" -v b="$r" 'BEGIN{print a/b}')" "$(awk -v a="$c" -v b="$n" 'BEGIN{print a/b}')"
done
