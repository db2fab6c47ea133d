//! Pod sandbox conversions: namespace modes, the pod spec, and pod records out.

use super::*;

#[test]
fn namespace_modes_both_ways() {
    let rows = [
        (cri::NamespaceMode::Pod as i32, NsMode::Pod),
        (cri::NamespaceMode::Container as i32, NsMode::Container),
        (cri::NamespaceMode::Node as i32, NsMode::Node),
        (cri::NamespaceMode::Target as i32, NsMode::Target),
    ];
    for (cri_value, core) in rows {
        assert_eq!(ns_mode(cri_value, "pid").unwrap(), core, "{cri_value}");
        assert_eq!(cri_ns(core), cri_value, "{core:?}");
    }
    // An enum value this CRI version does not know is refused, naming the field.
    for (field, v) in [("network", 7), ("pid", 99), ("ipc", -1)] {
        let e = ns_mode(v, field).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let want = format!("namespace_options.{field}: unknown NamespaceMode {v}");
        assert!(e.message().contains(&want), "{}", e.message());
    }
    assert_eq!(namespaces(None).unwrap(), Namespaces::default());
    let mut o = ns_opt(
        cri::NamespaceMode::Node,
        cri::NamespaceMode::Target,
        cri::NamespaceMode::Container,
    );
    o.target_id = "t1".into();
    assert_eq!(
        namespaces(Some(&o)).unwrap(),
        Namespaces {
            network: NsMode::Node,
            pid: NsMode::Target,
            ipc: NsMode::Container,
            target_id: "t1".into(),
            user: None,
        }
    );
}

#[test]
fn pod_spec_table() {
    let full = cri::PodSandboxConfig {
        metadata: md("p"),
        hostname: "h".into(),
        log_directory: "/var/log/pods/x".into(),
        dns_config: Some(cri::DnsConfig {
            servers: vec!["10.0.0.10".into()],
            searches: vec!["svc.local".into()],
            options: vec!["ndots:5".into()],
        }),
        port_mappings: vec![
            port(8080, 80, cri::Protocol::Tcp, ""),
            port(0, 81, cri::Protocol::Tcp, ""), // no host port: not a mapping
            port(5353, 53, cri::Protocol::Udp, "127.0.0.1"),
            port(9000, 9000, cri::Protocol::Sctp, "::1"),
        ],
        labels: HashMap::from([("l".into(), "1".into())]),
        annotations: HashMap::from([("a".into(), "2".into())]),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: "/kubepods/pod1".into(),
            sysctls: HashMap::from([("net.ipv4.ip_forward".into(), "1".into())]),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(ns_opt(
                    cri::NamespaceMode::Pod,
                    cri::NamespaceMode::Pod,
                    cri::NamespaceMode::Node,
                )),
                privileged: true,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let want = PodSpec {
        name: "p".into(),
        uid: "uid-1".into(),
        namespace: "ns-1".into(),
        attempt: 2,
        hostname: "h".into(),
        log_directory: "/var/log/pods/x".into(),
        dns: Some(Dns {
            servers: vec!["10.0.0.10".into()],
            searches: vec!["svc.local".into()],
            options: vec!["ndots:5".into()],
        }),
        port_mappings: vec![
            PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: None,
            },
            PortMapping {
                host_port: 5353,
                container_port: 53,
                protocol: Protocol::Udp,
                host_ip: Some("127.0.0.1".parse().unwrap()),
            },
            PortMapping {
                host_port: 9000,
                container_port: 9000,
                protocol: Protocol::Sctp,
                host_ip: Some("::1".parse().unwrap()),
            },
        ],
        labels: BTreeMap::from([("l".into(), "1".into())]),
        annotations: BTreeMap::from([("a".into(), "2".into())]),
        cgroup_parent: "/kubepods/pod1".into(),
        sysctls: BTreeMap::from([("net.ipv4.ip_forward".into(), "1".into())]),
        namespaces: Namespaces {
            network: NsMode::Pod,
            pid: NsMode::Pod,
            ipc: NsMode::Node,
            target_id: String::new(),
            user: None,
        },
        privileged: true,
        runtime_handler: "runc".into(),
    };
    assert_eq!(pod_spec(full.clone(), "runc".into()).unwrap(), want);

    // The smallest valid config: metadata only, everything else defaulted.
    let min = cri::PodSandboxConfig {
        metadata: md("m"),
        ..Default::default()
    };
    let got = pod_spec(min, String::new()).unwrap();
    assert_eq!((got.name.as_str(), got.dns.is_none()), ("m", true));
    assert_eq!(got.namespaces, Namespaces::default());

    // Refusals: (what changes, the message must name).
    type Edit = fn(&mut cri::PodSandboxConfig);
    let bad: [(Edit, &str); 7] = [
        (|c| c.metadata = None, "metadata"),
        (
            |c| {
                let sc = c.linux.as_mut().and_then(|l| l.security_context.as_mut());
                if let Some(o) = sc.and_then(|sc| sc.namespace_options.as_mut()) {
                    o.network = 7;
                }
            },
            "namespace_options.network: unknown NamespaceMode 7",
        ),
        (
            |c| c.port_mappings = vec![port(70000, 80, cri::Protocol::Tcp, "")],
            "host port 70000",
        ),
        (
            |c| c.port_mappings = vec![port(80, -1, cri::Protocol::Tcp, "")],
            "container port -1",
        ),
        (
            |c| c.port_mappings = vec![port(80, 80, cri::Protocol::Tcp, "not-an-ip")],
            "not-an-ip",
        ),
        (
            |c| c.port_mappings[2].protocol = 3,
            "port_mappings[2].protocol: unknown Protocol 3",
        ),
        // Refused even where the mapping has no host port (and maps nothing).
        (
            |c| c.port_mappings[1].protocol = -1,
            "port_mappings[1].protocol: unknown Protocol -1",
        ),
    ];
    for (edit, names) in bad {
        let mut c = full.clone();
        edit(&mut c);
        let e = pod_spec(c, String::new()).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{names}: {e:?}");
        assert!(e.message().contains(names), "{names}: {}", e.message());
    }
}

fn pod_record(state: PodState) -> PodRecord {
    let mut spec = pod_spec(
        cri::PodSandboxConfig {
            metadata: md("p"),
            labels: HashMap::from([("l".into(), "1".into())]),
            annotations: HashMap::from([("a".into(), "2".into())]),
            ..Default::default()
        },
        "h".into(),
    )
    .unwrap();
    spec.namespaces = Namespaces {
        network: NsMode::Node,
        pid: NsMode::Pod,
        ipc: NsMode::Container,
        target_id: String::new(),
        user: None,
    };
    PodRecord {
        version: 1,
        id: "pod1".into(),
        spec,
        state,
        created_at: 42,
        ips: vec!["10.0.0.2".into(), "fd00::2".into()],
        netns: None,
        ipcns: None,
        utsns: None,
        dir: "/run/p".into(),
        cgroup_parent: String::new(),
        shim_address: None,
        pidns: None,
        pod_init_pid: 0,
        cgroup_driver: Default::default(),
        userns: None,
    }
}

#[test]
fn pod_out_table() {
    for (state, want) in [
        (PodState::Ready, cri::PodSandboxState::SandboxReady),
        (PodState::NotReady, cri::PodSandboxState::SandboxNotready),
    ] {
        let p = pod_record(state);
        assert_eq!(pod_state(&p), want as i32);
        let l = pod(&p);
        assert_eq!(
            (
                l.id.as_str(),
                l.state,
                l.created_at,
                l.runtime_handler.as_str()
            ),
            ("pod1", want as i32, 42, "h")
        );
        assert_eq!(l.metadata, Some(pod_metadata(&p)));
        assert_eq!(l.labels, HashMap::from([("l".into(), "1".into())]));
        assert_eq!(l.annotations, HashMap::from([("a".into(), "2".into())]));
        let s = pod_status(&p);
        let net = s.network.unwrap();
        assert_eq!(net.ip, "10.0.0.2");
        assert_eq!(
            net.additional_ips,
            [cri::PodIp {
                ip: "fd00::2".into()
            }]
        );
        let o = s.linux.unwrap().namespaces.unwrap().options.unwrap();
        assert_eq!(
            (o.network, o.pid, o.ipc),
            (
                cri::NamespaceMode::Node as i32,
                cri::NamespaceMode::Pod as i32,
                cri::NamespaceMode::Container as i32
            )
        );
        assert_eq!(s.state, want as i32);
    }
    let md = pod_metadata(&pod_record(PodState::Ready));
    assert_eq!(
        (
            md.name.as_str(),
            md.uid.as_str(),
            md.namespace.as_str(),
            md.attempt
        ),
        ("p", "uid-1", "ns-1", 2)
    );
    // No IP (host network): empty, no additional ones.
    let mut p = pod_record(PodState::Ready);
    p.ips.clear();
    let net = pod_status(&p).network.unwrap();
    assert_eq!((net.ip.as_str(), net.additional_ips.len()), ("", 0));
}
