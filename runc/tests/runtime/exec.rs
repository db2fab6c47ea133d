//! exec: plain, with flags, --process, tty through a console socket, pid file, detach.

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use serde_json::json;

use super::common::*;
use crate::require_root;

#[test]
fn exec_plain_exit_code_env_cwd_user() {
    require_root!();
    let c = Ctr::new("exec", &["sleep", "1000"]);
    c.run_detached();
    let o = c.exec(&["sh", "-c", "echo in; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_eq!(stdout(&o), "in\n");
    let o = c.exec(&[
        "--env",
        "A=b",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u)",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(stdout(&o), "b /tmp 1000\n");
    // Same pid namespace as the init.
    let o = c.exec(&["sh", "-c", "cat /proc/1/cmdline"]);
    assert!(stdout(&o).starts_with("sleep"), "{}", text(&o));
}

#[test]
fn exec_process_json_detach_pid_file() {
    require_root!();
    let c = Ctr::new("execjson", &["sleep", "1000"]);
    c.run_detached();
    let p = c.tmp.path().join("p.json");
    std::fs::write(
        &p,
        json!({"args": ["sh", "-c", "echo $X > /tmp/out; sleep 1000"], "cwd": "/", "env": ["X=from-json", "PATH=/bin"],
               "user": {"uid": 0, "gid": 0}})
        .to_string(),
    )
    .expect("write");
    let pidfile = c.tmp.path().join("exec.pid");
    c.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pidfile.to_str().expect("u"),
        "--process",
        p.to_str().expect("u"),
        &c.id,
    ]);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .parse()
        .expect("num");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    for _ in 0..200 {
        if std::fs::read_to_string(c.rootfs().join("tmp/out")).is_ok_and(|s| s.ends_with('\n')) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        std::fs::read_to_string(c.rootfs().join("tmp/out")).expect("out"),
        "from-json\n"
    );
    let pids: Vec<i32> =
        serde_json::from_str(&c.ok(&["ps", "--format", "json", &c.id])).expect("json");
    assert!(pids.contains(&pid), "{pids:?} {pid}");
}

#[test]
fn exec_into_stopped_container_fails() {
    require_root!();
    let c = Ctr::new("execstopped", &["true"]);
    c.run_detached();
    c.wait_status("stopped");
    let o = c.exec(&["true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stopped"),
        "{}",
        text(&o)
    );
}

/// Receives the pty master sent over the console socket.
fn recv_master(l: &UnixListener) -> OwnedFd {
    let (s, _) = l.accept().expect("accept");
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = nix::sys::socket::recvmsg::<()>(
        s.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        nix::sys::socket::MsgFlags::empty(),
    )
    .expect("recvmsg");
    for c in msg.cmsgs().expect("cmsgs") {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed this fd for us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}

fn read_until(master: OwnedFd, needle: &str) -> String {
    let mut f = std::fs::File::from(master);
    let mut all = String::new();
    let mut buf = [0u8; 1024];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !all.contains(needle) && std::time::Instant::now() < deadline {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    all
}

#[test]
fn exec_tty_with_console_socket() {
    require_root!();
    let c = Ctr::new("exectty", &["sleep", "1000"]);
    c.run_detached();
    let sock = c.tmp.path().join("console.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    let id = c.id.clone();
    let s = sock.clone();
    let root = c.root();
    let dir = c.tmp.path().to_path_buf();
    let h = std::thread::spawn(move || {
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("--root").arg(root).args([
            "exec",
            "--tty",
            "--detach",
            "--console-socket",
            s.to_str().expect("u"),
            &id,
            "sh",
            "-c",
            "tty; echo tty-ok; sleep 1",
        ]);
        output(cmd, &dir)
    });
    let master = recv_master(&l);
    let o = h.join().expect("join");
    assert!(o.status.success(), "{}", text(&o));
    let out = read_until(master, "tty-ok");
    assert!(out.contains("/dev/pts/") && out.contains("tty-ok"), "{out}");
}

#[test]
fn create_with_terminal_and_console_socket() {
    require_root!();
    let mut c = Ctr::new("createtty", &["sh", "-c", "tty; echo console-ok; sleep 2"]);
    c.config["process"]["terminal"] = json!(true);
    c.write_config();
    let sock = c.tmp.path().join("console.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    let root = c.root();
    let (id, b, s) = (c.id.clone(), c.bundle(), sock.clone());
    let dir = c.tmp.path().to_path_buf();
    let h = std::thread::spawn(move || {
        let mut cmd = std::process::Command::new(bin());
        cmd.arg("--root").arg(root).args([
            "create",
            "--bundle",
            b.to_str().expect("u"),
            "--console-socket",
            s.to_str().expect("u"),
            &id,
        ]);
        output(cmd, &dir)
    });
    let master = recv_master(&l);
    let o = h.join().expect("join");
    assert!(o.status.success(), "{}", text(&o));
    c.ok(&["start", &c.id]);
    let out = read_until(master, "console-ok");
    assert!(
        out.contains("/dev/pts/0") && out.contains("console-ok"),
        "{out}"
    );
}

#[test]
fn foreground_terminal_is_proxied_without_console_socket() {
    require_root!();
    let mut c = Ctr::new("fgtty", &["sh", "-c", "tty; echo via-pty; exit 4"]);
    c.config["process"]["terminal"] = json!(true);
    let o = c.run();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let out = stdout(&o);
    assert!(
        out.contains("/dev/pts/0") && out.contains("via-pty"),
        "{}",
        text(&o)
    );
}
