//! crustd's configuration: built-in defaults, overridden by an optional TOML file
//! (default `/etc/crust/config.toml`; unknown keys are an error), overridden by flags.
//!
//! ```toml
//! root = "/var/lib/crust"          # persistent state: content, snapshots, metadata
//! state = "/run/crust"             # volatile state: socket, runtime state
//! listen = "/run/crust/crust.sock" # unix socket (mode 0600)
//! log_level = "info"               # tracing filter (RUST_LOG overrides)
//!
//! [runtime]
//! shim = "crust-shim"              # shim binary (path, or name found next to crustd / in PATH)
//! runtime = "crust-runc"           # OCI runtime the shim runs
//! cgroup_root = "/crust"           # cgroup parent of pods that name none (cgroupfs driver)
//! cgroup_driver = "cgroupfs"       # "cgroupfs" or "systemd" (must match kubelet's cgroupDriver)
//!
//! [network]
//! enabled = true                   # false: pods get loopback only
//! bridge = "crust0"                # built-in bridge (used when no CNI config exists)
//! subnet = "10.88.0.0/16"          # built-in bridge subnet (default: pod CIDR, else this)
//! cni_conf_dir = "/etc/cni/net.d"
//! cni_bin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]
//!
//! [streaming]
//! address = "127.0.0.1:0"          # exec/attach/port-forward server; port 0: any free port
//! token_ttl_secs = 60              # how long a URL from Exec/Attach/PortForward stays valid
//!
//! [registry]
//! docker_config = "/root/.docker/config.json"
//! max_concurrent_downloads = 4
//! [registry.hosts."docker.io"]
//! mirrors = ["http://127.0.0.1:5000"]  # tried in order; a "not found" does not fall back
//! skip_upstream = false
//! [registry.hosts."registry.local:5000"]
//! plain_http = true
//! ```

use std::path::{Path, PathBuf};

use crust_daemon::images::RegistryConfig;
use serde::{Deserialize, Serialize};

/// Default persistent root.
pub const DEFAULT_ROOT: &str = "/var/lib/crust";
/// Default volatile state directory.
pub const DEFAULT_STATE: &str = "/run/crust";
/// Default socket.
pub const DEFAULT_LISTEN: &str = crust_client::DEFAULT_SOCKET;
/// Default config file.
pub const DEFAULT_CONFIG: &str = "/etc/crust/config.toml";

/// The configuration file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Persistent root.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Volatile state directory.
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// Socket path.
    #[serde(default)]
    pub listen: Option<PathBuf>,
    /// Log filter.
    #[serde(default)]
    pub log_level: Option<String>,
    /// Registry hosts and credentials.
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Shim and OCI runtime.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Pod networking.
    #[serde(default)]
    pub network: NetworkSection,
    /// The streaming server (exec, attach, port-forward).
    #[serde(default)]
    pub streaming: StreamingSection,
}

/// `[streaming]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamingSection {
    /// `IP:PORT` to listen on (default `127.0.0.1:0`: loopback, any free port).
    #[serde(default)]
    pub address: Option<String>,
    /// Lifetime of the single-use URLs, seconds (default 60).
    #[serde(default)]
    pub token_ttl_secs: Option<u64>,
}

impl StreamingSection {
    /// The listen address, checked.
    pub fn socket_addr(&self) -> Result<std::net::SocketAddr, String> {
        let a = self
            .address
            .as_deref()
            .unwrap_or(crate::streaming::DEFAULT_ADDRESS);
        a.parse()
            .map_err(|_| format!("streaming.address {a:?} is not IP:PORT"))
    }

    /// The token lifetime, checked (1 s .. 1 day).
    pub fn token_ttl(&self) -> Result<std::time::Duration, String> {
        match self.token_ttl_secs {
            None => Ok(crate::streaming::DEFAULT_TOKEN_TTL),
            Some(s) if (1..=86_400).contains(&s) => Ok(std::time::Duration::from_secs(s)),
            Some(s) => Err(format!(
                "streaming.token_ttl_secs {s} is out of range 1..86400"
            )),
        }
    }
}

/// `[runtime]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Shim binary.
    #[serde(default)]
    pub shim: Option<PathBuf>,
    /// OCI runtime binary.
    #[serde(default)]
    pub runtime: Option<PathBuf>,
    /// Cgroup parent for pods without one.
    #[serde(default)]
    pub cgroup_root: Option<String>,
    /// How container cgroups are made (default cgroupfs).
    #[serde(default)]
    pub cgroup_driver: Option<CgroupDriver>,
}

/// `runtime.cgroup_driver`: who makes the cgroups of pods and containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// crust-runc writes the cgroup directories itself.
    #[default]
    Cgroupfs,
    /// Containers are systemd transient scopes under the pod's slice (cgroup v2 only).
    Systemd,
}

/// `[network]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSection {
    /// Whether pods get a network (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Built-in bridge name.
    #[serde(default)]
    pub bridge: Option<String>,
    /// Built-in bridge subnet.
    #[serde(default)]
    pub subnet: Option<String>,
    /// CNI config dir.
    #[serde(default)]
    pub cni_conf_dir: Option<PathBuf>,
    /// CNI plugin dirs.
    #[serde(default)]
    pub cni_bin_dirs: Option<Vec<PathBuf>>,
}

/// Config loading failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("read config {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("parse config {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: toml::de::Error,
    },
    /// The `[streaming]` section is invalid.
    #[error("config {path}: {message}")]
    Streaming {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A registry host entry is invalid.
    #[error("config {path}")]
    Registry {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: crust_daemon::images::hosts::HostConfigError,
    },
}

impl Config {
    /// Loads `path`; a missing file gives the defaults only when `required` is false.
    pub fn load(path: &Path, required: bool) -> Result<Self, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default())
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        let c: Config = toml::from_str(&text).map_err(|source| Error::Parse {
            path: path.into(),
            source,
        })?;
        c.registry.validate().map_err(|source| Error::Registry {
            path: path.into(),
            source,
        })?;
        let streaming = |message| Error::Streaming {
            path: path.into(),
            message,
        };
        c.streaming.socket_addr().map_err(streaming)?;
        c.streaming.token_ttl().map_err(streaming)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_defaults_and_reject_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        assert_eq!(Config::load(&p, false).unwrap(), Config::default());
        assert!(Config::load(&p, true).is_err());
        std::fs::write(
            &p,
            "root = \"/x\"\n[registry.hosts.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:1\"]\n",
        )
        .unwrap();
        let c = Config::load(&p, false).unwrap();
        assert_eq!(c.root.as_deref(), Some(Path::new("/x")));
        assert_eq!(c.registry.hosts["docker.io"].mirrors.len(), 1);
        std::fs::write(
            &p,
            "[streaming]\naddress = \"0.0.0.0:10010\"\ntoken_ttl_secs = 5\n",
        )
        .unwrap();
        let c = Config::load(&p, false).unwrap();
        assert_eq!(c.streaming.socket_addr().unwrap().port(), 10010);
        assert_eq!(c.streaming.token_ttl().unwrap().as_secs(), 5);
        std::fs::write(&p, "[streaming]\naddress = \"localhost\"\n").unwrap();
        let e = crate::status::message(&Config::load(&p, false).unwrap_err());
        assert!(e.contains("streaming.address"), "{e}");
        std::fs::write(&p, "[runtime]\ncgroup_driver = \"systemd\"\n").unwrap();
        let c = Config::load(&p, false).unwrap();
        assert_eq!(c.runtime.cgroup_driver, Some(CgroupDriver::Systemd));
        std::fs::write(&p, "[runtime]\ncgroup_driver = \"SystemD\"\n").unwrap();
        let e = crate::status::message(&Config::load(&p, false).unwrap_err());
        assert!(e.contains("cgroup_driver") && e.contains("cgroupfs"), "{e}");
        std::fs::write(&p, "[streaming]\ntoken_ttl_secs = 0\n").unwrap();
        assert!(Config::load(&p, false).is_err());
        std::fs::write(&p, "rooot = \"/x\"\n").unwrap();
        let e = Config::load(&p, false).unwrap_err();
        assert!(
            crate::status::message(&e).contains("rooot"),
            "{}",
            crate::status::message(&e)
        );
    }
}
