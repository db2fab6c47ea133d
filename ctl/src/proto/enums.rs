//! The CRI fields whose type is a protobuf enum. prost turns them into plain `i32`s, so
//! nothing in the generated types says a field is an enum; this table does, for printing
//! names (`"CONTAINER_RUNNING"`) and for reading them from config files (`"TCP"`).
//! `every_enum_field_of_the_cri_is_listed` checks it against the CRI's `.proto`.

use k8s_cri::v1 as cri;

/// One CRI enum type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enum {
    Protocol,
    MountPropagation,
    NamespaceMode,
    SupplementalGroupsPolicy,
    ProfileType,
    PodSandboxState,
    ContainerState,
    ContainerEventType,
    MetricType,
    CgroupDriver,
}

/// (message, field, enum) for every enum-typed field of the CRI v1 API.
const FIELDS: &[(&str, &str, Enum)] = &[
    ("PortMapping", "protocol", Enum::Protocol),
    ("Mount", "propagation", Enum::MountPropagation),
    ("UserNamespace", "mode", Enum::NamespaceMode),
    ("NamespaceOption", "network", Enum::NamespaceMode),
    ("NamespaceOption", "pid", Enum::NamespaceMode),
    ("NamespaceOption", "ipc", Enum::NamespaceMode),
    ("WindowsNamespaceOption", "network", Enum::NamespaceMode),
    (
        "LinuxSandboxSecurityContext",
        "supplemental_groups_policy",
        Enum::SupplementalGroupsPolicy,
    ),
    (
        "LinuxContainerSecurityContext",
        "supplemental_groups_policy",
        Enum::SupplementalGroupsPolicy,
    ),
    ("SecurityProfile", "profile_type", Enum::ProfileType),
    ("PodSandboxStatus", "state", Enum::PodSandboxState),
    ("PodSandboxStateValue", "state", Enum::PodSandboxState),
    ("PodSandbox", "state", Enum::PodSandboxState),
    ("ContainerStateValue", "state", Enum::ContainerState),
    ("Container", "state", Enum::ContainerState),
    ("ContainerStatus", "state", Enum::ContainerState),
    (
        "ContainerEventResponse",
        "container_event_type",
        Enum::ContainerEventType,
    ),
    ("Metric", "metric_type", Enum::MetricType),
    (
        "LinuxRuntimeConfiguration",
        "cgroup_driver",
        Enum::CgroupDriver,
    ),
];

/// The enum type of `message.field`, if it is an enum.
pub fn of(message: &str, field: &str) -> Option<Enum> {
    FIELDS
        .iter()
        .find(|(m, f, _)| *m == message && *f == field)
        .map(|(_, _, e)| *e)
}

impl Enum {
    /// The name of value `v`, as the `.proto` spells it.
    pub fn name(self, v: i32) -> Option<&'static str> {
        use cri::security_profile::ProfileType;
        Some(match self {
            Enum::Protocol => cri::Protocol::try_from(v).ok()?.as_str_name(),
            Enum::MountPropagation => cri::MountPropagation::try_from(v).ok()?.as_str_name(),
            Enum::NamespaceMode => cri::NamespaceMode::try_from(v).ok()?.as_str_name(),
            Enum::SupplementalGroupsPolicy => cri::SupplementalGroupsPolicy::try_from(v)
                .ok()?
                .as_str_name(),
            Enum::ProfileType => ProfileType::try_from(v).ok()?.as_str_name(),
            Enum::PodSandboxState => cri::PodSandboxState::try_from(v).ok()?.as_str_name(),
            Enum::ContainerState => cri::ContainerState::try_from(v).ok()?.as_str_name(),
            Enum::ContainerEventType => cri::ContainerEventType::try_from(v).ok()?.as_str_name(),
            Enum::MetricType => cri::MetricType::try_from(v).ok()?.as_str_name(),
            Enum::CgroupDriver => cri::CgroupDriver::try_from(v).ok()?.as_str_name(),
        })
    }

    /// The value named `name` (exactly as the `.proto` spells it).
    pub fn value(self, name: &str) -> Option<i32> {
        use cri::security_profile::ProfileType;
        Some(match self {
            Enum::Protocol => cri::Protocol::from_str_name(name)? as i32,
            Enum::MountPropagation => cri::MountPropagation::from_str_name(name)? as i32,
            Enum::NamespaceMode => cri::NamespaceMode::from_str_name(name)? as i32,
            Enum::SupplementalGroupsPolicy => {
                cri::SupplementalGroupsPolicy::from_str_name(name)? as i32
            }
            Enum::ProfileType => ProfileType::from_str_name(name)? as i32,
            Enum::PodSandboxState => cri::PodSandboxState::from_str_name(name)? as i32,
            Enum::ContainerState => cri::ContainerState::from_str_name(name)? as i32,
            Enum::ContainerEventType => cri::ContainerEventType::from_str_name(name)? as i32,
            Enum::MetricType => cri::MetricType::from_str_name(name)? as i32,
            Enum::CgroupDriver => cri::CgroupDriver::from_str_name(name)? as i32,
        })
    }

    /// Every name, for error messages.
    pub fn names(self) -> Vec<&'static str> {
        (0..16).filter_map(|v| self.name(v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(Enum::ContainerState.name(1), Some("CONTAINER_RUNNING"));
        assert_eq!(Enum::Protocol.value("TCP"), Some(0));
        assert_eq!(Enum::Protocol.value("SCTP"), Some(2));
        assert_eq!(Enum::ProfileType.value("Localhost"), Some(2));
        assert_eq!(
            Enum::NamespaceMode.names(),
            ["POD", "CONTAINER", "NODE", "TARGET"]
        );
        assert_eq!(of("NamespaceOption", "pid"), Some(Enum::NamespaceMode));
        assert_eq!(of("NamespaceOption", "target_id"), None);
    }

    /// The table against the CRI's own `.proto` as the k8s-cri crate ships it (found in
    /// cargo's registry); skipped, saying so, when the source is not on this machine.
    #[test]
    fn every_enum_field_of_the_cri_is_listed() {
        let Some(proto) = k8s_cri_proto() else {
            eprintln!("skipped: k8s-cri's proto/v1.proto not found in cargo's registry");
            return;
        };
        let text = std::fs::read_to_string(&proto).expect("read proto");
        let mut enums = vec![];
        for l in text.lines() {
            if let Some(n) = l.trim().strip_prefix("enum ") {
                enums.push(n.trim_end_matches(" {").trim().to_string());
            }
        }
        let (mut msg, mut found) = (Vec::<String>::new(), vec![]);
        for l in text.lines() {
            let t = l.trim();
            if let Some(n) = t.strip_prefix("message ") {
                msg.push(n.trim_end_matches(" {").trim().to_string());
                continue;
            }
            if t.starts_with("enum ") {
                msg.push(String::new());
                continue;
            }
            if t == "}" {
                msg.pop();
                continue;
            }
            let t = t.strip_prefix("repeated ").unwrap_or(t);
            let mut w = t.split_whitespace();
            if let (Some(ty), Some(field), Some("=")) = (w.next(), w.next(), w.next()) {
                let ty = ty.rsplit('.').next().unwrap_or(ty);
                if enums.iter().any(|e| e == ty) {
                    found.push((msg.last().cloned().unwrap_or_default(), field.to_string()));
                }
            }
        }
        assert!(found.len() >= 10, "parsed too few enum fields: {found:?}");
        for (m, f) in &found {
            assert!(
                of(m, f).is_some(),
                "{m}.{f} is an enum field missing from FIELDS"
            );
        }
        assert_eq!(found.len(), FIELDS.len(), "{found:?}");
    }

    /// The k8s-cri version Cargo.lock pins, in cargo's registry sources.
    fn k8s_cri_proto() -> Option<std::path::PathBuf> {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).ok()?;
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"k8s-cri\"\n"))?
            .lines()
            .find_map(|l| l.strip_prefix("version = "))?
            .trim_matches('"')
            .to_string();
        let home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo"))
            })?;
        for idx in std::fs::read_dir(home.join("registry/src")).ok()? {
            let p = idx
                .ok()?
                .path()
                .join(format!("k8s-cri-{version}/proto/v1.proto"));
            if p.is_file() {
                return Some(p);
            }
        }
        None
    }
}
