//! What a pod sandbox is on the host without a pause process: pinned IPC and UTS
//! namespaces (`<state>/ns/<pod>/{ipc,uts}`, next to the network module's `net`), and the
//! pod directory `<state>/pods/<pod>/` holding `hostname`, `hosts`, `resolv.conf` and
//! `shm/` (a 64 MiB tmpfs, the pod's /dev/shm).
//!
//! Invariants: pins ([`crate::nspin`]) are of namespaces created by a short-lived OS
//! thread (so no runtime thread changes namespace); every removal is idempotent.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::nspin;

use crate::runtime::error::{io, Result, RuntimeError};
use crate::runtime::types::{NsMode, PodRecord};

/// Size of a pod's /dev/shm.
const SHM_SIZE: &str = "size=65536k";

/// Creates and pins new IPC and/or UTS namespaces for `pod_id`, the UTS one with
/// `hostname`. Returns the pins.
pub async fn pin_namespaces(
    state: &Path,
    pod_id: &str,
    ipc: bool,
    uts: bool,
    hostname: &str,
) -> Result<(Option<PathBuf>, Option<PathBuf>)> {
    let dir = state.join("ns").join(pod_id);
    let ipc_path = ipc.then(|| nspin::path(state, pod_id, "ipc"));
    let uts_path = uts.then(|| nspin::path(state, pod_id, "uts"));
    for p in ipc_path.iter().chain(uts_path.iter()) {
        nspin::prepare(p).map_err(io("create", p))?;
    }
    let (ip, up, host) = (ipc_path.clone(), uts_path.clone(), hostname.to_string());
    let r = crate::network::netns::on_fresh_thread(move || -> std::io::Result<()> {
        // This thread exists only to create the namespaces and pin them; it exits right
        // after, so the change of namespace never reaches a runtime thread.
        let mut flags = CloneFlags::empty();
        if ip.is_some() {
            flags |= CloneFlags::CLONE_NEWIPC;
        }
        if up.is_some() {
            flags |= CloneFlags::CLONE_NEWUTS;
        }
        if flags.is_empty() {
            return Ok(());
        }
        unshare(flags)?;
        if let Some(u) = &up {
            nix::unistd::sethostname(&host)?;
            nspin::bind("/proc/thread-self/ns/uts", u)?;
        }
        if let Some(i) = &ip {
            nspin::bind("/proc/thread-self/ns/ipc", i)?;
        }
        Ok(())
    })
    .await
    .and_then(|r| r);
    if let Err(e) = r {
        // Only the pins made here: the PID namespace's pin (taken before) is how teardown
        // finds and kills the pod init.
        for p in ipc_path.iter().chain(uts_path.iter()) {
            let _ = umount2(p, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(p);
        }
        return Err(RuntimeError::Io {
            op: "pin ipc/uts namespaces",
            path: dir,
            source: e,
        });
    }
    Ok((ipc_path, uts_path))
}

/// Unpins the IPC and UTS namespaces of `pod_id` (and the PID one, whose init
/// [`crate::runtime::pod::init::stop`] kills) (idempotent) and removes the `ns/<pod>` dir when empty.
pub fn unpin(state: &Path, pod_id: &str) {
    for n in ["ipc", "uts", "pid", "user"] {
        let _ = nspin::unpin(&nspin::path(state, pod_id, n));
    }
    nspin::remove_dir_if_empty(&nspin::path(state, pod_id, "ipc"));
}

/// Writes the pod's files and mounts its shm.
pub fn write_files(p: &PodRecord, hostname: &str) -> Result<()> {
    let dir = &p.dir;
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let w = |name: &str, text: String| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io("write", &path))
    };
    w("hostname", format!("{hostname}\n"))?;
    let host_net = p.spec.namespaces.network == NsMode::Node;
    if host_net {
        w(
            "hosts",
            std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
        )?;
    } else {
        let mut hosts = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
        );
        for ip in &p.ips {
            hosts.push_str(&format!("{ip}\t{hostname}\n"));
        }
        w("hosts", hosts)?;
    }
    let resolv = match &p.spec.dns {
        Some(d) if !(d.servers.is_empty() && d.searches.is_empty() && d.options.is_empty()) => {
            let mut s = String::new();
            if !d.searches.is_empty() {
                s.push_str(&format!("search {}\n", d.searches.join(" ")));
            }
            for n in &d.servers {
                s.push_str(&format!("nameserver {n}\n"));
            }
            if !d.options.is_empty() {
                s.push_str(&format!("options {}\n", d.options.join(" ")));
            }
            s
        }
        _ => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    };
    w("resolv.conf", resolv)?;
    if p.spec.namespaces.ipc != NsMode::Node {
        let shm = dir.join("shm");
        std::fs::create_dir_all(&shm).map_err(io("create", &shm))?;
        if !is_mounted(&shm) {
            mount(
                Some("shm"),
                &shm,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some(format!("mode=1777,{SHM_SIZE}").as_str()),
            )
            .map_err(|e| RuntimeError::Io {
                op: "mount shm",
                path: shm.clone(),
                source: e.into(),
            })?;
        }
    }
    Ok(())
}

fn is_mounted(p: &Path) -> bool {
    let parent = p.parent().unwrap_or(p);
    match (nix::sys::stat::stat(p), nix::sys::stat::stat(parent)) {
        (Ok(a), Ok(b)) => a.st_dev != b.st_dev,
        _ => false,
    }
}

/// Unmounts the pod's shm (idempotent).
pub fn unmount_shm(dir: &Path) {
    let shm = dir.join("shm");
    while is_mounted(&shm) {
        if umount2(&shm, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

/// Removes the pod directory (after [`unmount_shm`]).
pub fn remove_dir(dir: &Path) {
    unmount_shm(dir);
    let _ = std::fs::remove_dir_all(dir);
}

/// Checks sysctls against the namespaced, safe set for this pod's namespaces.
/// The DNS config goes line by line into the pod's resolv.conf: a server must be an IP
/// address, a search domain or option one word (a line break in either wrote lines of its
/// own into the file).
pub fn check_dns(p: &crate::runtime::types::PodSpec) -> Result<()> {
    let Some(d) = &p.dns else { return Ok(()) };
    for s in &d.servers {
        if s.parse::<std::net::IpAddr>().is_err() {
            return Err(RuntimeError::Invalid(format!(
                "dns_config: server {s:?} is not an IP address"
            )));
        }
    }
    for (what, v) in d
        .searches
        .iter()
        .map(|v| ("search", v))
        .chain(d.options.iter().map(|v| ("option", v)))
    {
        if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RuntimeError::Invalid(format!(
                "dns_config: {what} {v:?} is empty or holds white space"
            )));
        }
    }
    Ok(())
}

pub fn check_sysctls(p: &crate::runtime::types::PodSpec) -> Result<()> {
    for k in p.sysctls.keys() {
        let ipc = k.starts_with("kernel.shm")
            || k.starts_with("kernel.msg")
            || k == "kernel.sem"
            || k.starts_with("fs.mqueue.");
        let net = k.starts_with("net.");
        let uts = k == "kernel.hostname" || k == "kernel.domainname";
        if ipc {
            if p.namespaces.ipc == NsMode::Node {
                return Err(RuntimeError::Invalid(format!(
                    "sysctl {k} is not allowed with the host IPC namespace"
                )));
            }
        } else if net {
            if p.namespaces.network == NsMode::Node {
                return Err(RuntimeError::Invalid(format!(
                    "sysctl {k} is not allowed with the host network namespace"
                )));
            }
        } else if uts {
            if p.namespaces.network == NsMode::Node {
                return Err(RuntimeError::Invalid(format!(
                    "sysctl {k} is not allowed with the host UTS namespace"
                )));
            }
        } else {
            return Err(RuntimeError::Invalid(format!(
                "sysctl {k} is not namespaced (unsafe)"
            )));
        }
        if k.contains("..") || k.contains('/') && k.contains("..") {
            return Err(RuntimeError::Invalid(format!("sysctl {k} is malformed")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed pin leaves the PID namespace's pin alone: teardown needs it to find the
    /// pod init (issue 13: each failed RunPodSandbox used to leak its init and cgroups).
    #[tokio::test]
    async fn failed_pin_keeps_the_pid_pin() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (unshare of UTS/IPC namespaces)");
            return;
        }
        let state = tempfile::tempdir().unwrap();
        let pid_pin = crate::runtime::pod::init::pin_path(state.path(), "p1");
        std::fs::create_dir_all(pid_pin.parent().unwrap()).unwrap();
        std::fs::write(&pid_pin, b"").unwrap();
        // 65 bytes: sethostname refuses it after both namespaces were made and pinned.
        let e = pin_namespaces(state.path(), "p1", true, true, &"h".repeat(65))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("pin ipc/uts"), "{e}");
        assert!(pid_pin.exists(), "the pid pin was removed");
        let dir = state.path().join("ns/p1");
        assert!(!dir.join("ipc").exists() && !dir.join("uts").exists());
        unpin(state.path(), "p1");
        assert!(!dir.exists());
    }
}
