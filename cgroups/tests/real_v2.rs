//! Real cgroup2 tests (needs root): on this hybrid machine the cgroup2 mount
//! (/sys/fs/cgroup/unified) has no controllers, so these cover what works there —
//! membership, freeze/thaw via cgroup.freeze, cpu.stat stats, and the eBPF device filter
//! (loaded, attached, replaced on update, and actually denying an open). On a pure v2 host
//! they run against /sys/fs/cgroup itself.
//!
//! The crate is pointed at a test-made parent directory through a fake root whose
//! `sys/fs/cgroup` is a symlink to it, so enabling controllers never touches the real root.

mod common;

use common::*;
use crust_cgroups::Cgroup;
use std::path::PathBuf;

/// Field order matters: the guard (which deletes through the fake root) drops first.
struct V2 {
    g: Guard,
    _root: tempfile::TempDir,
}

fn v2_cgroup(tag: &str) -> Option<V2> {
    if let Some(r) = skip_reason() {
        eprintln!("skipping: {r}");
        return None;
    }
    let probe = Cgroup::new(Some("/crust-probe"), "x").expect("resolve");
    let Some(mount) = probe
        .hierarchies()
        .into_iter()
        .find(|h| h.controllers.is_empty())
        .map(|h| h.mount_point)
    else {
        eprintln!("skipping: host has no cgroup2 mount");
        return None;
    };
    let parent = mount.join(unique(tag).trim_start_matches('/'));
    std::fs::create_dir(&parent).expect("mkdir test parent in cgroup2");
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("proc/self")).expect("mkdir proc");
    std::fs::create_dir_all(root.path().join("sys/fs")).expect("mkdir sys");
    std::fs::write(
        root.path().join("proc/self/mountinfo"),
        "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    )
    .expect("write mountinfo");
    std::fs::write(root.path().join("proc/self/cgroup"), "0::/\n").expect("write cgroup");
    std::os::unix::fs::symlink(&parent, root.path().join("sys/fs/cgroup")).expect("symlink");
    let cg = Cgroup::with_root(root.path(), Some("/c"), "c").expect("resolve");
    assert!(cg.is_v2());
    let mut g = Guard::new(cg);
    g.remove_after(parent);
    Some(V2 { g, _root: root })
}

fn leaf(g: &Guard) -> PathBuf {
    g.cg.hierarchies()[0].dir.clone()
}

#[test]
fn v2_membership_freeze_stats_delete() {
    let Some(mut t) = v2_cgroup("v2life") else {
        return;
    };
    let g = &mut t.g;
    g.cg.create().unwrap();
    let mut child = spawn_waiting("exec sleep 60");
    let pid = child.id() as i32;
    g.track(pid);
    g.cg.add_process(pid).unwrap();
    release(&mut child);
    assert_eq!(g.cg.pids().unwrap(), [pid]);
    let dir = leaf(g).canonicalize().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        own.lines()
            .any(|l| l.starts_with("0::") && l.ends_with(&format!("/{rel}"))),
        "{own}"
    );

    if leaf(g).join("cgroup.freeze").exists() {
        g.cg.freeze().unwrap();
        assert!(g.cg.is_frozen().unwrap());
        g.cg.thaw().unwrap();
        assert!(!g.cg.is_frozen().unwrap());
    } else {
        eprintln!("no cgroup.freeze on this kernel: freeze not tested");
    }
    let s = g.cg.stats().unwrap();
    let _ = s.cpu.usage.total; // cpu.stat exists even without the cpu controller
    assert_eq!(g.cg.oom_kill_count().unwrap(), 0);

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    g.cg.delete().unwrap();
    assert!(!leaf(g).exists());
}

#[test]
fn v2_bpf_device_filter_denies_and_is_replaced() {
    let Some(mut t) = v2_cgroup("v2dev") else {
        return;
    };
    let g = &mut t.g;
    g.cg.create().unwrap();
    // A subshell: a failed redirection of a special builtin exits a POSIX shell.
    let probe = "(: > /dev/null) && echo OPENED || echo DENIED";

    g.cg.apply(&res(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#))
        .unwrap();
    let (out, err) = run_in(g, probe);
    assert_eq!(out.trim(), "DENIED", "{err}");
    assert!(err.contains("not permitted"), "{err}");

    // Whitelist: /dev/null allowed, /dev/full not. Replaces the deny-all program (with
    // BPF_F_ALLOW_MULTI every attached program must allow, so a leftover would deny).
    g.cg.apply(&res(r#"{"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]}"#))
        .unwrap();
    let (out, err) = run_in(g, probe);
    assert_eq!(out.trim(), "OPENED", "{err}");
    let (out, _) = run_in(g, "(: > /dev/full) && echo OPENED || echo DENIED");
    assert_eq!(out.trim(), "DENIED");
    // Read-only access to /dev/null: writing is denied, reading allowed.
    g.cg.apply(&res(r#"{"devices": [{"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}]}"#))
        .unwrap();
    let (out, _) = run_in(
        g,
        "(: < /dev/null) && echo R; (: > /dev/null) && echo W || echo NOW",
    );
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["R", "NOW"]);

    // runc's default list (11 rules) loads too; /dev/kmsg (1:11) is not in it.
    let mut r = res(r#"{"devices": [{"allow": false, "access": "rwm"}]}"#);
    let mut devs = r.devices().clone().unwrap();
    devs.extend(crust_cgroups::default_allowed_devices());
    r.set_devices(Some(devs));
    g.cg.apply(&r).unwrap();
    let (out, _) = run_in(
        g,
        "(: > /dev/full) && echo FULL; (: < /dev/kmsg) && echo KMSG || echo NOKMSG",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["FULL", "NOKMSG"]
    );

    g.cg.apply(&res(r#"{"devices": [{"allow": true, "access": "rwm"}]}"#))
        .unwrap();
    let (out, _) = run_in(g, "(: > /dev/full) && echo OPENED || echo DENIED");
    assert_eq!(out.trim(), "OPENED");
}
