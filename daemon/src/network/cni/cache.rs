//! The CNI result cache, compatible in layout and format with libcni's: one JSON file
//! per attachment at `<cache>/results/<network>-<container>-<ifname>` holding
//! `kind: "cniCacheV1"`, the network list bytes (base64, as Go marshals `[]byte`), the
//! CNI args, capability args and the ADD result. DEL reads it to get `prevResult` and
//! the config the pod was set up with, so DEL works after a restart or config change.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::bridge::write_atomic;
use super::super::error::{NetworkError, Result};

/// `kind` of a version 1 entry.
pub const KIND: &str = "cniCacheV1";

/// One cached attachment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Always [`KIND`].
    pub kind: String,
    /// Container (sandbox) id.
    pub container_id: String,
    /// The network list, base64.
    pub config: String,
    /// Interface name.
    pub if_name: String,
    /// Network name.
    pub network_name: String,
    /// Namespace path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    /// CNI_ARGS pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_args: Vec<[String; 2]>,
    /// Capability args given at ADD.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub capability_args: Value,
    /// The ADD result; null while ADD is in progress (or was cut short).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub result: Value,
}

impl Entry {
    /// The cached network list bytes.
    pub fn config_bytes(&self) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.config)
            .ok()
    }

    /// Encodes list bytes for [`Entry::config`].
    pub fn encode_config(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// The cache under a directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// Entries live in `<root>/results/`.
    pub fn new(root: &Path) -> Self {
        Cache {
            dir: root.join("results"),
        }
    }

    fn path(&self, network: &str, container: &str, ifname: &str) -> PathBuf {
        self.dir.join(format!("{network}-{container}-{ifname}"))
    }

    /// Stores `e`.
    pub fn put(&self, e: &Entry) -> Result<()> {
        let path = self.path(&e.network_name, &e.container_id, &e.if_name);
        let bytes = serde_json::to_vec(e).map_err(|err| NetworkError::State {
            path: path.clone(),
            source: err.into(),
        })?;
        write_atomic(&path, &bytes)
    }

    /// Removes the entry (missing is fine).
    pub fn remove(&self, network: &str, container: &str, ifname: &str) -> Result<()> {
        let path = self.path(network, container, ifname);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(NetworkError::State { path, source }),
        }
    }

    /// Every readable entry.
    pub fn list(&self) -> Vec<Entry> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<Entry>(&b).ok())
            .filter(|e| e.kind == KIND)
            .collect()
    }

    /// Entries of one container.
    pub fn of_container(&self, container: &str) -> Vec<Entry> {
        self.list()
            .into_iter()
            .filter(|e| e.container_id == container)
            .collect()
    }
}
