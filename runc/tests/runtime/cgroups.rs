//! cgroup-backed operations: pause/resume, kill --all, ps, memory OOM kill, pids limit,
//! update, events --stats.

use serde_json::json;

use super::common::*;
use crate::require_root;

#[test]
fn pause_and_resume() {
    require_root!();
    let c = Ctr::new("pause", &["sleep", "1000"]);
    c.run_detached();
    c.ok(&["pause", &c.id]);
    assert_eq!(c.state()["status"], "paused");
    let o = c.exec(&["true"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "exec into a paused container must fail"
    );
    c.ok(&["resume", &c.id]);
    assert_eq!(c.state()["status"], "running");
    assert_eq!(c.runc(&["resume", &c.id]).status.code(), Some(1));
}

#[test]
fn kill_all_and_ps() {
    require_root!();
    let c = Ctr::new("killall", &["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    c.run_detached();
    let mut pids: Vec<i32> = vec![];
    for _ in 0..200 {
        pids = serde_json::from_str(&c.ok(&["ps", "--format", "json", &c.id])).expect("json");
        if pids.len() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pids.len(), 3, "{pids:?}");
    let table = c.ok(&["ps", &c.id]);
    let sleeps = table.lines().filter(|l| l.ends_with(" sleep 1000")).count();
    assert!(table.starts_with("UID") && sleeps == 2, "{table}");
    c.ok(&["kill", "--all", &c.id, "KILL"]);
    c.wait_status("stopped");
    for p in pids {
        assert!(gone(p), "pid {p} survived kill --all");
    }
}

#[test]
fn memory_limit_oom_kills() {
    require_root!();
    // The shell keeps ~64 MiB in a variable; the limit is 16 MiB without extra swap.
    let mut c = Ctr::new(
        "oom",
        &["sh", "-c", "x=$(yes | head -c 67108864); echo survived"],
    );
    c.config["linux"]["resources"] = json!({"memory": {"limit": 16777216, "swap": 16777216}});
    let o = c.run();
    // The shell (pid 1 of the container) is OOM-killed: 128 + SIGKILL.
    assert_eq!(o.status.code(), Some(137), "{}", text(&o));
    assert!(!stdout(&o).contains("survived"), "{}", text(&o));
}

#[test]
fn pids_limit_stops_forks() {
    require_root!();
    let mut c = Ctr::new("pids", &["sleep", "1000"]);
    c.config["linux"]["resources"] = json!({"pids": {"limit": 5}});
    c.run_detached();
    // The exec'd shell counts too: 1 init + 1 sh + at most 3 sleeps.
    let o = c.exec(&[
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 100 & done; wait",
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("fork"),
        "{}",
        text(&o)
    );
    let pids: Vec<i32> =
        serde_json::from_str(&c.ok(&["ps", "--format", "json", &c.id])).expect("json");
    assert!(pids.len() <= 5, "{pids:?}");
}

#[test]
fn update_and_events_stats() {
    require_root!();
    let c = Ctr::new("update", &["sleep", "1000"]);
    c.run_detached();
    c.ok(&["update", "--pids-limit", "42", "--memory", "64m", &c.id]);
    let pids_max = c.cgroup_file("pids", "pids.max", "pids.max");
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    };
    assert_eq!(read(&pids_max), "42");
    let mem = c.cgroup_file("memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(read(&mem), (64u64 << 20).to_string());
    let r = c.tmp.path().join("r.json");
    std::fs::write(&r, json!({"pids": {"limit": 77}}).to_string()).expect("write");
    c.ok(&["update", "--resources", r.to_str().expect("u"), &c.id]);
    assert_eq!(read(&pids_max), "77");
    let ev: serde_json::Value =
        serde_json::from_str(&c.ok(&["events", "--stats", &c.id])).expect("json");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], c.id.as_str());
    assert!(ev["data"].is_object(), "{ev}");
    // The numbers are the cgroup's: one process, the limit just set.
    assert_eq!(ev["data"]["pids"]["current"], 1, "{ev}");
    assert_eq!(ev["data"]["pids"]["limit"], 77, "{ev}");
}

#[test]
fn deny_all_devices_keeps_default_devices_usable() {
    require_root!();
    let mut c = Ctr::new(
        "devices",
        &["sh", "-c", "echo ok > /dev/null && echo null-ok; mknod /tmp/sda b 8 0; head -c1 /tmp/sda; echo rc=$?"],
    );
    c.config["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    assert!(out.contains("null-ok"), "{}", text(&o));
    assert!(
        out.contains("rc=1"),
        "a disk device must stay denied: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not permitted"),
        "{}",
        text(&o)
    );
}

/// Without a cgroup namespace the init is moved into its cgroup while it sets up its rootfs
/// (`late_cgroup`); the cgroup mount must still show the container's own cgroup, and the
/// created (not yet started) init must already be in it.
#[test]
fn init_joins_its_cgroup_before_the_cgroup_mount_without_cgroupns() {
    require_root!();
    let v2 = unified();
    let mut c = Ctr::new(
        "latecg",
        &[
            "sh",
            "-c",
            "(cat /sys/fs/cgroup/pids/pids.max; grep ':pids:' /proc/self/cgroup) > /out 2>&1",
        ],
    );
    if v2 {
        // Without a cgroup namespace the cgroup2 mount shows the whole hierarchy (as
        // runc's): the container's own directory is below its root.
        let script = format!(
            "(cat /sys/fs/cgroup/crust-rt-{}/pids.max; grep '^0::' /proc/self/cgroup) > /out 2>&1",
            c.id
        );
        c.config["process"]["args"] = json!(["sh", "-c", script]);
    }
    c.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"},
        {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    c.config["linux"]["resources"] = json!({"pids": {"limit": 42}});
    c.config["mounts"].as_array_mut().expect("mounts").push(
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                     "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    );
    let o = c.create();
    assert!(o.status.success(), "{}", text(&o));
    let pid = c.state()["pid"].as_i64().expect("pid");
    let name = format!("crust-rt-{}", c.id);
    let hierarchies: &[&str] = if v2 {
        &[""]
    } else {
        &["pids", "memory", "cpu", "freezer"]
    };
    for h in hierarchies {
        let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/{h}/{name}/cgroup.procs"))
            .unwrap_or_default();
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "{h}: init {pid} not in {procs:?}"
        );
    }
    c.ok(&["start", &c.id]);
    c.wait_status("stopped");
    let log = std::fs::read_to_string(c.rootfs().join("out")).unwrap_or_default();
    let _ = c.runc(&["delete", "--force", &c.id]);
    assert!(log.starts_with("42\n"), "{log:?}");
    let own = if v2 {
        format!("0::/{name}")
    } else {
        format!(":pids:/{name}")
    };
    assert!(log.trim_end().ends_with(&own), "{log:?}");
}

/// An init that fails early while the parent still makes its cgroup (late join, no cgroup
/// namespace) is reported with its own reason, not as a failed cgroup move.
#[test]
fn early_init_failure_with_late_cgroup_join_names_the_reason() {
    require_root!();
    let mut c = Ctr::new("latefail", &["true"]);
    c.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "network"},
        {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]);
    c.config["mounts"].as_array_mut().expect("mounts").insert(
        0,
        json!({"destination": "/mnt", "type": "bind", "source": "/nonexistent-crust-src",
               "options": ["rbind"]}),
    );
    for _ in 0..5 {
        let o = c.create();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            err.contains("mounts[0]") && !err.contains("add init process to cgroup"),
            "{err}"
        );
        assert!(!c.cgroup_exists(), "cgroup left behind");
    }
}
