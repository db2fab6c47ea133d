//! crictl's pod and container config files: JSON or YAML documents of the CRI messages
//! `PodSandboxConfig` and `ContainerConfig`, with the `.proto` field names (`log_directory`)
//! as crictl reads them; JSON names (`logDirectory`) and enum names (`"TCP"`) work too. A
//! field of the wrong type is an error naming its path (`port_mappings[0].container_port`);
//! an unknown key is a warning naming it, so a typo such as `"comand"` never silently runs
//! the image's default command. See [`lenient`] for the rules.

pub mod lenient;

use std::path::Path;

use anyhow::Context as _;
use k8s_cri::v1 as cri;
use serde_json::Value;

fn read_value(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(je) if text.trim_start().starts_with('{') => {
            return Err(je).with_context(|| format!("parse {} as JSON", path.display()))
        }
        Err(_) => serde_yaml::from_str(&text)
            .with_context(|| format!("parse {} as YAML", path.display()))?,
    };
    anyhow::ensure!(
        v.is_object(),
        "{}: not a document of fields (an object)",
        path.display()
    );
    Ok(v)
}

/// Reads `path` as a `T`, warning on stderr about every unknown key.
fn read<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let (t, unknown) = lenient::read::<T>(read_value(path)?)
        .map_err(|e| anyhow::anyhow!("{what} {}: {e}", path.display()))?;
    for k in unknown {
        eprintln!(
            "crustctl: warning: {what} {}: unknown field {k:?} ignored",
            path.display()
        );
    }
    Ok(t)
}

/// A pod sandbox config file.
pub fn pod(path: &Path) -> anyhow::Result<cri::PodSandboxConfig> {
    read(path, "pod config")
}

/// A container config file. Without `linux.security_context.namespace_options` the
/// container gets its own PID namespace, as kubelet asks for a pod that does not share
/// its process namespace.
pub fn container(path: &Path) -> anyhow::Result<cri::ContainerConfig> {
    let mut c: cri::ContainerConfig = read(path, "container config")?;
    let sc = c
        .linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default);
    sc.namespace_options
        .get_or_insert_with(|| cri::NamespaceOption {
            pid: cri::NamespaceMode::Container as i32,
            ..Default::default()
        });
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(f.path(), text).expect("write");
        f
    }

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<(T, Vec<String>), String> {
        let v: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        lenient::read::<T>(v).map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_files_fill_every_field_with_its_zero_value() {
        let (c, unknown): (cri::ContainerConfig, _) =
            parse(r#"{"metadata": {"name": "box"}, "image": {"image": "busybox"}}"#).unwrap();
        assert!(unknown.is_empty());
        assert_eq!(c.metadata.unwrap().name, "box");
        assert_eq!(c.image.unwrap().image, "busybox");
        assert!(c.command.is_empty() && c.linux.is_none());
        let (p, _): (cri::PodSandboxConfig, _) = parse("metadata:\n  name: p\n").unwrap();
        assert!(p.dns_config.is_none() && p.port_mappings.is_empty());
    }

    #[test]
    fn unknown_keys_are_reported_with_their_path() {
        let (c, unknown): (cri::ContainerConfig, _) = parse(
            r#"{"metadata": {"name": "box", "atempt": 1}, "comand": ["sh"], "labels": {"any": "x"}}"#,
        )
        .unwrap();
        assert_eq!(unknown, ["comand", "metadata.atempt"]);
        assert!(c.command.is_empty());
        assert_eq!(c.labels["any"], "x");
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let e = parse::<cri::PodSandboxConfig>(
            r#"{"port_mappings": [{"container_port": 80}, {"container_port": "eighty"}]}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("port_mappings[1].container_port: invalid type: string \"eighty\""),
            "{e}"
        );
        let e = parse::<cri::ContainerConfig>(
            r#"{"linux": {"resources": {"memory_limit_in_bytes": "1G"}}}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("linux.resources.memory_limit_in_bytes: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn enums_by_number_or_name_and_json_names() {
        let (p, unknown): (cri::PodSandboxConfig, _) = parse(
            r#"{"portMappings": [{"protocol": "UDP", "container_port": 53}, {"protocol": 2}],
                "linux": {"security_context": {"namespace_options": {"network": "NODE", "pid": 1}}},
                "Hostname": "h"}"#,
        )
        .unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(p.port_mappings[0].protocol, cri::Protocol::Udp as i32);
        assert_eq!(p.port_mappings[0].container_port, 53);
        assert_eq!(p.port_mappings[1].protocol, cri::Protocol::Sctp as i32);
        let ns = p
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .namespace_options
            .unwrap();
        assert_eq!(ns.network, cri::NamespaceMode::Node as i32);
        assert_eq!(ns.pid, cri::NamespaceMode::Container as i32);
        assert_eq!(p.hostname, "h");
        let e = parse::<cri::PodSandboxConfig>(r#"{"port_mappings": [{"protocol": "TPC"}]}"#)
            .unwrap_err();
        assert!(
            e.contains("port_mappings[0].protocol") && e.contains("TCP, UDP, SCTP"),
            "{e}"
        );
    }

    /// The namespace options of a parsed container config (present in every case here).
    fn namespace_options(c: cri::ContainerConfig) -> cri::NamespaceOption {
        c.linux
            .and_then(|l| l.security_context)
            .and_then(|s| s.namespace_options)
            .expect("namespace_options")
    }

    #[test]
    fn container_gets_its_own_pid_namespace_unless_told() {
        let f = file("metadata: {name: c}\n");
        let c = container(f.path()).unwrap();
        let ns = namespace_options(c);
        assert_eq!(ns.pid, cri::NamespaceMode::Container as i32);
        let f = file(r#"{"linux": {"security_context": {"namespace_options": {"pid": "POD"}}}}"#);
        let c = container(f.path()).unwrap();
        let ns = namespace_options(c);
        assert_eq!(ns.pid, cri::NamespaceMode::Pod as i32);
        let f = file("{\"metadata\": ");
        assert!(container(f.path())
            .unwrap_err()
            .to_string()
            .contains("as JSON"));
    }
}
