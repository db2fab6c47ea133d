//! A private Debian containerd for the side-by-side benchmarks: its own root, state, socket
//! and config in a temp dir, pulling from a loopback registry over plain HTTP (a certs.d
//! `hosts.toml` with a `[host]` section, since a bare `server` line is rejected), with
//! `restrict_oom_score_adj` (root here lacks CAP_SYS_RESOURCE). Dropping it kills containerd,
//! any shim left naming its socket, and unmounts what is left under its directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// The options of containerd's runc runtime (`io.containerd.runc.v2`): what kubelet
/// nodes set in `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`.
#[derive(Debug, Clone, Default)]
pub struct RuncOptions {
    /// `BinaryName`: the OCI runtime the runc shim runs (None: runc from PATH).
    pub binary_name: Option<PathBuf>,
    /// `SystemdCgroup`: containers as systemd scopes (`slice:cri-containerd:<id>`).
    pub systemd_cgroup: bool,
}

/// A running private containerd.
pub struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    /// Starts containerd pulling from `registry`, with `pause` as sandbox image when given
    /// and, when given, the CNI config in `cni_conf` (plugins from /usr/lib/cni).
    pub fn start(
        registry: &str,
        pause: Option<&str>,
        cni_conf: Option<&Path>,
    ) -> anyhow::Result<Self> {
        Self::start_in(&std::env::temp_dir(), registry, pause, cni_conf)
    }

    /// [`Self::start`] with its directory under `parent` (the benchmark puts it on a fresh
    /// filesystem).
    pub fn start_in(
        parent: &Path,
        registry: &str,
        pause: Option<&str>,
        cni_conf: Option<&Path>,
    ) -> anyhow::Result<Self> {
        Self::start_with(parent, registry, pause, cni_conf, &RuncOptions::default())
    }

    /// [`Self::start_in`] with the runc runtime's `options`.
    pub fn start_with(
        parent: &Path,
        registry: &str,
        pause: Option<&str>,
        cni_conf: Option<&Path>,
        options: &RuncOptions,
    ) -> anyhow::Result<Self> {
        let mut runc_options = String::new();
        if let Some(b) = &options.binary_name {
            runc_options.push_str(&format!("        BinaryName = \"{}\"\n", b.display()));
        }
        if options.systemd_cgroup {
            runc_options.push_str("        SystemdCgroup = true\n");
        }
        if !runc_options.is_empty() {
            runc_options.insert_str(
                0,
                "      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n",
            );
        }
        let dir = tempfile::tempdir_in(parent)?;
        let d = dir.path();
        let hosts = d.join("certs.d").join(registry);
        std::fs::create_dir_all(&hosts)?;
        std::fs::write(
            hosts.join("hosts.toml"),
            format!("server = \"http://{registry}\"\n\n[host.\"http://{registry}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"),
        )?;
        let sandbox_image = pause
            .map(|p| format!("  sandbox_image = \"{p}\"\n"))
            .unwrap_or_default();
        let mut cfg = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  disable_apparmor = true
{sandbox_image}  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
{runc_options}  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("containerd.sock").display(),
            opt = d.join("opt").display(),
            certs = d.join("certs.d").display(),
        );
        if let Some(conf) = cni_conf {
            cfg.push_str(&format!(
                "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n    bin_dir = \"/usr/lib/cni\"\n    conf_dir = \"{}\"\n    max_conf_num = 1\n",
                conf.display()
            ));
        }
        std::fs::write(d.join("config.toml"), cfg)?;
        let log = std::fs::File::create(d.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .context("start containerd")?;
        let me = Self { dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(me.socket()).is_err() {
            if Instant::now() > deadline {
                bail!("containerd did not start: {}", me.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(me)
    }

    /// Its CRI/grpc socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// containerd's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Shims of pods a failure left behind (they name containerd's socket).
        kill_matching(&self.socket().display().to_string(), "containerd-shim");
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l",
                self.dir.path().display()
            ))
            .status();
    }
}

/// SIGKILLs every process whose command line contains both `needle` and `exe`.
pub fn kill_matching(needle: &str, exe: &str) {
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains(needle) && cmd.contains(exe) {
            if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
