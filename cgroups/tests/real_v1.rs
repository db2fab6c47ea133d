//! Real cgroup v1 tests (needs root and v1 controllers, as on the hybrid CI machine): limits
//! read back from the kernel, membership, stats, freeze/thaw, device rules enforced, an OOM
//! kill counted, delete. Each test uses its own uniquely named cgroup, removed in Drop.

mod common;

use common::*;
use crust_cgroups::Cgroup;
use std::path::PathBuf;

/// The v1 cgroup at `name`, or None (with the reason printed) when the host cannot run these.
fn v1_cgroup(name: &str) -> Option<Guard> {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return None;
    }
    let cg = Cgroup::new(Some(name), "x").expect("resolve");
    if cg.is_v2() {
        eprintln!("skipping: host has no cgroup v1 controllers");
        return None;
    }
    Some(Guard::new(cg))
}

fn dir(g: &Guard, controller: &str) -> PathBuf {
    g.cg.hierarchies()
        .into_iter()
        .find(|h| h.controllers.split(',').any(|c| c == controller))
        .unwrap_or_else(|| panic!("no {controller} hierarchy"))
        .dir
}

#[test]
fn v1_lifecycle_limits_stats_freeze_delete() {
    let name = unique("life");
    let Some(mut g) = v1_cgroup(&name) else {
        return;
    };
    g.cg.create().unwrap();
    g.cg.apply(&res(r#"{
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "memory": {"limit": 67108864, "swap": 67108864, "reservation": 33554432, "swappiness": 0},
        "pids": {"limit": 32},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 136, "access": "rwm"}]
    }"#))
        .unwrap();
    let mem = dir(&g, "memory");
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "67108864");
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "67108864");
    assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "33554432");
    let cpu = dir(&g, "cpu");
    assert_eq!(read(&cpu, "cpu.shares"), "512");
    assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read(&dir(&g, "cpuset"), "cpuset.cpus"), "0");
    assert_eq!(read(&dir(&g, "pids"), "pids.max"), "32");
    assert_eq!(
        read(&dir(&g, "devices"), "devices.list"),
        "c 1:3 rwm\nc 136:* rwm"
    );

    // Moved in before it runs, so its memory and CPU are charged here (v1 does not move
    // charges with a task).
    let mut child = spawn_waiting("exec sleep 60");
    let pid = child.id() as i32;
    g.track(pid);
    g.cg.add_process(pid).unwrap();
    release(&mut child);
    assert_eq!(g.cg.pids().unwrap(), [pid]);
    // Wait until the shell has exec'd sleep and blocked in it: then its exec ran (and was
    // charged) here, and having left the CPU its run time is accounted. (The old wait gave
    // up silently after 1 s; under load the shell had not run yet and the CPU and memory
    // read 0.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
        if comm.trim() == "sleep" && state == Some('S') {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child never slept in sleep: {comm:?} {stat:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.contains(&format!(":memory:{name}\n")), "{own}");
    assert!(
        own.contains(&format!("0::{name}\n")) || !own.contains("0::"),
        "{own}"
    );

    let s = g.cg.stats().unwrap();
    assert!(s.memory.usage.usage > 0, "{s:?}");
    assert!(s.cpu.usage.total > 0, "{s:?}");
    assert!(s.cpu.usage.total > 0, "{s:?}");
    assert_eq!(s.memory.usage.limit, 67108864);
    assert_eq!((s.pids.current, s.pids.limit), (1, 32));
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["memory"]["raw"]["rss"].is_u64(), "{json}");

    g.cg.freeze().unwrap();
    assert!(g.cg.is_frozen().unwrap());
    assert_eq!(read(&dir(&g, "freezer"), "freezer.state"), "FROZEN");
    g.cg.thaw().unwrap();
    assert!(!g.cg.is_frozen().unwrap());

    // Update: raise the memory limit above the current memsw (write order matters).
    g.cg.apply(&res(
        r#"{"memory": {"limit": 134217728, "swap": 268435456}}"#,
    ))
    .unwrap();
    assert_eq!(read(&mem, "memory.limit_in_bytes"), "134217728");
    assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "268435456");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    let dirs: Vec<PathBuf> = g.cg.hierarchies().into_iter().map(|h| h.dir).collect();
    assert!(dirs.iter().all(|d| d.is_dir()));
    g.cg.delete().unwrap();
    assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    g.cg.delete().unwrap();
}

#[test]
fn v1_device_rules_are_enforced() {
    let Some(mut g) = v1_cgroup(&unique("dev")) else {
        return;
    };
    g.cg.create().unwrap();
    // A subshell: a failed redirection of a special builtin exits a POSIX shell.
    let probe = "(: > /dev/null) && echo OPENED || echo DENIED";
    g.cg.apply(&res(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#))
        .unwrap();
    let (out, err) = run_in(&mut g, probe);
    assert_eq!(out.trim(), "DENIED", "{err}");
    assert!(err.contains("not permitted"), "{err}");
    g.cg.apply(&res(r#"{"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}"#))
        .unwrap();
    let (out, err) = run_in(&mut g, probe);
    assert_eq!(out.trim(), "OPENED", "{err}");
    let (out, _) = run_in(&mut g, "(: > /dev/full) && echo OPENED || echo DENIED");
    assert_eq!(out.trim(), "DENIED");
}

#[test]
fn v1_oom_kill_is_counted() {
    let Some(mut g) = v1_cgroup(&unique("oom")) else {
        return;
    };
    g.cg.create().unwrap();
    g.cg.apply(&res(r#"{"memory": {"limit": 8388608, "swap": 8388608}}"#))
        .unwrap();
    assert_eq!(g.cg.oom_kill_count().unwrap(), 0);
    let efd = g.cg.oom_event_fd().unwrap();
    let mut child = spawn_waiting("exec dd if=/dev/zero of=/dev/null bs=64M count=1");
    let pid = child.id() as i32;
    g.track(pid);
    g.cg.add_process(pid).unwrap();
    release(&mut child);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(g.cg.oom_kill_count().unwrap() >= 1);
    // The eventfd fired.
    let mut pfd = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&efd),
        nix::poll::PollFlags::POLLIN,
    )];
    let n = nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(2000u16)).unwrap();
    assert_eq!(n, 1, "no OOM event on the eventfd");
    let m = g.cg.stats().unwrap().memory;
    // Peak usage reached the limit (failcnt is not kept by every kernel).
    assert_eq!(m.usage.max, 8388608, "{m:?}");
}

#[test]
fn v1_bad_input_leaves_nothing_and_names_field() {
    let Some(g) = v1_cgroup(&unique("bad")) else {
        return;
    };
    g.cg.create().unwrap();
    let mem = dir(&g, "memory");
    let before = read(&mem, "memory.limit_in_bytes");
    let e =
        g.cg.apply(&res(r#"{"memory": {"limit": 1048576, "swappiness": 500}}"#))
            .unwrap_err();
    assert!(
        e.to_string().contains("linux.resources.memory.swappiness"),
        "{e}"
    );
    assert_eq!(read(&mem, "memory.limit_in_bytes"), before);
}

#[test]
fn v1_delete_thaws_a_frozen_cgroup_whose_tasks_were_killed() {
    let Some(mut g) = v1_cgroup(&unique("frozenkill")) else {
        return;
    };
    g.cg.create().unwrap();
    let mut child = spawn_waiting("exec sleep 60");
    let pid = child.id() as i32;
    g.track(pid);
    g.cg.add_process(pid).unwrap();
    release(&mut child);
    g.cg.freeze().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    let t = std::time::Instant::now();
    g.cg.delete().unwrap();
    eprintln!("delete of a frozen cgroup took {:?}", t.elapsed());
    assert!(g.cg.hierarchies().iter().all(|h| !h.dir.exists()));
    let _ = child.wait();
}

#[test]
fn v1_hot_path_timing() {
    let Some(g) = v1_cgroup(&unique("timing")) else {
        return;
    };
    let r = res(
        r#"{"cpu": {"shares": 512, "quota": 50000, "period": 100000},
        "memory": {"limit": 67108864}, "pids": {"limit": 100},
        "devices": [{"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#,
    );
    let t = std::time::Instant::now();
    let cg = Cgroup::new(Some(&unique("timing")), "x").unwrap();
    let resolved = t.elapsed();
    cg.create().unwrap();
    let created = t.elapsed();
    cg.apply(&r).unwrap();
    let applied = t.elapsed();
    assert!(
        Cgroup::new(Some("/"), "x").is_err(),
        "the hierarchy root is never a container cgroup"
    );
    let t2 = std::time::Instant::now();
    g.cg.delete().unwrap();
    eprintln!(
        "v1 hot path: new {resolved:?}, +create {:?}, +apply {:?}, delete {:?}",
        created - resolved,
        applied - created,
        t2.elapsed()
    );
}
