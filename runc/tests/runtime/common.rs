//! Test fixtures: busybox bundles, a private state root per test, and a guard that
//! force-deletes the container on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

/// Skips the test (with a printed reason) unless running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: this test needs root");
            return;
        }
    };
}

/// The crust-runc binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_crust-runc"))
}

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "true", "false", "sleep", "id", "hostname", "ps", "mkdir", "pwd",
    "readlink", "head", "yes", "tr", "wc", "grep", "dd", "env", "tty", "stat", "touch", "mount",
    "kill", "test", "printf", "umask", "ln", "rm", "mknod",
];

/// A test container: state root, bundle and id, deleted with `--force` on drop.
pub struct Ctr {
    /// Extra environment for every crust-runc call.
    pub env: Vec<(String, String)>,
    /// Global flags given before the command (e.g. `--systemd-cgroup`).
    pub flags: Vec<String>,
    pub tmp: tempfile::TempDir,
    pub id: String,
    pub config: Value,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Default capabilities (Docker's set).
pub fn default_caps() -> Value {
    json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE"
    ])
}

/// Copies the executable `from` to `to` in a child process (`cp`), never through a write fd
/// of this test process: its test threads fork all the time, and a child forked while our
/// write fd was open keeps it until it execs, so exec of the copy (the container's busybox)
/// failed with ETXTBSY under load (no_host_fd_reaches_the_container).
pub fn copy_executable(from: &str, to: &std::path::Path) {
    let st = std::process::Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(st.success(), "cp {from} {}: {st}", to.display());
}

impl Ctr {
    /// A fresh bundle running `args`.
    pub fn new(name: &str, args: &[&str]) -> Ctr {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{name}-{}-{n}", std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix("crust-runc-test-")
            .tempdir()
            .expect("tempdir");
        let rootfs = tmp.path().join("bundle/rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
        }
        copy_executable("/bin/busybox", &rootfs.join("bin/busybox"));
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).expect("symlink");
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n",
        )
        .expect("passwd");
        let caps = default_caps();
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                                 "inheritable": caps, "ambient": caps},
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": false},
            "hostname": "crust-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "linux": {
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                               {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
                "cgroupsPath": format!("/crust-rt-{id}"),
                "maskedPaths": ["/proc/kcore", "/proc/keys"],
                "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        Ctr {
            env: Vec::new(),
            flags: Vec::new(),
            tmp,
            id,
            config,
        }
    }

    /// Adds a new user namespace mapping ids 0..size to host ids host..host+size.
    pub fn add_user_ns(&mut self, host: u32, size: u32) {
        self.config["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": host, "size": size}]);
        self.config["linux"]["uidMappings"] = map.clone();
        self.config["linux"]["gidMappings"] = map;
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn bundle(&self) -> PathBuf {
        self.tmp.path().join("bundle")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    /// Writes config.json from `self.config`.
    pub fn write_config(&self) {
        std::fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("json"),
        )
        .expect("write config");
    }

    /// A crust-runc command with `--root` set.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--root")
            .arg(self.root())
            .args(&self.flags)
            .args(args);
        c.envs(self.env.iter().cloned());
        c.stdin(Stdio::null());
        c
    }

    /// Runs crust-runc with `args` and returns its output. stdout/stderr go through files,
    /// not pipes: a detached container inherits them and would keep a pipe open forever.
    pub fn runc(&self, args: &[&str]) -> Output {
        output(self.cmd(args), self.tmp.path())
    }

    /// Like `runc` but panics with the output unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.runc(args);
        assert!(
            o.status.success(),
            "crust-runc {args:?} failed: {}",
            text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `run` in the foreground (config written first).
    pub fn run(&self) -> Output {
        self.write_config();
        let b = self.bundle();
        self.runc(&["run", "--bundle", b.to_str().expect("utf8"), &self.id])
    }

    /// `create` (config written first).
    pub fn create(&self) -> Output {
        self.write_config();
        let b = self.bundle();
        self.runc(&["create", "--bundle", b.to_str().expect("utf8"), &self.id])
    }

    /// `run --detach`, asserting success.
    pub fn run_detached(&self) {
        self.write_config();
        let b = self.bundle();
        self.ok(&[
            "run",
            "--detach",
            "--bundle",
            b.to_str().expect("utf8"),
            &self.id,
        ]);
    }

    /// The `state` JSON.
    pub fn state(&self) -> Value {
        serde_json::from_str(&self.ok(&["state", &self.id])).expect("state json")
    }

    /// Polls until the status is `want` (or panics after 5 s).
    pub fn wait_status(&self, want: &str) {
        for _ in 0..500 {
            if self.state()["status"] == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("container never reached {want}: {}", self.state());
    }

    /// `exec` into the container, returning its output.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["exec", self.id.as_str()];
        a.extend_from_slice(args);
        self.runc(&a)
    }

    /// Whether any cgroup directory of this container exists.
    /// Whether the container's cgroup exists: in the unified hierarchy, or in any v1 one.
    pub fn cgroup_exists(&self) -> bool {
        let name = format!("crust-rt-{}", self.id);
        Path::new("/sys/fs/cgroup").join(&name).exists()
            || std::fs::read_dir("/sys/fs/cgroup")
                .expect("cgroupfs")
                .flatten()
                .any(|h| h.path().join(&name).exists())
    }

    /// The path of the container's cgroup file `v2` on a cgroup v2-only host, else of
    /// `v1` in the v1 hierarchy of `controller`.
    pub fn cgroup_file(&self, controller: &str, v1: &str, v2: &str) -> PathBuf {
        let name = format!("crust-rt-{}", self.id);
        if unified() {
            Path::new("/sys/fs/cgroup").join(name).join(v2)
        } else {
            Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(name)
                .join(v1)
        }
    }

    pub fn state_dir_exists(&self) -> bool {
        self.root().join(&self.id).exists()
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete", "--force", &self.id]).output();
    }
}

static OUT: AtomicUsize = AtomicUsize::new(0);

/// Runs `cmd` with stdout/stderr redirected to files under `dir`, and collects them.
pub fn output(mut cmd: Command, dir: &Path) -> Output {
    let n = OUT.fetch_add(1, Ordering::SeqCst);
    let (o, e) = (dir.join(format!(".out{n}")), dir.join(format!(".err{n}")));
    cmd.stdout(std::fs::File::create(&o).expect("out file"));
    cmd.stderr(std::fs::File::create(&e).expect("err file"));
    let status = cmd.status().expect("spawn crust-runc");
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

/// Whether `pid` is gone (or a zombie) within a second.
pub fn gone(pid: i32) -> bool {
    (0..100).any(|_| {
        let g = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s.contains(") Z "),
        };
        if !g {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        g
    })
}

/// Asserts that a `create` of `c` (its output `o`) failed with exit 1 and an error
/// containing `what`, leaving neither state dir nor cgroup behind.
pub fn assert_create_failed(c: &Ctr, o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(what), "error does not say {what:?}: {err}");
    assert!(!c.state_dir_exists(), "state dir left behind");
    assert!(!c.cgroup_exists(), "cgroup left behind");
}

/// stdout + stderr of an output, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// stdout as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Whether the host's cgroups are v2 only.
pub fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}
