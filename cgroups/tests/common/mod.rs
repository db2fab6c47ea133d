//! Helpers for the tests that need root and a real cgroup hierarchy: skip logic, a guard that
//! cleans up (thaw, kill, delete) even when the test fails, and child processes that wait for
//! a go signal so they can be moved into a cgroup first.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Stdio};

use crust_cgroups::Cgroup;
use oci_spec::runtime::LinuxResources;

/// Why the real-hierarchy tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<&'static str> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root");
    }
    None
}

/// A unique cgroup name for this test process.
pub fn unique(tag: &str) -> String {
    format!("/crust-test-{}-{tag}", std::process::id())
}

pub fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).expect("resources json")
}

/// Owns a cgroup and the processes a test put in it; Drop thaws, kills, and deletes.
pub struct Guard {
    pub cg: Cgroup,
    pids: Vec<i32>,
    extra_dirs: Vec<std::path::PathBuf>,
}

impl Guard {
    pub fn new(cg: Cgroup) -> Guard {
        Guard {
            cg,
            pids: Vec::new(),
            extra_dirs: Vec::new(),
        }
    }
    pub fn track(&mut self, pid: i32) {
        self.pids.push(pid);
    }
    /// A directory to rmdir after the cgroup (a test-made parent).
    pub fn remove_after(&mut self, dir: std::path::PathBuf) {
        self.extra_dirs.push(dir);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cg.thaw();
        for p in &self.pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), nix::sys::signal::SIGKILL);
        }
        for p in &self.pids {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(*p), None);
        }
        let _ = self.cg.delete();
        for d in &self.extra_dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// `sh -c "read x; <script>"`: waits for a line on stdin before running `script`.
pub fn spawn_waiting(script: &str) -> Child {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("read x; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn /bin/sh")
}

/// Lets a `spawn_waiting` child go.
pub fn release(child: &mut Child) {
    let stdin = child.stdin.as_mut().expect("stdin");
    stdin.write_all(b"go\n").expect("release child");
    stdin.flush().expect("flush");
}

/// Runs `script` inside `cg` and returns (stdout, stderr).
pub fn run_in(g: &mut Guard, script: &str) -> (String, String) {
    let mut child = spawn_waiting(script);
    g.track(child.id() as i32);
    g.cg.add_process(child.id() as i32).expect("add_process");
    release(&mut child);
    let out = child.wait_with_output().expect("wait");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}
