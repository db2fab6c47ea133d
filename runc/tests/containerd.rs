//! Drop-in proof: containerd (1.6, Debian's) drives crust-runc through its own runc shim
//! (`io.containerd.runc.v2` with `--runc-binary`): run with exit code, detached task,
//! exec, pause/resume, kill, delete. Needs root and containerd/ctr/containerd-shim-runc-v2
//! (deploy/deps.sh installs them); skips with a reason otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// A private containerd (own root, state, socket and namespace), killed on drop.
struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    ns: String,
}

impl Containerd {
    fn start() -> Option<Containerd> {
        for b in ["containerd", "ctr", "containerd-shim-runc-v2"] {
            if !which(b) {
                eprintln!("skipped: {b} not installed (deploy/deps.sh installs it)");
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("crust-ctrd-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{0}/sock\"\n",
            d.display()
        );
        std::fs::write(d.join("config.toml"), config).expect("config");
        let log = std::fs::File::create(d.join("log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd {
            child,
            ns: format!("crust-test-{}", std::process::id()),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c.ctr(&["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(c)
    }

    fn ctr(&self, args: &[&str]) -> Output {
        let d = self.dir.path();
        let (o, e) = (d.join("out"), d.join("err"));
        let status = Command::new("ctr")
            .arg("--address")
            .arg(d.join("sock"))
            .args(["--namespace", &self.ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).expect("out"))
            .stderr(std::fs::File::create(&e).expect("err"))
            .status()
            .expect("ctr");
        Output {
            status,
            stdout: std::fs::read(o).unwrap_or_default(),
            stderr: std::fs::read(e).unwrap_or_default(),
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in ["crust-ctr-run", "crust-ctr-task"] {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            std::thread::sleep(Duration::from_millis(100));
            let _ = self.ctr(&["task", "delete", "-f", id]);
            let _ = self.ctr(&["container", "delete", id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The runc shim keeps runtime state under /run/containerd/runc/<namespace>.
        let _ = std::fs::remove_dir(Path::new("/run/containerd/runc").join(&self.ns));
        // containerd puts containers under /<namespace>/<id> in every hierarchy.
        if let Ok(hs) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hs.flatten() {
                let _ = std::fs::remove_dir(h.path().join(&self.ns));
            }
        }
    }
}

fn rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "etc", "tmp"] {
        std::fs::create_dir_all(r.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", r.join("bin/busybox")).expect("busybox");
    for a in ["sh", "echo", "sleep", "id", "cat"] {
        std::os::unix::fs::symlink("busybox", r.join("bin").join(a)).expect("symlink");
    }
    r
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn containerd_runc_shim_drives_crust_runc() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(c) = Containerd::start() else { return };
    let bin = env!("CARGO_BIN_EXE_crust-runc");
    let r = rootfs(c.dir.path());
    let r = r.to_str().expect("utf8");

    let o = c.ctr(&[
        "run",
        "--rm",
        "--rootfs",
        "--runc-binary",
        bin,
        r,
        "crust-ctr-run",
        "/bin/sh",
        "-c",
        "echo hello via containerd; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("hello via containerd"),
        "{}",
        text(&o)
    );

    let o = c.ctr(&[
        "run",
        "-d",
        "--rootfs",
        "--runc-binary",
        bin,
        r,
        "crust-ctr-task",
        "/bin/sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "crust-ctr-task",
        "/bin/sh",
        "-c",
        "echo exec-ok; exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("exec-ok"),
        "{}",
        text(&o)
    );
    assert!(c.ctr(&["task", "pause", "crust-ctr-task"]).status.success());
    let ls = c.ctr(&["task", "ls"]);
    assert!(
        String::from_utf8_lossy(&ls.stdout).contains("PAUSED"),
        "{}",
        text(&ls)
    );
    assert!(c
        .ctr(&["task", "resume", "crust-ctr-task"])
        .status
        .success());
    let o = c.ctr(&["task", "kill", "-s", "KILL", "crust-ctr-task"]);
    assert!(o.status.success(), "{}", text(&o));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ls = c.ctr(&["task", "ls"]);
        if String::from_utf8_lossy(&ls.stdout).contains("STOPPED") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "task never stopped: {}",
            text(&ls)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = c.ctr(&["task", "delete", "crust-ctr-task"]);
    assert!(o.status.success(), "{}", text(&o));
}
