//! Table-driven tests of every CRI <-> core conversion in [`super`]: each row is a CRI
//! message (or core record) and the value it must become, or the gRPC code it is refused
//! with.

use super::*;
use crust_daemon::runtime::ProcessUser;
use tonic::Code;

mod container;
mod pod;
mod security;

fn md(name: &str) -> Option<cri::PodSandboxMetadata> {
    Some(cri::PodSandboxMetadata {
        name: name.into(),
        uid: "uid-1".into(),
        namespace: "ns-1".into(),
        attempt: 2,
    })
}

fn cmd(name: &str) -> Option<cri::ContainerMetadata> {
    Some(cri::ContainerMetadata {
        name: name.into(),
        attempt: 3,
    })
}

fn port(host: i32, container: i32, protocol: cri::Protocol, ip: &str) -> cri::PortMapping {
    cri::PortMapping {
        protocol: protocol as i32,
        container_port: container,
        host_port: host,
        host_ip: ip.into(),
    }
}

fn ns_opt(
    network: cri::NamespaceMode,
    pid: cri::NamespaceMode,
    ipc: cri::NamespaceMode,
) -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: network as i32,
        pid: pid as i32,
        ipc: ipc as i32,
        target_id: String::new(),
        userns_options: None,
    }
}

#[test]
fn label_selector_table() {
    let labels = BTreeMap::from([("a".to_string(), "1".to_string()), ("b".into(), "2".into())]);
    let rows: [(&[(&str, &str)], bool); 5] = [
        (&[], true),
        (&[("a", "1")], true),
        (&[("a", "1"), ("b", "2")], true),
        (&[("a", "2")], false),
        (&[("c", "1")], false),
    ];
    for (sel, want) in rows {
        let sel: HashMap<String, String> = sel
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(matches(&labels, &sel), want, "{sel:?}");
    }
}
