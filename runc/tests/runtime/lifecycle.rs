//! create/start/state/kill/delete and run.

use super::common::*;
use crate::require_root;

#[test]
fn create_start_kill_delete() {
    require_root!();
    let c = Ctr::new("life", &["sleep", "1000"]);
    let o = c.create();
    assert!(o.status.success(), "{}", text(&o));
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], c.id.as_str());
    let pid = st["pid"].as_i64().expect("pid");
    assert!(pid > 0);
    assert!(c.cgroup_exists());
    c.ok(&["start", &c.id]);
    assert_eq!(c.state()["status"], "running");
    let out = c.runc(&["start", &c.id]);
    assert!(!out.status.success(), "second start must fail");
    let out = c.runc(&["delete", &c.id]);
    assert!(
        !out.status.success(),
        "delete of a running container must fail"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not stopped"),
        "{}",
        text(&out)
    );
    c.ok(&["kill", &c.id, "KILL"]);
    c.wait_status("stopped");
    assert_eq!(c.state()["pid"], 0);
    let out = c.runc(&["kill", &c.id]);
    assert!(!out.status.success());
    c.ok(&["delete", &c.id]);
    assert!(!c.state_dir_exists());
    assert!(!c.cgroup_exists());
    let out = c.runc(&["state", &c.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn run_foreground_returns_exit_code() {
    require_root!();
    let c = Ctr::new("runexit", &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let o = c.run();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(stdout(&o), "out\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("err"));
    assert!(!c.state_dir_exists(), "run deletes the container");
    assert!(!c.cgroup_exists());
}

#[test]
fn run_detach_list_and_force_delete() {
    require_root!();
    let c = Ctr::new("detach", &["sleep", "1000"]);
    c.run_detached();
    assert_eq!(c.state()["status"], "running");
    let list: serde_json::Value =
        serde_json::from_str(&c.ok(&["list", "--format", "json"])).expect("json");
    assert_eq!(list[0]["id"], c.id.as_str());
    assert_eq!(c.ok(&["list", "-q"]).trim(), c.id);
    assert!(c.ok(&["list"]).starts_with("ID"));
    c.ok(&["delete", "--force", &c.id]);
    assert!(!c.state_dir_exists());
    assert!(!c.cgroup_exists());
}

#[test]
fn delete_created_container_kills_init() {
    require_root!();
    let c = Ctr::new("delcreated", &["sleep", "1000"]);
    assert!(c.create().status.success());
    let pid = c.state()["pid"].as_i64().expect("pid");
    c.ok(&["delete", &c.id]);
    assert!(gone(pid as i32), "init {pid} survived delete");
    assert!(!c.state_dir_exists());
}

#[test]
fn duplicate_id_and_signal_names() {
    require_root!();
    let c = Ctr::new("dup", &["sleep", "1000"]);
    assert!(c.create().status.success());
    let o = c.create();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("exists"),
        "{}",
        text(&o)
    );
    let o = c.runc(&["kill", &c.id, "NOSUCHSIG"]);
    assert_eq!(o.status.code(), Some(1));
    c.ok(&["start", &c.id]);
    c.ok(&["kill", &c.id, "9"]);
    c.wait_status("stopped");
}

#[test]
fn json_log_on_failure() {
    require_root!();
    let c = Ctr::new("jsonlog", &["true"]);
    let log = c.tmp.path().join("log.json");
    let o = c
        .cmd(&[
            "--log",
            log.to_str().expect("utf8"),
            "--log-format",
            "json",
            "state",
            "nope",
        ])
        .output()
        .expect("spawn");
    assert_eq!(o.status.code(), Some(1));
    let line = std::fs::read_to_string(&log).expect("log");
    let v: serde_json::Value =
        serde_json::from_str(line.lines().last().expect("line")).expect("json");
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().expect("msg").contains("does not exist"));
    assert!(v["time"].is_string());
}

#[test]
fn start_returns_when_the_program_runs() {
    require_root!();
    // A slow startContainer hook stands for everything between the release and the execve:
    // `start` must not return before the program replaced the init (a signal sent right
    // after it reaches the program, whose handlers are in place).
    let mut c = Ctr::new("startexec", &["sleep", "1000"]);
    c.config["hooks"] = serde_json::json!({
        "startContainer": [{"path": "/bin/sleep", "args": ["sleep", "0.3"]}]
    });
    let o = c.create();
    assert!(o.status.success(), "{}", text(&o));
    let pid = c.state()["pid"].as_i64().expect("pid");
    c.ok(&["start", &c.id]);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert_eq!(
        cmdline, b"sleep\x001000\0",
        "start returned before the execve"
    );
    assert_eq!(c.state()["status"], "running");
}

/// An allow-list profile of every syscall this libseccomp knows (as Docker's default is,
/// some 350 rules): compiling and loading it takes the init measurable time.
fn allow_list_profile() -> serde_json::Value {
    let names: Vec<String> = (0..512)
        .filter_map(|nr| libseccomp::ScmpSyscall::from(nr).get_name().ok())
        .collect();
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    })
}

#[test]
fn a_signal_right_after_start_reaches_the_programs_handler() {
    require_root!();
    // runtime-tools' killsig: `kill` follows `start` at once, so `start` must return only when
    // the program has replaced the init, with the seccomp filter (here a large one, whose
    // compiling took the init measurable time between "ready" and execve) already loaded.
    // What is checked is that ordering, right after each `start`: the pid runs the program.
    // Whether the program's own handler is in place by then is the program's start-up race
    // (a shell needs time to run `trap`), so that is not asserted; the signal must still end
    // the container, which it can only do once the program runs (an init of a PID namespace
    // ignores TERM without a handler), and then the handler ran.
    for i in 0..20 {
        let mut c = Ctr::new(
            "killsig",
            &[
                "sh",
                "-c",
                "trap 'touch /got-term; exit 0' TERM; while :; do sleep 0.05; done",
            ],
        );
        c.config["linux"]["seccomp"] = allow_list_profile();
        assert!(c.create().status.success());
        let pid = c.state()["pid"].as_i64().expect("pid");
        c.ok(&["start", &c.id]);
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
        assert!(
            cmdline.starts_with(b"sh\0-c\0"),
            "round {i}: start returned before the execve: {:?}",
            String::from_utf8_lossy(&cmdline)
        );
        // Until the shell has run `trap`, TERM is ignored (PID 1 of its namespace): send it
        // until the handler answers.
        let mut stopped = false;
        for _ in 0..100 {
            // (it may have stopped since the last look: then kill fails, harmlessly)
            let _ = c.runc(&["kill", &c.id, "TERM"]);
            std::thread::sleep(std::time::Duration::from_millis(50));
            if c.state()["status"] == "stopped" {
                stopped = true;
                break;
            }
        }
        assert!(stopped, "round {i}: TERM never ended the container");
        assert!(
            c.rootfs().join("got-term").exists(),
            "round {i}: handler did not run"
        );
    }
}
