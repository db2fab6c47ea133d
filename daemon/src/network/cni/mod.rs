//! CNI per the spec (0.4.0 and 1.0.0; 0.3.x accepted): the network is the first config
//! of the conf dir ([`conf`]); each plugin of the list is run ([`exec`]) with the list's
//! name and cniVersion, the previous plugin's result as `prevResult`, and the
//! capability args it declares (`portMappings`, `bandwidth`, `ipRanges`) under
//! `runtimeConfig`. ADD runs the plugins in order, DEL in reverse with the cached ADD
//! result, CHECK in order with it. A pending cache entry ([`cache`], no result) is
//! written before the first plugin runs and completed with the result before ADD
//! returns; a failed ADD is undone by a DEL; an entry is dropped only when DEL
//! succeeds, so a failed DEL — or an ADD cut short by a crash — is retried by teardown
//! or start-up reconcile.

pub mod cache;
pub mod conf;
pub mod exec;
pub mod result;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{NetworkError, Result};
use super::types::{PodNetworkRequest, PodNetworkResult};
use cache::{Cache, Entry};
use conf::NetworkList;
use exec::Invocation;

/// Where CNI things are.
#[derive(Debug, Clone)]
pub struct CniConfig {
    /// Config dir (`/etc/cni/net.d`).
    pub conf_dir: PathBuf,
    /// Plugin dirs, searched in order (`/opt/cni/bin`, `/usr/lib/cni`).
    pub bin_dirs: Vec<PathBuf>,
    /// Cache root (`<root>/cni`); results in `results/`.
    pub cache_dir: PathBuf,
    /// Limit per plugin call.
    pub timeout: Duration,
    /// Interface name inside the pod.
    pub ifname: String,
}

/// A loaded CNI network.
#[derive(Debug, Clone)]
pub struct CniNetwork {
    cfg: CniConfig,
    list: NetworkList,
}

fn cni_args(req: &PodNetworkRequest) -> Vec<[String; 2]> {
    vec![
        ["IgnoreUnknown".into(), "1".into()],
        ["K8S_POD_NAMESPACE".into(), req.namespace.clone()],
        ["K8S_POD_NAME".into(), req.name.clone()],
        ["K8S_POD_INFRA_CONTAINER_ID".into(), req.pod_id.clone()],
        ["K8S_POD_UID".into(), req.uid.clone()],
    ]
}

fn join_args(args: &[[String; 2]]) -> String {
    args.iter()
        .map(|[k, v]| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The capability args of a request (only those with a value).
fn capability_args(req: &PodNetworkRequest) -> Map<String, Value> {
    let mut caps = Map::new();
    if !req.port_mappings.is_empty() {
        caps.insert(
            "portMappings".into(),
            serde_json::to_value(&req.port_mappings).unwrap_or_default(),
        );
    }
    if let Some(b) = &req.bandwidth {
        caps.insert(
            "bandwidth".into(),
            serde_json::to_value(b).unwrap_or_default(),
        );
    }
    if !req.ip_ranges.is_empty() {
        caps.insert(
            "ipRanges".into(),
            serde_json::to_value(&req.ip_ranges).unwrap_or_default(),
        );
    }
    caps
}

/// The stdin config of plugin `i`.
fn plugin_config(
    list: &NetworkList,
    i: usize,
    caps: &Map<String, Value>,
    prev: Option<&Value>,
) -> Vec<u8> {
    let mut conf = list.plugins[i].clone();
    conf.insert("name".into(), Value::String(list.name.clone()));
    conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    if let Some(p) = prev {
        conf.insert("prevResult".into(), p.clone());
    }
    let declared = conf
        .get("capabilities")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let runtime: Map<String, Value> = caps
        .iter()
        .filter(|(k, _)| declared.get(*k).and_then(Value::as_bool) == Some(true))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !runtime.is_empty() {
        conf.insert("runtimeConfig".into(), Value::Object(runtime));
    }
    serde_json::to_vec(&Value::Object(conf)).unwrap_or_default()
}

impl CniNetwork {
    /// The network of `cfg.conf_dir`, `None` when the dir holds no config.
    pub fn load(cfg: &CniConfig) -> Result<Option<Self>> {
        Ok(conf::load_dir(&cfg.conf_dir)?.map(|list| CniNetwork {
            cfg: cfg.clone(),
            list,
        }))
    }

    /// Network name.
    pub fn name(&self) -> &str {
        &self.list.name
    }

    /// The config file it came from.
    pub fn path(&self) -> &Path {
        &self.list.path
    }

    fn cache(&self) -> Cache {
        Cache::new(&self.cfg.cache_dir)
    }

    fn invocation<'a>(
        &'a self,
        command: &'static str,
        container_id: &'a str,
        netns: &'a Path,
        args: &'a str,
    ) -> Invocation<'a> {
        Invocation {
            command,
            container_id,
            netns,
            ifname: &self.cfg.ifname,
            args,
            bin_dirs: &self.cfg.bin_dirs,
            timeout: self.cfg.timeout,
        }
    }

    /// ADD: runs the plugins, caches and returns the result. On failure runs DEL.
    pub async fn add(&self, req: &PodNetworkRequest) -> Result<PodNetworkResult> {
        let args = cni_args(req);
        let args_s = join_args(&args);
        let caps = capability_args(req);
        let inv = self.invocation("ADD", &req.pod_id, &req.netns, &args_s);
        // A pending entry (no result) first: if crustd dies during ADD, reconcile finds
        // it and runs DEL, so nothing the plugins did so far leaks.
        let mut entry = Entry {
            kind: cache::KIND.into(),
            container_id: req.pod_id.clone(),
            config: Entry::encode_config(&self.list.bytes),
            if_name: self.cfg.ifname.clone(),
            network_name: self.list.name.clone(),
            netns: req.netns.display().to_string(),
            cni_args: args,
            capability_args: Value::Object(caps.clone()),
            result: Value::Null,
        };
        self.cache().put(&entry)?;
        let mut prev: Option<Value> = None;
        for i in 0..self.list.plugins.len() {
            let ty = self.list.plugin_type(i);
            let stdin = plugin_config(&self.list, i, &caps, prev.as_ref());
            let out = match exec::exec(ty, &inv, &stdin).await {
                Ok(o) => o,
                Err(e) => {
                    self.undo_add(req, &args_s, &caps, prev.as_ref()).await;
                    return Err(e);
                }
            };
            if out.iter().all(u8::is_ascii_whitespace) {
                continue; // keep the previous result
            }
            match serde_json::from_slice::<Value>(&out) {
                Ok(v) if v.is_object() => prev = Some(v),
                _ => {
                    self.undo_add(req, &args_s, &caps, prev.as_ref()).await;
                    return Err(NetworkError::CniResult {
                        plugin: ty.to_string(),
                        command: "ADD",
                        container: req.pod_id.clone(),
                        reason: format!("not a JSON object: {}", String::from_utf8_lossy(&out)),
                    });
                }
            }
        }
        let raw = prev.unwrap_or(Value::Object(Map::new()));
        let parsed = match result::parse(&raw, &self.cfg.ifname) {
            Ok(p) => p,
            Err(reason) => {
                self.undo_add(req, &args_s, &caps, Some(&raw)).await;
                return Err(NetworkError::CniResult {
                    plugin: self
                        .list
                        .plugin_type(self.list.plugins.len() - 1)
                        .to_string(),
                    command: "ADD",
                    container: req.pod_id.clone(),
                    reason,
                });
            }
        };
        entry.result = raw.clone();
        if let Err(e) = self.cache().put(&entry) {
            self.undo_add(req, &args_s, &caps, Some(&raw)).await;
            return Err(e);
        }
        Ok(parsed)
    }

    async fn undo_add(
        &self,
        req: &PodNetworkRequest,
        args: &str,
        caps: &Map<String, Value>,
        prev: Option<&Value>,
    ) {
        let inv = self.invocation("DEL", &req.pod_id, &req.netns, args);
        match del_list(&self.list, &inv, caps, prev).await {
            Ok(()) => {
                let c = self.cache();
                if let Err(e) = c.remove(&self.list.name, &req.pod_id, &self.cfg.ifname) {
                    tracing::warn!(pod = %req.pod_id, error = %e, "drop CNI cache entry");
                }
            }
            // The pending entry stays, so teardown or reconcile retries the DEL.
            Err(e) => tracing::warn!(pod = %req.pod_id, error = %e, "DEL after failed CNI ADD"),
        }
    }

    /// DEL for a pod that has no cache entry (spec: DEL must work without prevResult).
    pub async fn del_uncached(&self, req: &PodNetworkRequest) -> Result<()> {
        let args = join_args(&cni_args(req));
        let caps = capability_args(req);
        let inv = self.invocation("DEL", &req.pod_id, &req.netns, &args);
        del_list(&self.list, &inv, &caps, None).await
    }

    /// CHECK against the cached ADD result.
    pub async fn check(&self, req: &PodNetworkRequest) -> Result<()> {
        if !self.list.has_prev_result_on_del() || self.list.disable_check {
            return Ok(());
        }
        let entry = self
            .cache()
            .of_container(&req.pod_id)
            .into_iter()
            .find(|e| e.network_name == self.list.name)
            .ok_or_else(|| NetworkError::CheckFailed {
                pod: req.pod_id.clone(),
                reason: format!("no cached CNI ADD result for network {}", self.list.name),
            })?;
        let args = join_args(&entry.cni_args);
        let caps = entry
            .capability_args
            .as_object()
            .cloned()
            .unwrap_or_default();
        let inv = self.invocation("CHECK", &req.pod_id, &req.netns, &args);
        for i in 0..self.list.plugins.len() {
            let stdin = plugin_config(&self.list, i, &caps, Some(&entry.result));
            exec::exec(self.list.plugin_type(i), &inv, &stdin).await?;
        }
        Ok(())
    }
}

/// Runs DEL of every plugin of `list` in reverse order; all are tried, the first error
/// is returned.
async fn del_list(
    list: &NetworkList,
    inv: &Invocation<'_>,
    caps: &Map<String, Value>,
    prev: Option<&Value>,
) -> Result<()> {
    let prev = if list.has_prev_result_on_del() {
        prev
    } else {
        None
    };
    let mut first = None;
    for i in (0..list.plugins.len()).rev() {
        let stdin = plugin_config(list, i, caps, prev);
        if let Err(e) = exec::exec(list.plugin_type(i), inv, &stdin).await {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// DEL of every cached attachment of `container`, each with the config and result it
/// was added with. Returns how many were deleted; a failed entry stays cached.
pub async fn del_cached(cfg: &CniConfig, container: &str, netns: Option<&Path>) -> Result<usize> {
    let cache = Cache::new(&cfg.cache_dir);
    let mut n = 0;
    let mut first = None;
    for e in cache.of_container(container) {
        let list = e
            .config_bytes()
            .ok_or_else(|| "config is not base64".to_string())
            .and_then(|b| conf::parse(&b, Path::new("")).map_err(|e| e.to_string()));
        let list = match list {
            Ok(l) => l,
            Err(reason) => {
                tracing::warn!(container, reason, "unusable CNI cache entry dropped");
                cache.remove(&e.network_name, container, &e.if_name)?;
                continue;
            }
        };
        let ns = netns
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(&e.netns));
        let args = join_args(&e.cni_args);
        let caps = e.capability_args.as_object().cloned().unwrap_or_default();
        let inv = Invocation {
            command: "DEL",
            container_id: container,
            netns: &ns,
            ifname: &e.if_name,
            args: &args,
            bin_dirs: &cfg.bin_dirs,
            timeout: cfg.timeout,
        };
        let prev = (!e.result.is_null()).then_some(&e.result);
        match del_list(&list, &inv, &caps, prev).await {
            Ok(()) => {
                cache.remove(&e.network_name, container, &e.if_name)?;
                n += 1;
            }
            Err(err) => {
                first.get_or_insert(err);
            }
        }
    }
    first.map_or(Ok(n), Err)
}
