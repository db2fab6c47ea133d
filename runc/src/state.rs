//! The container's state directory `<root>/<id>/`: `state.json` (format version 1, below),
//! the exec fifo `exec.fifo` (present while the container is "created"), `seccomp.json`
//! (the compiled `linux.seccomp`, a [`crate::seccomp::Program`] as JSON, when the config has
//! a profile: `exec` installs it without compiling again), and how the status shown by
//! `state`/`list` is derived.
//!
//! `state.json` v1: `{"version":1,"id","initPid","initStartTime","bundle","rootfs","created",
//! "owner","annotations","cgroup","config"}`. `initStartTime` is field 22 of
//! /proc/<pid>/stat, so a recycled pid is never mistaken for the init. The file is written
//! to a temporary name and renamed, so readers never see half a file.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crust_cgroups::Cgroup;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

/// Name of the exec fifo inside the state dir (runc uses the same name).
pub const EXEC_FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";
const SECCOMP_FILE: &str = "seccomp.json";
/// OCI version reported by `state` (runc 1.1 reports this string too).
pub const OCI_VERSION: &str = "1.0.2-dev";

/// Errors of state handling.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container does not exist")]
    NotExist { id: String },
    #[error("container with id exists: {id}")]
    Exists { id: String },
    #[error("invalid container id {id:?}: must be non-empty and use only [A-Za-z0-9_+.-]")]
    BadId { id: String },
    #[error("read state {path:?}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parse state {path:?}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("write state {path:?}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Persistent record of one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub version: u32,
    pub id: String,
    pub init_pid: i32,
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: Option<Cgroup>,
    pub config: Spec,
}

/// What `state` and `list --format json` print, field for field as runc.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'static str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'static str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a HashMap<String, String>>,
}

/// Status as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Checks a container id the way runc does.
pub fn check_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId { id: id.into() })
    }
}

/// Writes the compiled seccomp filter into the state dir `dir`.
pub fn save_seccomp(dir: &Path, p: &crate::seccomp::Program) -> Result<(), StateError> {
    let path = dir.join(SECCOMP_FILE);
    serde_json::to_vec(p)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&path, b))
        .map_err(|source| StateError::Write { path, source })
}

/// The compiled seccomp filter saved by `create`, if any (None also for an unreadable one:
/// the caller compiles the profile then).
pub fn load_seccomp(dir: &Path) -> Option<crate::seccomp::Program> {
    let b = std::fs::read(dir.join(SECCOMP_FILE)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// The state dir of container `id` under `root`.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Start time (clock ticks since boot, field 22 of /proc/<pid>/stat) of `pid`, if it lives.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// The start time in a /proc/<pid>/stat line; None for a zombie or a malformed line. Bytes,
/// not text: comm is whatever the program named itself.
fn parse_start_time(stat: &[u8]) -> Option<u64> {
    // comm may contain spaces and parens: fields start after the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.trim_end().parse().ok()
}

impl ContainerState {
    /// Loads the state of `id` under `root`.
    pub fn load(root: &Path, id: &str) -> Result<Self, StateError> {
        check_id(id)?;
        let path = dir(root, id).join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotExist { id: id.into() })
            }
            Err(source) => return Err(StateError::Read { path, source }),
        };
        serde_json::from_slice(&text).map_err(|source| StateError::Parse { path, source })
    }

    /// Lists the ids of all containers under `root` (sorted).
    pub fn list_ids(root: &Path) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        ids
    }

    /// Atomically writes the state file into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(".state.json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| StateError::Write { path, source })
    }

    /// Whether the init process recorded here is still alive (and is the same process).
    /// Why [`Self::init_alive`] is false, for error messages ("gone", "a zombie", or the
    /// start-time mismatch of a reused pid).
    pub fn init_gone_reason(&self) -> String {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.init_pid));
        match (&stat, start_time(self.init_pid)) {
            (Err(e), _) => format!("init pid {} is gone ({e})", self.init_pid),
            (Ok(_), None) => format!("init pid {} has exited (zombie)", self.init_pid),
            (Ok(_), Some(t)) => format!(
                "pid {} started at tick {t}, the init at tick {}",
                self.init_pid, self.init_start_time
            ),
        }
    }

    pub fn init_alive(&self) -> bool {
        self.init_pid > 0 && start_time(self.init_pid) == Some(self.init_start_time)
    }

    /// Derives the status from the process, the exec fifo and the freezer.
    pub fn status(&self, root: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if dir(root, &self.id).join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if let Some(cg) = &self.cgroup {
            if cg.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    /// The runc `state` JSON object (runc's field order).
    pub fn to_oci(&self, root: &Path) -> OciState<'_> {
        let status = self.status(root);
        let pid = if status == Status::Stopped {
            0
        } else {
            self.init_pid
        };
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid,
            status: status.as_str(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            annotations: (!self.annotations.is_empty()).then_some(&self.annotations),
        }
    }

    /// The OCI state passed to hooks on stdin (runtime-spec `state` schema).
    pub fn hook_state(&self, status: &str, pid: i32) -> String {
        let mut v = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status,
            "bundle": self.bundle,
            "annotations": self.annotations,
        });
        if pid > 0 {
            v["pid"] = pid.into();
        }
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        check_id("abc-1_2+3.4").expect("ok");
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_time_parsing() {
        let line = |comm: &[u8], state: &str| {
            let mut v = b"4242 (".to_vec();
            v.extend_from_slice(comm);
            v.extend_from_slice(
                format!(") {state} 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615\n")
                    .as_bytes(),
            );
            v
        };
        assert_eq!(parse_start_time(&line(b"sleep", "S")), Some(987654));
        // A comm with spaces, parens and bytes that are not UTF-8.
        assert_eq!(parse_start_time(&line(b"a) (b \xff", "R")), Some(987654));
        assert_eq!(parse_start_time(&line(b"sleep", "Z")), None);
        assert_eq!(parse_start_time(b"4242 (x) S 1 2"), None);
        assert_eq!(parse_start_time(b""), None);
    }

    #[test]
    fn own_start_time() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
    }
}
