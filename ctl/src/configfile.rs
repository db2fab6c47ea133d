//! crictl's pod and container config files (JSON or YAML, the CRI messages with
//! snake_case keys). The CRI types need every field when deserialized, so the file is
//! merged over a template that has every field (nested messages included) first.

use std::path::Path;

use anyhow::Context as _;
use k8s_cri::v1 as cri;
use serde_json::Value;

fn read(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => {
            serde_yaml::from_str(&text).with_context(|| format!("parse {}", path.display()))?
        }
    };
    anyhow::ensure!(v.is_object(), "{}: not an object", path.display());
    Ok(v)
}

/// Deep-merges `user` over `template`; arrays take element templates from `items`.
fn merge(template: &Value, user: &Value, items: &dyn Fn(&str) -> Option<Value>) -> Value {
    match (template, user) {
        (Value::Object(t), Value::Object(u)) => {
            let mut out = t.clone();
            for (k, uv) in u {
                let merged = match (t.get(k), uv) {
                    (Some(tv @ Value::Object(_)), Value::Object(_)) => merge(tv, uv, items),
                    (_, Value::Array(a)) => match items(k) {
                        Some(it) => Value::Array(a.iter().map(|e| merge(&it, e, items)).collect()),
                        None => uv.clone(),
                    },
                    _ => uv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        _ => user.clone(),
    }
}

fn to<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn items(k: &str) -> Option<Value> {
    match k {
        "port_mappings" => Some(to(cri::PortMapping::default())),
        "envs" => Some(to(cri::KeyValue::default())),
        "mounts" => Some(to(cri::Mount::default())),
        "devices" => Some(to(cri::Device::default())),
        "hugepage_limits" => Some(to(cri::HugepageLimit::default())),
        _ => None,
    }
}

/// A pod sandbox config file.
pub fn pod(path: &Path) -> anyhow::Result<cri::PodSandboxConfig> {
    let template = to(cri::PodSandboxConfig {
        metadata: Some(Default::default()),
        dns_config: Some(Default::default()),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(Default::default()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let mut v = merge(&template, &read(path)?, &items);
    if v.get("dns_config").is_some_and(|d| {
        d.as_object().is_some_and(|o| {
            o.values()
                .all(|x| x.as_array().is_some_and(|a| a.is_empty()))
        })
    }) {
        v["dns_config"] = Value::Null;
    }
    serde_json::from_value(v).with_context(|| format!("pod config {}", path.display()))
}

/// A container config file.
pub fn container(path: &Path) -> anyhow::Result<cri::ContainerConfig> {
    let template = to(cri::ContainerConfig {
        metadata: Some(Default::default()),
        image: Some(Default::default()),
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(Default::default()),
            security_context: Some(cri::LinuxContainerSecurityContext {
                capabilities: Some(Default::default()),
                namespace_options: Some(Default::default()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    });
    let v = merge(&template, &read(path)?, &items);
    let mut c: cri::ContainerConfig = serde_json::from_value(v)
        .with_context(|| format!("container config {}", path.display()))?;
    // crictl leaves the pid namespace per container unless the file says otherwise.
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        let given = read(path)?
            .pointer("/linux/security_context/namespace_options")
            .is_some();
        if !given {
            sc.namespace_options = Some(cri::NamespaceOption {
                pid: cri::NamespaceMode::Container as i32,
                ..Default::default()
            });
        }
    }
    Ok(c)
}
