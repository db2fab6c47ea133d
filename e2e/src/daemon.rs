//! A real `crustd` process with its own root, state and socket under a temp dir; killed on
//! drop. The binary is found next to the test executable (built if absent).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

/// A running crustd.
pub struct Crustd {
    /// Temp dir holding root, state, socket, config and log.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    bin: PathBuf,
    env: Vec<(String, String)>,
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
        let dir = tempfile::tempdir_in(parent).expect("crustd dir");
        std::fs::write(dir.path().join("config.toml"), config).expect("write config");
        let mut me = Self {
            dir,
            child: None,
            bin: bin.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        me.restart();
        me
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
        let child = Command::new(&self.bin)
            .arg("--root")
            .arg(self.root())
            .arg("--state")
            .arg(self.dir.path().join("state"))
            .arg("--listen")
            .arg(self.socket())
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("--log-level")
            .arg("info,crust_daemon=debug")
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
    }
}

/// Number of entries in a directory (0 if absent).
pub fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|r| r.count()).unwrap_or(0)
}
