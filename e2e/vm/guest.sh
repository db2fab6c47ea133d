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
if [ -f /mnt/out/script ]; then # CRUST_VM_SCRIPT (run.sh)
  sh /mnt/out/script
  exit $?
fi

# One line per run: "TARGET[::NAME-FILTER] [DRIVER...]": the test program TARGET (from the
# host's manifest /mnt/out/tests), once per crustd cgroup driver listed (the e2e tests read
# CRUST_E2E_CGROUP_DRIVER), or once without one. A filter from the host runs with every
# driver of CRUST_VM_DRIVERS. The default suite is bounded for TCG (about 9 minutes at a
# load of 10 on 2 cores): crust-runc's systemd driver over one scope's whole life
# (runc/tests/systemd.rs), crustd refusing a driver/root mismatch, cgroup v2 through crustd
# with each driver (vm_cgroup_v2: systemd units, OOM, resources, stats), containerd with
# SystemdCgroup running a pod on crust-runc (vm_containerd), and, with the systemd driver
# (the host runs them with cgroupfs), the e2e pod lifecycle and restart recovery, and
# checkpoint/restore through the CRI (vm_checkpoint, ~75 s: CRIU cannot run on a host
# kernel >= 6.13 with Debian's criu 3.17).
if [ -n "$CRUST_VM_FILTER" ]; then
  suite="$CRUST_VM_FILTER $CRUST_VM_DRIVERS"
else
  suite="systemd::scope_in_slice_with_limits_update_pause_exec_delete
deploy_config::unsupported_cgroup_driver_is_refused_at_start
vm_cgroup_v2 $CRUST_VM_DRIVERS
vm_containerd
runtime_lifecycle systemd
runtime_pods::events_stream_and_restart_recovery systemd
vm_checkpoint systemd"
fi
: >/mnt/out/passed
: >/mnt/out/failed
run_one() { # run_one DRIVER TARGET NAME
  driver=$1 target=$2 name=$3
  label="$target${name:+::$name}${driver:+ ($driver)}"
  exe=$(awk -v t="$target" '$1 == t { print $2; exit }' /mnt/out/tests)
  if [ -z "$exe" ]; then
    echo "guest: no test program named $target"
    echo "$label" >>/mnt/out/failed
    return
  fi
  t0=$(date +%s)
  echo "guest: ==== $label"
  # One run per test, so each test's time is printed.
  tests=$("$exe" --list --format terse ${name:+"$name"} </dev/null 2>/dev/null | sed -n 's/: test$//p')
  rc=0
  for t in $tests; do
    t1=$(date +%s)
    if [ -n "$driver" ]; then
      CRUST_E2E_CGROUP_DRIVER=$driver "$exe" --test-threads=1 --color never --exact "$t" </dev/null 2>&1
    else
      "$exe" --test-threads=1 --color never --exact "$t" </dev/null 2>&1
    fi
    r=$?
    echo "guest: == $target::$t${driver:+ ($driver)}: exit $r in $(($(date +%s) - t1)) s"
    [ $r = 0 ] || rc=$r
  done
  [ -n "$tests" ] || { echo "guest: no test matches $label"; rc=1; }
  echo "guest: ==== $label: exit $rc in $(($(date +%s) - t0)) s"
  if [ $rc = 0 ]; then echo "$label" >>/mnt/out/passed; else echo "$label" >>/mnt/out/failed; fi
}
echo "$suite" | while read -r spec drivers; do
  [ -n "$spec" ] || continue
  target=${spec%%::*}
  name=""
  case $spec in *::*) name=${spec#*::} ;; esac
  if [ -z "$drivers" ]; then
    run_one "" "$target" "$name"
  else
    for d in $drivers; do run_one "$d" "$target" "$name"; done
  fi
done
echo "guest: passed: $(tr '\n' ';' </mnt/out/passed)"
if [ -s /mnt/out/failed ]; then
  echo "guest: FAILED: $(tr '\n' ';' </mnt/out/failed)"
  exit 1
fi
if [ ! -s /mnt/out/passed ]; then
  echo "guest: nothing ran"
  exit 1
fi
exit 0
