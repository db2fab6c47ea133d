//! Checkpoint/restore through CRIU's command line (`criu dump` / `criu restore`).
//!
//! Why the CLI and not `criu swrk` (CRIU's RPC, which runc uses): the RPC needs CRIU's
//! protobuf schema (rpc.proto) compiled into crust-runc and a socket protocol with
//! notifications; everything crust-runc asks of CRIU (external mounts and namespaces,
//! inherited fds, cgroup root and mode, TCP/unix-socket/file-lock options, detached
//! restore with a pid file) has a command-line flag in CRIU 3.x, and the CLI's log file
//! is the same. What the RPC adds that we do not use: pre-dump/page-server/lazy-pages
//! orchestration and in-process notify callbacks; those flags are refused.
//!
//! What is described to CRIU, as runc does (facts from runc's libcontainer):
//! - every bind mount of the spec is an external mount keyed by its destination (dump:
//!   `mnt[DEST]:DEST`; restore: `mnt[DEST]:SOURCE`);
//! - a network namespace joined by path is external (`net[INODE]:extRootNetNS` at dump;
//!   at restore an open fd of the new path is inherited under that key);
//! - the container's stdio pipes are recorded at dump (`descriptors.json` in the image
//!   dir, `/proc/PID/fd/0..2` link texts) and replaced at restore by the caller's stdio
//!   (`--inherit-fd fd[N]:pipe:[INODE]`); stdio that is a file on a mount outside the
//!   container (the host's /dev/null, a FIFO) is dumped as CRIU's external file
//!   `file[MNT_ID:INODE]` (hex; recorded under that key in `descriptors.json`) and
//!   replaced the same way (runc leaves those to CRIU, which then cannot dump them);
//! - restore runs CRIU inside the container's new cgroup (`--cgroup-root` is that path), so
//!   restored processes land there.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// File in the image dir listing the init's stdio as `/proc/PID/fd/N` links read.
pub const DESCRIPTORS: &str = "descriptors.json";
/// CRIU's key for the container's network namespace when it is external.
pub const NET_KEY: &str = "extRootNetNS";

/// `--manage-cgroups-mode` values (CRIU's names).
pub fn cgroups_mode(s: &str) -> Result<&'static str, String> {
    match s {
        "soft" => Ok("soft"),
        "full" => Ok("full"),
        "strict" => Ok("strict"),
        "ignore" => Ok("ignore"),
        other => Err(format!(
            "invalid --manage-cgroups-mode {other:?} (soft, full, strict or ignore)"
        )),
    }
}

/// Options shared by dump and restore.
#[derive(Debug, Default, Clone)]
pub struct Common {
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub manage_cgroups_mode: Option<&'static str>,
}

impl Common {
    fn args(&self, out: &mut Vec<String>) {
        for (on, flag) in [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
        ] {
            if on {
                out.push(flag.into());
            }
        }
        out.push(format!(
            "--manage-cgroups={}",
            self.manage_cgroups_mode.unwrap_or("soft")
        ));
    }
}

/// The spec's bind mounts: (destination, source).
pub fn bind_mounts(spec: &Spec) -> Vec<(String, String)> {
    spec.mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|m| {
            m.typ().as_deref() == Some("bind")
                || m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o == "bind" || o == "rbind")
        })
        .map(|m| {
            (
                m.destination().display().to_string(),
                m.source()
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The path of a namespace of type `t` the spec joins (not a new one).
pub fn joined_ns(spec: &Spec, t: LinuxNamespaceType) -> Option<PathBuf> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == t)?
        .path()
        .clone()
}

/// Whether a stdio entry of `descriptors.json` is replaced by the restorer's fd.
pub fn inherited(s: &str) -> bool {
    s.starts_with("pipe:") || s.starts_with("file[")
}

/// What `descriptors.json` records for fd `fd` of `pid`: the link text, or for a file on
/// a mount the container's mount namespace does not have, CRIU's external-file key.
pub fn stdio_entry(pid: i32, fd: i32) -> String {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if !link.starts_with('/') {
        return link;
    }
    let mnt_id = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("mnt_id:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
    let inode = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    let (Some(mnt_id), Some(inode)) = (mnt_id, inode) else {
        return link;
    };
    let inside = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').next() == Some(&mnt_id.to_string()));
    if inside {
        link
    } else {
        format!("file[{mnt_id:x}:{inode:x}]")
    }
}

/// `criu dump` arguments for the container whose init is `pid`. `net_inode`: the inode
/// of the joined network namespace; `stdio`: `descriptors.json`'s entries.
#[allow(clippy::too_many_arguments)]
pub fn dump_args(
    spec: &Spec,
    pid: i32,
    rootfs: &Path,
    images: &Path,
    work: &Path,
    leave_running: bool,
    net_inode: Option<u64>,
    stdio: &[String],
    common: &Common,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "dump".into(),
        "--tree".into(),
        pid.to_string(),
        "--images-dir".into(),
        images.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
        "--log-file".into(),
        "dump.log".into(),
        "-v4".into(),
        "--root".into(),
        rootfs.display().to_string(),
    ];
    if leave_running {
        a.push("--leave-running".into());
    }
    common.args(&mut a);
    for (dest, _) in bind_mounts(spec) {
        a.push("--external".into());
        a.push(format!("mnt[{dest}]:{dest}"));
    }
    if let Some(ino) = net_inode {
        a.push("--external".into());
        a.push(format!("net[{ino}]:{NET_KEY}"));
    }
    for s in stdio.iter().filter(|s| s.starts_with("file[")) {
        a.push("--external".into());
        a.push(s.clone());
    }
    a
}

/// `criu restore` arguments. `net_fd`: the fd (inherited by CRIU) of the network
/// namespace to restore into; `stdio`: the dumped stdio link texts (`descriptors.json`);
/// `cgroup_root`: the container's cgroup (v2 path) CRIU restores the tasks under.
#[allow(clippy::too_many_arguments)]
pub fn restore_args(
    spec: &Spec,
    rootfs: &Path,
    images: &Path,
    work: &Path,
    pid_file: &Path,
    net_fd: Option<i32>,
    stdio: &[String],
    cgroup_root: Option<&str>,
    common: &Common,
) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "restore".into(),
        "--images-dir".into(),
        images.display().to_string(),
        "--work-dir".into(),
        work.display().to_string(),
        "--log-file".into(),
        "restore.log".into(),
        "-v4".into(),
        "--root".into(),
        rootfs.display().to_string(),
        "--restore-detached".into(),
        "--restore-sibling".into(),
        "--pidfile".into(),
        pid_file.display().to_string(),
    ];
    common.args(&mut a);
    if let Some(root) = cgroup_root {
        a.push("--cgroup-root".into());
        a.push(root.into());
    }
    for (dest, source) in bind_mounts(spec) {
        a.push("--external".into());
        a.push(format!("mnt[{dest}]:{source}"));
    }
    if let Some(fd) = net_fd {
        a.push("--inherit-fd".into());
        a.push(format!("fd[{fd}]:{NET_KEY}"));
    }
    for (i, s) in stdio.iter().enumerate().take(3) {
        if inherited(s) {
            a.push("--inherit-fd".into());
            a.push(format!("fd[{i}]:{s}"));
        }
    }
    a
}

/// The last lines of a CRIU log that report errors (what to show when CRIU fails).
pub fn log_errors(log: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(log) else {
        return format!("no CRIU log at {}", log.display());
    };
    let errs: Vec<&str> = text.lines().filter(|l| l.contains("Error")).collect();
    let tail = &errs[errs.len().saturating_sub(4)..];
    if tail.is_empty() {
        format!("see {}", log.display())
    } else {
        format!("{} (log {})", tail.join("; "), log.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/etc/hosts", "type": "bind", "source": "/p/hosts", "options": ["rbind", "ro"]},
                {"destination": "/data", "source": "/v/data", "options": ["bind"]}
            ],
            "linux": {"namespaces": [
                {"type": "pid"}, {"type": "network", "path": "/run/netns/p"}, {"type": "mount"}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn dump_describes_binds_and_the_joined_netns_as_external() {
        let s = spec();
        assert_eq!(
            joined_ns(&s, LinuxNamespaceType::Network),
            Some("/run/netns/p".into())
        );
        assert_eq!(joined_ns(&s, LinuxNamespaceType::Pid), None);
        let a = dump_args(
            &s,
            42,
            Path::new("/b/rootfs"),
            Path::new("/i"),
            Path::new("/w"),
            true,
            Some(7),
            &["file[18:4]".to_string(), "pipe:[9]".to_string()],
            &Common {
                file_locks: true,
                ..Default::default()
            },
        )
        .join(" ");
        assert!(
            a.starts_with("dump --tree 42 --images-dir /i --work-dir /w"),
            "{a}"
        );
        for want in [
            "--leave-running",
            "--file-locks",
            "--manage-cgroups=soft",
            "--external mnt[/etc/hosts]:/etc/hosts",
            "--external mnt[/data]:/data",
            "--external net[7]:extRootNetNS",
            "--external file[18:4]",
        ] {
            assert!(a.contains(want), "{want} not in {a}");
        }
        assert!(!a.contains("/proc]"), "{a}");
        assert!(!a.contains("--tcp-established"), "{a}");
    }

    #[test]
    fn restore_maps_binds_to_sources_and_inherits_pipes_and_netns() {
        let stdio = vec![
            "file[18:4]".to_string(),
            "pipe:[123]".to_string(),
            "pipe:[124]".to_string(),
        ];
        let a = restore_args(
            &spec(),
            Path::new("/b/rootfs"),
            Path::new("/i"),
            Path::new("/w"),
            Path::new("/b/pid"),
            Some(5),
            &stdio,
            Some("/kubepods/x"),
            &Common {
                manage_cgroups_mode: Some("ignore"),
                tcp_established: true,
                ..Default::default()
            },
        )
        .join(" ");
        for want in [
            "--restore-detached",
            "--pidfile /b/pid",
            "--root /b/rootfs",
            "--manage-cgroups=ignore",
            "--tcp-established",
            "--cgroup-root /kubepods/x",
            "--external mnt[/etc/hosts]:/p/hosts",
            "--external mnt[/data]:/v/data",
            "--inherit-fd fd[5]:extRootNetNS",
            "--inherit-fd fd[1]:pipe:[123]",
            "--inherit-fd fd[2]:pipe:[124]",
            "--inherit-fd fd[0]:file[18:4]",
        ] {
            assert!(a.contains(want), "{want} not in {a}");
        }
        assert!(!a.contains("pipe:[9]"), "{a}");
    }

    #[test]
    fn cgroup_modes() {
        assert_eq!(cgroups_mode("full"), Ok("full"));
        assert!(cgroups_mode("bogus").unwrap_err().contains("bogus"));
    }
}
