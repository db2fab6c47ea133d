//! A real `crustd` process with its own root, state and socket under a temp dir and its own
//! cgroup parent (`runtime.cgroup_root`, unless the config names one); killed on drop, and
//! the cgroup tree removed from every hierarchy. The binary is found next to the test
//! executable (built if absent). The directory is leased to this test process
//! ([`crate::sweep`]): if the process is killed, a later test's first crustd removes it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::cgroup::CgroupRoot;

/// A running crustd.
pub struct Crustd {
    /// Temp dir holding root, state, socket, config and log.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    bin: PathBuf,
    /// `--log-level` given on (re)start; `None` leaves the config file's `log_level`.
    pub log_level: Option<String>,
    /// The pods' cgroup parent; dropped (removed) after the process is killed.
    cgroup: Option<CgroupRoot>,
    env: Vec<(String, String)>,
    /// This process's hold on `dir`, so no other test's sweep takes it for a dead one's.
    _lease: crate::sweep::Lease,
}

impl Crustd {
    /// Starts crustd with `config` (TOML) in a fresh directory.
    pub fn start(config: &str) -> Self {
        Self::start_bin(&crate::workspace_bin("crust-cri", "crustd"), config)
    }

    /// Starts the crustd binary `bin` with `config` (TOML) in a fresh directory.
    pub fn start_bin(bin: &Path, config: &str) -> Self {
        Self::start_bin_in(bin, config, &std::env::temp_dir())
    }

    /// Starts the crustd binary `bin` with `config` (TOML) in a fresh directory under
    /// `parent` (the benchmark puts it on a fresh filesystem).
    pub fn start_bin_in(bin: &Path, config: &str, parent: &Path) -> Self {
        Self::start_bin_env(bin, config, parent, &[])
    }

    /// [`Crustd::start_bin_in`] with extra environment variables for crustd.
    pub fn start_bin_env(bin: &Path, config: &str, parent: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_bin_env_level(bin, config, parent, env, Some("info,crust_daemon=debug"))
    }

    /// [`Crustd::start_bin_env`] with `--log-level level` (`None`: the config's).
    pub fn start_bin_env_level(
        bin: &Path,
        config: &str,
        parent: &Path,
        env: &[(&str, &str)],
        level: Option<&str>,
    ) -> Self {
        crate::sweep::sweep_once(parent);
        let dir = tempfile::tempdir_in(parent).expect("crustd dir");
        let lease = crate::sweep::Lease::take(dir.path());
        let (config, cgroup) = with_cgroup_root(config);
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        let mut me = Self {
            dir,
            child: None,
            bin: bin.to_path_buf(),
            log_level: level.map(str::to_string),
            cgroup,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _lease: lease,
        };
        me.restart();
        me
    }

    /// The pods' cgroup parent (`runtime.cgroup_root`), e.g. `/crust-e2e-123-0`.
    pub fn cgroup_root(&self) -> String {
        let text = std::fs::read_to_string(self.config()).unwrap_or_default();
        let t: toml::Table = toml::from_str(&text).unwrap_or_default();
        t.get("runtime")
            .and_then(|r| r.get("cgroup_root"))
            .and_then(|c| c.as_str())
            .unwrap_or("/crust")
            .to_string()
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Volatile state directory.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Persistent root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("crust.sock")
    }

    /// crustd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("crustd.log")).unwrap_or_default()
    }

    /// (Re)starts the process on the same directories and waits for the socket.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "crustd still running");
        let _ = std::fs::remove_file(self.socket());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("crustd.log"))
            .expect("log");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root")
            .arg(self.root())
            .arg("--state")
            .arg(self.state())
            .arg("--listen")
            .arg(self.socket())
            .arg("--config")
            .arg(self.config());
        if let Some(l) = &self.log_level {
            cmd.arg("--log-level").arg(l);
        }
        let child = cmd
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn crustd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("crustd exited with {st}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "crustd did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A CRI channel to it.
    pub async fn channel(&self) -> Channel {
        crate::cri::connect(&self.socket()).await
    }
}

impl Drop for Crustd {
    fn drop(&mut self) {
        self.kill9();
        drop(self.cgroup.take());
    }
}

/// `config` (TOML) with a unique `runtime.cgroup_root` unless it names one, and that root.
fn with_cgroup_root(config: &str) -> (String, Option<CgroupRoot>) {
    let mut t: toml::Table = toml::from_str(config).expect("crustd test config is TOML");
    let rt = t
        .entry("runtime")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(rt) = rt.as_table_mut() else {
        panic!("[runtime] is not a table in {config:?}");
    };
    if rt.contains_key("cgroup_root") {
        return (config.to_string(), None);
    }
    // CRUST_E2E_CGROUP_PREFIX: several test runs on one machine keep apart by prefix.
    let prefix = std::env::var("CRUST_E2E_CGROUP_PREFIX").unwrap_or_else(|_| "crust-e2e".into());
    let systemd = rt.get("cgroup_driver").and_then(|v| v.as_str()) == Some("systemd");
    let cg = if systemd {
        CgroupRoot::unique_slice(&prefix)
    } else {
        CgroupRoot::unique(&prefix)
    };
    rt.insert("cgroup_root".into(), toml::Value::String(cg.path().into()));
    (toml::to_string(&t).expect("serialize config"), Some(cg))
}

/// The outcome of [`try_start`].
#[derive(Debug)]
pub enum Attempt {
    /// crustd exited by itself with this code, and printed this.
    Exited(Option<i32>, String),
    /// crustd was still running (serving `socket` or not) when given up on; it was killed.
    Running(String),
}

/// Runs `bin args...` (a crustd expected to refuse to start) for up to `wait`; kills it if
/// it is still running then, or as soon as `socket` answers.
pub fn try_start(bin: &Path, args: &[&std::ffi::OsStr], socket: &Path, wait: Duration) -> Attempt {
    let out = tempfile::NamedTempFile::new().expect("log file");
    let mut c = Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("log"))
        .stderr(out.reopen().expect("log"))
        .spawn()
        .expect("spawn crustd");
    let started = std::fs::metadata(socket).ok().map(|m| {
        use std::os::unix::fs::MetadataExt as _;
        m.ino()
    });
    let deadline = Instant::now() + wait;
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            return Attempt::Exited(
                st.code(),
                std::fs::read_to_string(out.path()).unwrap_or_default(),
            );
        }
        let now_ino = std::fs::metadata(socket).ok().map(|m| {
            use std::os::unix::fs::MetadataExt as _;
            m.ino()
        });
        let took_socket = now_ino.is_some() && now_ino != started;
        if took_socket || Instant::now() > deadline {
            let _ = c.kill();
            let _ = c.wait();
            return Attempt::Running(std::fs::read_to_string(out.path()).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a second crustd (this workspace's) on `root`, `state`, `socket` with `config`,
/// which must refuse to start (exit non-zero while `watch` keeps its owner); returns what
/// it printed.
pub fn refused_start(
    root: &Path,
    state: &Path,
    socket: &Path,
    config: &Path,
    watch: &Path,
) -> String {
    let args = [
        std::ffi::OsStr::new("--root"),
        root.as_os_str(),
        std::ffi::OsStr::new("--state"),
        state.as_os_str(),
        std::ffi::OsStr::new("--listen"),
        socket.as_os_str(),
        std::ffi::OsStr::new("--config"),
        config.as_os_str(),
    ];
    let bin = crate::workspace_bin("crust-cri", "crustd");
    match try_start(&bin, &args, watch, Duration::from_secs(20)) {
        Attempt::Exited(code, out) => {
            assert_ne!(code, Some(0), "the second crustd exits non-zero: {out}");
            out
        }
        Attempt::Running(out) => panic!("the second crustd started: {out}"),
    }
}

/// Number of entries in a directory (0 if absent).
pub fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}
