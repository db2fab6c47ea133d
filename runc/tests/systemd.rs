//! `crust-runc --systemd-cgroup` on a host whose init is systemd and whose cgroups are v2
//! only: the Debian guest of the VM suite (`e2e/vm/run.sh systemd`). Elsewhere each test
//! prints why it is skipped. Results are checked against systemd's own view of the scope
//! (`systemctl show`) as well as the cgroup files.

#[path = "runtime/common.rs"]
#[allow(dead_code)]
mod common;

use std::process::Command;

use common::*;
use serde_json::json;

/// Skips the test unless systemd is the init system on a cgroup v2-only host, as root.
macro_rules! require_systemd {
    () => {
        require_root!();
        if !std::path::Path::new("/run/systemd/system").is_dir()
            || !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        {
            eprintln!("skipped: needs systemd as init and cgroup v2 only (run e2e/vm/run.sh)");
            return;
        }
    };
}

/// A container using the systemd driver with `cgroupsPath`.
fn ctr(name: &str, args: &[&str], cgroups_path: Option<String>) -> Ctr {
    let mut c = Ctr::new(name, args);
    c.flags.push("--systemd-cgroup".into());
    match cgroups_path {
        Some(p) => c.config["linux"]["cgroupsPath"] = json!(p),
        None => {
            c.config["linux"]
                .as_object_mut()
                .expect("linux")
                .remove("cgroupsPath");
        }
    }
    c
}

/// `systemctl show --value -p PROP unit`.
fn show(unit: &str, prop: &str) -> String {
    let o = Command::new("systemctl")
        .args(["show", "--value", "-p", prop, unit])
        .output()
        .expect("run systemctl");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn scope_in_slice_with_limits_update_pause_exec_delete() {
    require_systemd!();
    let mut c = ctr("sd", &["sleep", "1000"], None);
    let unit = format!("crust-{}.scope", c.id);
    c.config["linux"]["cgroupsPath"] = json!(format!("cv-runc.slice:crust:{}", c.id));
    c.config["linux"]["resources"] = json!({
        "memory": {"limit": 67108864},
        "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000}
    });
    c.run_detached();
    let dir = format!("/sys/fs/cgroup/cv.slice/cv-runc.slice/{unit}");
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "Slice"), "cv-runc.slice");
    assert_eq!(show(&unit, "Delegate"), "yes");
    assert_eq!(
        show(&unit, "ControlGroup"),
        format!("/cv.slice/cv-runc.slice/{unit}")
    );
    // systemd's properties and the files agree.
    assert_eq!(show(&unit, "MemoryMax"), "67108864");
    assert_eq!(read(&format!("{dir}/memory.max")), "67108864");
    assert_eq!(show(&unit, "TasksMax"), "50");
    assert_eq!(read(&format!("{dir}/pids.max")), "50");
    assert_eq!(show(&unit, "CPUQuotaPerSecUSec"), "500ms");
    assert_eq!(read(&format!("{dir}/cpu.max")), "50000 100000");
    // runc's shares → weight conversion: 512 → 20.
    assert_eq!(read(&format!("{dir}/cpu.weight")), "20");
    let pid = c.state()["pid"].as_i64().expect("pid");
    let procs = read(&format!("{dir}/cgroup.procs"));
    assert!(
        procs.lines().any(|l| l == pid.to_string()),
        "init {pid} not in {dir}: {procs}"
    );

    c.ok(&["update", "--memory", "128m", "--pids-limit", "60", &c.id]);
    assert_eq!(show(&unit, "MemoryMax"), "134217728");
    assert_eq!(read(&format!("{dir}/memory.max")), "134217728");
    assert_eq!(show(&unit, "TasksMax"), "60");
    assert_eq!(read(&format!("{dir}/pids.max")), "60");

    // An exec'd process joins the scope: inside the container's cgroup namespace it is at
    // the root.
    let o = c.exec(&["cat", "/proc/self/cgroup"]);
    assert_eq!(stdout(&o).trim(), "0::/", "{}", text(&o));

    c.ok(&["pause", &c.id]);
    assert_eq!(c.state()["status"], "paused");
    assert_eq!(read(&format!("{dir}/cgroup.freeze")), "1");
    c.ok(&["resume", &c.id]);
    assert_eq!(read(&format!("{dir}/cgroup.freeze")), "0");

    c.ok(&["kill", &c.id, "KILL"]);
    c.wait_status("stopped");
    c.ok(&["delete", &c.id]);
    assert_eq!(show(&unit, "LoadState"), "not-found");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
}

#[test]
fn default_slice_and_unit_name() {
    require_systemd!();
    let c = ctr("sddef", &["sleep", "1000"], None);
    c.run_detached();
    let unit = format!("crust-{}.scope", c.id);
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(show(&unit, "ControlGroup"), format!("/system.slice/{unit}"));
    c.ok(&["delete", "--force", &c.id]);
    assert_eq!(show(&unit, "LoadState"), "not-found");
}

#[test]
fn memory_limit_oom_kills_in_scope() {
    require_systemd!();
    let mut c = ctr(
        "sdoom",
        &["sh", "-c", "x=$(yes | head -c 67108864); echo survived"],
        None,
    );
    c.config["linux"]["cgroupsPath"] = json!(format!("cv-runc.slice:crust:{}", c.id));
    c.config["linux"]["resources"] = json!({"memory": {"limit": 16777216, "swap": 16777216}});
    let o = c.run();
    assert_eq!(o.status.code(), Some(137), "{}", text(&o));
    assert!(!stdout(&o).contains("survived"), "{}", text(&o));
}

#[test]
fn bad_paths_and_a_taken_unit_are_refused_and_leave_nothing() {
    require_systemd!();
    for bad in [
        "/not/systemd",
        "cv-runc.slice:crust",
        "bad:crust:x",
        "a.slice:p:x.slice",
    ] {
        let c = ctr("sdbad", &["true"], Some(bad.to_string()));
        let o = c.create();
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("cgroupsPath"), "{bad}: {err}");
        assert!(!c.state_dir_exists(), "{bad}: state left behind");
    }
    // A second container naming a live container's unit is refused; the first one runs on.
    let a = ctr("sdtaken", &["sleep", "1000"], None);
    let path = format!("cv-runc.slice:crust:{}", a.id);
    let mut a = a;
    a.config["linux"]["cgroupsPath"] = json!(path.clone());
    a.run_detached();
    let b = ctr("sdtaken2", &["sleep", "1000"], Some(path));
    let o = b.create();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!b.state_dir_exists());
    let unit = format!("crust-{}.scope", a.id);
    assert_eq!(show(&unit, "ActiveState"), "active");
    assert_eq!(a.state()["status"], "running");
}
