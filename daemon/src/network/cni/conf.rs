//! Loading the CNI network configuration: the first `.conflist`, `.conf` or `.json` file
//! of the conf dir in lexical order (as kubelet-era runtimes do). A single-plugin
//! `.conf`/`.json` is turned into a one-plugin list.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::super::error::{NetworkError, Result};

/// CNI spec versions crust speaks (0.3.x results have the 0.4.0 shape).
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A loaded network configuration list.
#[derive(Debug, Clone)]
pub struct NetworkList {
    /// Network name.
    pub name: String,
    /// Spec version of the list (and of its results).
    pub cni_version: String,
    /// `disableCheck` of the list.
    pub disable_check: bool,
    /// Plugin configurations, in order.
    pub plugins: Vec<Map<String, Value>>,
    /// The list as JSON bytes (what the result cache stores).
    pub bytes: Vec<u8>,
    /// File it came from (empty when from a cache).
    pub path: PathBuf,
}

impl NetworkList {
    /// The `type` of plugin `i`.
    pub fn plugin_type(&self, i: usize) -> &str {
        self.plugins[i]
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Whether results have the 0.4.0+ shape and prevResult goes to DEL/CHECK.
    pub fn has_prev_result_on_del(&self) -> bool {
        !matches!(self.cni_version.as_str(), "0.3.0" | "0.3.1")
    }
}

/// Config files of `dir` in lexical order.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conflist" | "conf" | "json")
                )
        })
        .collect();
    out.sort();
    out
}

/// The network of the first config file of `dir`, `None` when there is none.
pub fn load_dir(dir: &Path) -> Result<Option<NetworkList>> {
    let Some(path) = files(dir).into_iter().next() else {
        return Ok(None);
    };
    let bytes = fs::read(&path).map_err(|e| NetworkError::CniConfig {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    parse(&bytes, &path).map(Some)
}

/// Parses a `.conflist` (has `plugins`) or a single-plugin `.conf`.
pub fn parse(bytes: &[u8], path: &Path) -> Result<NetworkList> {
    let bad = |reason: String| NetworkError::CniConfig {
        path: path.to_path_buf(),
        reason,
    };
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Value::Object(mut top) = v else {
        return Err(bad("not a JSON object".into()));
    };
    let name = top
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("missing \"name\"".into()))?
        .to_string();
    let cni_version = top
        .get("cniVersion")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing \"cniVersion\"".into()))?
        .to_string();
    if !SUPPORTED_VERSIONS.contains(&cni_version.as_str()) {
        return Err(bad(format!(
            "cniVersion {cni_version} unsupported (supported: {SUPPORTED_VERSIONS:?})"
        )));
    }
    let disable_check = top
        .get("disableCheck")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (plugins, list_bytes) = match top.remove("plugins") {
        Some(Value::Array(ps)) => {
            let mut plugins = Vec::new();
            for p in ps {
                match p {
                    Value::Object(m) => plugins.push(m),
                    _ => return Err(bad("a plugin is not a JSON object".into())),
                }
            }
            (plugins, bytes.to_vec())
        }
        Some(_) => return Err(bad("\"plugins\" is not an array".into())),
        None => {
            let list = serde_json::json!({
                "cniVersion": cni_version,
                "name": name,
                "plugins": [Value::Object(top.clone())],
            });
            (vec![top], serde_json::to_vec(&list).unwrap_or_default())
        }
    };
    if plugins.is_empty() {
        return Err(bad("no plugins".into()));
    }
    for p in &plugins {
        let ty = p.get("type").and_then(Value::as_str).unwrap_or_default();
        if ty.is_empty() || ty.contains('/') || ty.starts_with('.') {
            return Err(bad(format!(
                "plugin type {ty:?} is not a plain binary name"
            )));
        }
    }
    Ok(NetworkList {
        name,
        cni_version,
        disable_check,
        plugins,
        bytes: list_bytes,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_cni_conf_first_file_lexical_and_conf_to_list() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_dir(dir.path()).unwrap().is_none());
        fs::write(dir.path().join("README"), "x").unwrap();
        fs::write(
            dir.path().join("20-b.conf"),
            r#"{"cniVersion":"0.4.0","name":"b","type":"bridge"}"#,
        )
        .unwrap();
        let l = load_dir(dir.path()).unwrap().unwrap();
        assert_eq!((l.name.as_str(), l.plugins.len()), ("b", 1));
        fs::write(
            dir.path().join("10-a.conflist"),
            r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"},{"type":"portmap"}]}"#,
        )
        .unwrap();
        let l = load_dir(dir.path()).unwrap().unwrap();
        assert_eq!(l.name, "a");
        assert_eq!(l.plugin_type(1), "portmap");
    }

    #[test]
    fn network_cni_conf_rejects_bad_input() {
        let p = Path::new("x.conflist");
        for bad in [
            "nope",
            r#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#,
            r#"{"cniVersion":"9.9.9","name":"n","plugins":[{"type":"bridge"}]}"#,
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../x"}]}"#,
        ] {
            let e = parse(bad.as_bytes(), p).unwrap_err();
            assert!(e.to_string().contains("x.conflist"), "{e}");
        }
    }
}
