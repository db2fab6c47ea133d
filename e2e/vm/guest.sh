#!/bin/sh
# Runs inside the qemu guest (started by crust-vm-run from the image; see e2e/vm/run.sh) with
# the repository mounted read-only at its host path and /mnt/out shared with the host.
# Checks that the guest is what the tests need (systemd PID 1, cgroup v2 only), then runs
# the selected test programs once per cgroup driver. Exit code: 0 when all passed.
set -u
. /mnt/out/env
export TMPDIR=/var/tmp
echo "guest: up $(cut -d" " -f1 /proc/uptime) s: kernel $(uname -r), PID 1 $(cat /proc/1/comm), $(nproc) cpus, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB, accel $CRUST_VM_ACCEL"
fail=0
check() { # check DESCRIPTION CMD...
  what=$1
  shift
  if "$@" >/dev/null 2>&1; then echo "guest: ok: $what"; else echo "guest: FAILED: $what"; fail=1; fi
}
check "systemd is PID 1" test "$(cat /proc/1/comm)" = systemd
check "cgroup2 is the only cgroup mount" sh -c \
  '[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && ! grep -q " cgroup " /proc/self/mounts'
check "system bus up" busctl --system status
check "memory, cpu, io, pids, cpuset controllers" sh -c \
  'for c in memory cpu io pids cpuset; do grep -qw $c /sys/fs/cgroup/cgroup.controllers || exit 1; done'
[ $fail = 0 ] || exit 1
modprobe overlay

# "TARGET NAME-FILTER" per line.
if [ -n "$CRUST_VM_FILTER" ]; then
  suite=$(echo "$CRUST_VM_FILTER" | sed 's/::/ /')
else
  suite="runtime_lifecycle
runtime_pods
runtime_sandbox"
fi
pass=0
failed=""
for driver in $CRUST_VM_DRIVERS; do
  echo "$suite" | while read -r target name; do
    [ -n "$target" ] || continue
    exe=$(awk -v t="$target" '$1 == t { print $2; exit }' /mnt/out/tests)
    if [ -z "$exe" ]; then
      echo "guest: no test program named $target"
      echo "$driver/$target" >>/mnt/out/failed
      continue
    fi
    t0=$(date +%s)
    echo "guest: ==== $driver: $target ${name:-(all)}"
    CRUST_E2E_CGROUP_DRIVER=$driver "$exe" --test-threads=1 --color never ${name:+"$name"} 2>&1
    rc=$?
    echo "guest: ==== $driver: $target: exit $rc in $(($(date +%s) - t0)) s"
    if [ $rc = 0 ]; then echo "$driver/$target" >>/mnt/out/passed; else echo "$driver/$target" >>/mnt/out/failed; fi
  done
done
echo "guest: passed: $(cat /mnt/out/passed 2>/dev/null | tr '\n' ' ')"
if [ -s /mnt/out/failed ]; then
  echo "guest: failed: $(tr '\n' ' ' </mnt/out/failed)"
  exit 1
fi
exit 0
