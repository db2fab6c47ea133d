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
//! cgroup_root = "/crust"           # cgroup parent of pods that name none ("crust.slice" with systemd)
//! cgroup_driver = "cgroupfs"       # "cgroupfs" or "systemd" (must match kubelet's cgroupDriver)
//! cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]  # CDI device specs, lowest priority first
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
//! [metrics]
//! address = "127.0.0.1:1338"       # Prometheus /metrics over HTTP; unset or "": off
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
//!
//! [`Config::effective`] fills every unset key with its default (and applies the flags), as
//! `crustd config` prints it; [`Config::restart_needed`] names the sections a SIGHUP cannot
//! apply.

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
/// Default cgroup parent of pods that name none.
pub const DEFAULT_CGROUP_ROOT: &str = "/crust";
/// Default `runtime.cgroup_root` with `cgroup_driver = "systemd"`: a slice.
pub const DEFAULT_SYSTEMD_CGROUP_ROOT: &str = crust_daemon::runtime::cgroup::DEFAULT_SYSTEMD_ROOT;
/// Default built-in bridge.
pub const DEFAULT_BRIDGE: &str = "crust0";
/// Default CNI config dir.
pub const DEFAULT_CNI_CONF_DIR: &str = "/etc/cni/net.d";
/// Default CNI plugin dirs.
pub const DEFAULT_CNI_BIN_DIRS: &[&str] = &["/opt/cni/bin", "/usr/lib/cni"];
/// Default layers downloaded at once per pull.
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: usize = 4;

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
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
}

/// `[metrics]`, as containerd's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// `IP:PORT` serving `/metrics` over HTTP; unset or empty: no endpoint (the default).
    #[serde(default)]
    pub address: Option<String>,
}

impl MetricsSection {
    /// The listen address, checked; None when metrics are off.
    pub fn socket_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        match self.address.as_deref() {
            None | Some("") => Ok(None),
            Some(a) => a
                .parse()
                .map(Some)
                .map_err(|_| format!("metrics.address {a:?} is not IP:PORT")),
        }
    }
}

/// The flags that override the file.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--root`.
    pub root: Option<PathBuf>,
    /// `--state`.
    pub state: Option<PathBuf>,
    /// `--listen` (a path or `unix:///path`).
    pub listen: Option<String>,
    /// `--log-level`.
    pub log_level: Option<String>,
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
    /// Directories of CDI spec files, lowest priority first (default `/etc/cdi`,
    /// `/var/run/cdi`).
    #[serde(default)]
    pub cdi_spec_dirs: Option<Vec<PathBuf>>,
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
    /// A value is out of its range or malformed.
    #[error("config {path}: {message}")]
    Invalid {
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
        let invalid = |message| Error::Invalid {
            path: path.into(),
            message,
        };
        c.streaming.socket_addr().map_err(invalid)?;
        c.streaming.token_ttl().map_err(invalid)?;
        c.metrics.socket_addr().map_err(invalid)?;
        if c.registry.max_concurrent_downloads == Some(0) {
            return Err(invalid(
                "registry.max_concurrent_downloads must be at least 1".into(),
            ));
        }
        Ok(c)
    }

    /// The configuration crustd runs with: `flags` over this file over the defaults, every
    /// key set (binaries resolved as crustd finds them; `network.subnet` stays unset when
    /// neither names it: the pod CIDR kubelet sends decides).
    pub fn effective(&self, flags: &Flags) -> Config {
        let mut c = self.clone();
        let path = |f: &Option<PathBuf>, v: &Option<PathBuf>, d: &str| {
            Some(f.clone().or_else(|| v.clone()).unwrap_or_else(|| d.into()))
        };
        c.root = path(&flags.root, &self.root, DEFAULT_ROOT);
        c.state = path(&flags.state, &self.state, DEFAULT_STATE);
        let listen = flags
            .listen
            .as_deref()
            .map(|l| PathBuf::from(l.strip_prefix("unix://").unwrap_or(l)));
        c.listen = path(&listen, &self.listen, DEFAULT_LISTEN);
        c.log_level = Some(
            flags
                .log_level
                .clone()
                .or_else(|| self.log_level.clone())
                .unwrap_or_else(|| crate::logging::DEFAULT_LEVEL.into()),
        );
        let r = &mut c.runtime;
        r.shim = Some(resolve_binary(r.shim.as_deref(), "crust-shim"));
        r.runtime = Some(resolve_binary(r.runtime.as_deref(), "crust-runc"));
        let systemd = r.cgroup_driver == Some(CgroupDriver::Systemd);
        r.cgroup_root.get_or_insert_with(|| {
            if systemd {
                DEFAULT_SYSTEMD_CGROUP_ROOT.into()
            } else {
                DEFAULT_CGROUP_ROOT.into()
            }
        });
        r.cdi_spec_dirs.get_or_insert_with(|| {
            crust_daemon::cdi::DEFAULT_SPEC_DIRS
                .iter()
                .map(PathBuf::from)
                .collect()
        });
        let n = &mut c.network;
        n.enabled.get_or_insert(true);
        n.bridge.get_or_insert_with(|| DEFAULT_BRIDGE.into());
        n.cni_conf_dir
            .get_or_insert_with(|| DEFAULT_CNI_CONF_DIR.into());
        n.cni_bin_dirs
            .get_or_insert_with(|| DEFAULT_CNI_BIN_DIRS.iter().map(PathBuf::from).collect());
        let st = &mut c.streaming;
        st.address
            .get_or_insert_with(|| crate::streaming::DEFAULT_ADDRESS.into());
        st.token_ttl_secs
            .get_or_insert(crate::streaming::DEFAULT_TOKEN_TTL.as_secs());
        c.metrics.address.get_or_insert_with(String::new);
        c.registry
            .max_concurrent_downloads
            .get_or_insert(DEFAULT_MAX_CONCURRENT_DOWNLOADS);
        c
    }

    /// The sections (and top-level keys) of `new` that differ from `self` and that only a
    /// restart applies: everything but `log_level`.
    pub fn restart_needed(&self, new: &Config) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut check = |changed: bool, name| {
            if changed {
                v.push(name);
            }
        };
        check(self.root != new.root, "root");
        check(self.state != new.state, "state");
        check(self.listen != new.listen, "listen");
        check(self.runtime != new.runtime, "[runtime]");
        check(self.network != new.network, "[network]");
        check(self.streaming != new.streaming, "[streaming]");
        check(self.metrics != new.metrics, "[metrics]");
        check(self.registry != new.registry, "[registry]");
        v
    }
}

/// A binary named in the config, else found next to crustd, else by name in PATH.
pub fn resolve_binary(given: Option<&Path>, name: &str) -> PathBuf {
    if let Some(g) = given {
        return g.to_path_buf();
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from(name)
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
        std::fs::write(&p, "[metrics]\naddress = \"127.0.0.1:9\"\n").unwrap();
        let c = Config::load(&p, false).unwrap();
        assert_eq!(c.metrics.socket_addr().unwrap().unwrap().port(), 9);
        std::fs::write(&p, "[metrics]\naddress = \"\"\n").unwrap();
        assert_eq!(
            Config::load(&p, false).unwrap().metrics.socket_addr(),
            Ok(None)
        );
        std::fs::write(&p, "[metrics]\naddress = \"loopback\"\n").unwrap();
        let e = crate::status::message(&Config::load(&p, false).unwrap_err());
        assert!(e.contains("metrics.address"), "{e}");
        std::fs::write(&p, "[registry]\nmax_concurrent_downloads = 0\n").unwrap();
        let e = crate::status::message(&Config::load(&p, false).unwrap_err());
        assert!(e.contains("max_concurrent_downloads"), "{e}");
        std::fs::write(&p, "rooot = \"/x\"\n").unwrap();
        let e = Config::load(&p, false).unwrap_err();
        assert!(
            crate::status::message(&e).contains("rooot"),
            "{}",
            crate::status::message(&e)
        );
    }

    #[test]
    fn effective_is_flags_over_file_over_defaults_and_prints_as_toml() {
        let file = Config {
            root: Some("/file/root".into()),
            state: Some("/file/state".into()),
            log_level: Some("debug".into()),
            ..Default::default()
        };
        let flags = Flags {
            state: Some("/flag/state".into()),
            listen: Some("unix:///flag/crust.sock".into()),
            ..Default::default()
        };
        let e = file.effective(&flags);
        assert_eq!(e.root.as_deref(), Some(Path::new("/file/root")));
        assert_eq!(e.state.as_deref(), Some(Path::new("/flag/state")));
        assert_eq!(e.listen.as_deref(), Some(Path::new("/flag/crust.sock")));
        assert_eq!(e.log_level.as_deref(), Some("debug"));
        assert_eq!(e.runtime.cgroup_root.as_deref(), Some(DEFAULT_CGROUP_ROOT));
        assert_eq!(e.network.enabled, Some(true));
        assert_eq!(e.streaming.token_ttl_secs, Some(60));
        assert_eq!(e.metrics.address.as_deref(), Some(""));
        assert_eq!(e.registry.max_concurrent_downloads, Some(4));
        let text = toml::to_string(&e).unwrap();
        // What crustd prints is a config crustd loads, to the same effective settings.
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.effective(&Flags::default()), e);
        assert!(text.contains("[metrics]"), "{text}");
        let d = Config::default().effective(&Flags::default());
        assert_eq!(d.root.as_deref(), Some(Path::new(DEFAULT_ROOT)));
        assert_eq!(d.log_level.as_deref(), Some("info"));
    }

    #[test]
    fn restart_needed_names_changed_sections_but_not_log_level() {
        let a = Config::default();
        let mut b = a.clone();
        b.log_level = Some("debug".into());
        assert!(a.restart_needed(&b).is_empty());
        b.network.enabled = Some(false);
        b.root = Some("/x".into());
        assert_eq!(a.restart_needed(&b), vec!["root", "[network]"]);
    }
}
