//! CVE-class protections: sealed memfd re-exec, no leaked fds, cwd through a leaked fd,
//! seccomp with a chosen errno.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use serde_json::json;

use super::common::*;
use crate::require_root;

#[test]
fn init_runs_from_a_sealed_memfd() {
    require_root!();
    let mut c = Ctr::new("memfd", &["sleep", "1000"]);
    c.env.push(("CRUST_RUNC_CLONE".into(), "memfd".into()));
    assert!(c.create().status.success());
    let pid = c.state()["pid"].as_i64().expect("pid");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
    assert!(
        exe.display().to_string().starts_with("/memfd:crust-runc"),
        "{exe:?}"
    );
    // The copy is sealed against writes.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"));
    assert!(f.is_err(), "the init's executable must not be writable");
    c.ok(&["start", &c.id]);
}

#[test]
fn init_runs_from_a_read_only_image_of_the_binary() {
    require_root!();
    let c = Ctr::new("robind", &["sleep", "1000"]);
    assert!(c.create().status.success());
    let pid = c.state()["pid"].as_i64().expect("pid");
    let exe = format!("/proc/{pid}/exe");
    // Not the host file: writing through the init's exe is refused by the read-only mount
    // (or, with the memfd fallback, by the seals).
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .expect_err("must not be writable");
    assert!(
        matches!(
            e.raw_os_error(),
            Some(libc::EROFS) | Some(libc::EPERM) | Some(libc::ETXTBSY)
        ),
        "{e}"
    );
    // The exe link leads to a read-only mount (the host's copy is on a writable one), so
    // an O_PATH handle kept by the container (the CVE-2019-5736 trick) can never be
    // reopened for writing, even after the runtime is gone.
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&exe)
        .expect("O_PATH");
    c.ok(&["start", &c.id]);
    let p = format!("/proc/self/fd/{}", handle.as_raw_fd());
    let ro = |p: &str| {
        nix::sys::statvfs::statvfs(p)
            .expect("statvfs")
            .flags()
            .contains(nix::sys::statvfs::FsFlags::ST_RDONLY)
    };
    assert!(ro(&p), "the init's executable is on a writable mount");
    assert!(
        !ro(bin().to_str().expect("utf8")),
        "host binary expected on a writable fs"
    );
    let e = std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .expect_err("reopen for write");
    assert!(
        matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
        "{e}"
    );
}

/// Opens `path` as a directory fd WITHOUT close-on-exec, as a careless caller would.
fn leaky_dir_fd(path: &str) -> OwnedFd {
    let c = std::ffi::CString::new(path).expect("cstr");
    // SAFETY: open with a valid C string; the fd is owned by the returned OwnedFd.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    assert!(fd >= 0);
    // SAFETY: fd is fresh and ours.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn no_host_fd_reaches_the_container() {
    require_root!();
    let leak = leaky_dir_fd("/");
    // "; true" keeps sh from exec'ing ls (which would list its own directory fd).
    let c = Ctr::new("fdleak", &["sh", "-c", "ls /proc/$$/fd; true"]);
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    let fds: Vec<String> = stdout(&o).split_whitespace().map(String::from).collect();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "leaked fd {} visible? {}",
        leak.as_raw_fd(),
        text(&o)
    );
    // Same for exec.
    let c = Ctr::new("fdleak-exec", &["sleep", "1000"]);
    c.run_detached();
    let o = c.exec(&["sh", "-c", "ls /proc/$$/fd; true"]);
    let fds: Vec<String> = stdout(&o).split_whitespace().map(String::from).collect();
    assert_eq!(fds, ["0", "1", "2"], "{}", text(&o));
}

#[test]
fn cwd_cannot_be_a_leaked_fd() {
    require_root!();
    let leak = leaky_dir_fd("/");
    let n = leak.as_raw_fd();
    for fd in [n, 3, 4, 5, 6, 7, 8] {
        let mut c = Ctr::new("cwdleak", &["sh", "-c", "ls ..; pwd"]);
        c.config["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}"));
        let o = c.run();
        let out = stdout(&o);
        assert!(
            !o.status.success() && !out.contains("etc\n") && !out.contains("(unreachable)"),
            "cwd through fd {fd} escaped: {}",
            text(&o)
        );
    }
}

#[test]
fn seccomp_denies_with_chosen_errno() {
    require_root!();
    let mut c = Ctr::new("seccomp", &["sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
    c.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30}]
    });
    let o = c.run();
    assert!(o.status.success(), "{}", text(&o));
    assert!(stdout(&o).contains("rc=1"), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Read-only file system"),
        "{}",
        text(&o)
    );
    assert!(!c.rootfs().join("tmp/x").exists());
}

#[test]
fn the_waiting_init_is_not_dumpable() {
    require_root!();
    // Between create and start the init holds host fds (the exec fifo); as runc's, it is
    // non-dumpable, so a process of the container without CAP_SYS_PTRACE cannot reach its
    // memory, environment or fds through /proc.
    let c = Ctr::new("nodump", &["sleep", "1000"]);
    assert!(c.create().status.success());
    let o = c.exec(&[
        "sh",
        "-c",
        "cat /proc/1/environ >/dev/null && echo readable; ls -l /proc/1/fd/ 2>&1 | grep -c -- '->'",
    ]);
    assert!(
        !stdout(&o).contains("readable"),
        "the container read the init's environ: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{}",
        text(&o)
    );
    assert_eq!(
        stdout(&o).trim(),
        "0",
        "the init's fds were visible: {}",
        text(&o)
    );
    // The program itself is dumpable again after execve.
    c.ok(&["start", &c.id]);
    let o = c.exec(&[
        "sh",
        "-c",
        "cat /proc/1/environ >/dev/null && echo readable",
    ]);
    assert_eq!(stdout(&o), "readable\n", "{}", text(&o));
}
