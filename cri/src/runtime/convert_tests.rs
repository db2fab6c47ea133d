//! Table-driven tests of every CRI <-> core conversion in [`super`]: each row is a CRI
//! message (or core record) and the value it must become, or the gRPC code it is refused
//! with.

use super::*;
use crust_daemon::runtime::ProcessUser;
use tonic::Code;

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

fn userns_opt(mode: i32, mapped: bool) -> cri::UserNamespace {
    let map = |host_id| cri::IdMapping {
        host_id,
        container_id: 0,
        length: 65536,
    };
    cri::UserNamespace {
        mode,
        uids: if mapped { vec![map(65536)] } else { vec![] },
        gids: if mapped { vec![map(65536)] } else { vec![] },
    }
}

/// userns_options: NODE and kubelet's POD mappings are taken (and reported back the same);
/// every other mode and every malformed mapping is refused, never run with the host's ids.
#[test]
fn userns_options_table() {
    let with = |u: Option<cri::UserNamespace>| {
        let mut o = ns_opt(
            cri::NamespaceMode::Pod,
            cri::NamespaceMode::Pod,
            cri::NamespaceMode::Pod,
        );
        o.userns_options = u;
        o
    };
    let node = cri::NamespaceMode::Node as i32;
    let pod = cri::NamespaceMode::Pod as i32;
    for ok in [None, Some(userns_opt(node, false))] {
        assert_eq!(namespaces(Some(&with(ok))).unwrap(), Namespaces::default());
    }
    let got = namespaces(Some(&with(Some(userns_opt(pod, true))))).unwrap();
    let m = IdMapping {
        container_id: 0,
        host_id: 65536,
        size: 65536,
    };
    assert_eq!(got.user, Some(UserNamespace { uid: m, gid: m }));
    assert_eq!(cri_userns(got.user.as_ref()), userns_opt(pod, true));
    assert_eq!(cri_userns(None), userns_opt(node, false));

    type Edit = fn(&mut cri::UserNamespace);
    let bad: [(Edit, &str); 10] = [
        (
            |u| u.mode = cri::NamespaceMode::Container as i32,
            "mode CONTAINER",
        ),
        (
            |u| u.mode = cri::NamespaceMode::Target as i32,
            "mode TARGET",
        ),
        (|u| u.mode = 42, "unknown mode 42"),
        (
            |u| u.mode = cri::NamespaceMode::Node as i32,
            "mode NODE takes no uid/gid mappings",
        ),
        (
            |u| u.uids.clear(),
            "uids: exactly one mapping is supported, got 0",
        ),
        (
            |u| u.gids = vec![u.gids[0], u.gids[0]],
            "gids: exactly one mapping is supported, got 2",
        ),
        (
            |u| u.uids[0].container_id = 1,
            "uids: the mapping must start at container id 0, not 1",
        ),
        (
            |u| u.gids[0].length = 1000,
            "gids: the mapping length must be 65536, not 1000",
        ),
        (
            |u| u.uids[0].host_id = 0,
            "uids: host id 0 with length 65536",
        ),
        (
            |u| u.uids[0].host_id = u32::MAX - 10,
            "uids: host id 4294967285",
        ),
    ];
    for (edit, names) in bad {
        let mut u = userns_opt(pod, true);
        edit(&mut u);
        let o = with(Some(u));
        let e = namespaces(Some(&o)).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{names}: {e:?}");
        assert!(e.message().contains("userns_options"), "{}", e.message());
        assert!(e.message().contains(names), "{names}: {}", e.message());
        // Both RunPodSandbox and CreateContainer carry it.
        let pod = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: "p".into(),
                ..Default::default()
            }),
            linux: Some(cri::LinuxPodSandboxConfig {
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(o.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = pod_spec(pod, String::new()).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{names}: {e:?}");
        let ctr = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: "c".into(),
                attempt: 0,
            }),
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(o),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = container_spec(ctr).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{names}: {e:?}");
    }
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
    let bad: [(Edit, &str); 5] = [
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
    ];
    for (edit, names) in bad {
        let mut c = full.clone();
        edit(&mut c);
        let e = pod_spec(c, String::new()).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{names}: {e:?}");
        assert!(e.message().contains(names), "{names}: {}", e.message());
    }
}

#[test]
fn seccomp_table() {
    use cri::security_profile::ProfileType;
    let profile = |t: i32, r: &str| cri::SecurityProfile {
        profile_type: t,
        localhost_ref: r.into(),
    };
    let ok = [
        (
            Some(profile(ProfileType::RuntimeDefault as i32, "")),
            "",
            Seccomp::RuntimeDefault,
        ),
        (
            Some(profile(ProfileType::Unconfined as i32, "")),
            "",
            Seccomp::Unconfined,
        ),
        (
            Some(profile(ProfileType::Localhost as i32, "/p.json")),
            "",
            Seccomp::Localhost("/p.json".into()),
        ),
        // The structured field wins over the legacy path.
        (
            Some(profile(ProfileType::Unconfined as i32, "")),
            "runtime/default",
            Seccomp::Unconfined,
        ),
        (None, "", Seccomp::Unconfined),
        (None, "unconfined", Seccomp::Unconfined),
        (None, "runtime/default", Seccomp::RuntimeDefault),
        (None, "docker/default", Seccomp::RuntimeDefault),
        (
            None,
            "localhost//p.json",
            Seccomp::Localhost("/p.json".into()),
        ),
    ];
    for (p, legacy, want) in ok {
        assert_eq!(
            seccomp(p.as_ref(), legacy).unwrap(),
            want,
            "{p:?} {legacy:?}"
        );
    }
    for (p, legacy) in [
        (Some(profile(42, "")), ""),
        (None, "apparmor/x"),
        (None, "bogus"),
    ] {
        let e = seccomp(p.as_ref(), legacy).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{p:?} {legacy:?}");
    }
}

fn cri_resources() -> cri::LinuxContainerResources {
    cri::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 1 << 30,
        oom_score_adj: 100,
        cpuset_cpus: "0-1".into(),
        cpuset_mems: "0".into(),
        hugepage_limits: vec![cri::HugepageLimit {
            page_size: "2MB".into(),
            limit: 1 << 21,
        }],
        unified: HashMap::from([("memory.high".into(), "1000000".into())]),
        memory_swap_limit_in_bytes: 2 << 30,
    }
}

fn core_resources() -> Resources {
    Resources {
        cpu_period: 100_000,
        cpu_quota: 50_000,
        cpu_shares: 512,
        memory_limit_in_bytes: 1 << 30,
        memory_swap_limit_in_bytes: 2 << 30,
        oom_score_adj: 100,
        cpuset_cpus: "0-1".into(),
        cpuset_mems: "0".into(),
        hugepage_limits: BTreeMap::from([("2MB".into(), 1 << 21)]),
        unified: BTreeMap::from([("memory.high".into(), "1000000".into())]),
    }
}

#[test]
fn resources_table() {
    assert_eq!(resources(None), Resources::default());
    assert_eq!(
        resources(Some(&cri::LinuxContainerResources::default())),
        Resources::default()
    );
    assert_eq!(resources(Some(&cri_resources())), core_resources());
}

fn cri_container() -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: cmd("c"),
        image: Some(cri::ImageSpec {
            image: "busybox:1".into(),
            ..Default::default()
        }),
        command: vec!["/bin/sh".into()],
        args: vec!["-c".into(), "true".into()],
        working_dir: "/w".into(),
        envs: vec![
            cri::KeyValue {
                key: "B".into(),
                value: "2".into(),
            },
            cri::KeyValue {
                key: "A".into(),
                value: "1".into(),
            },
        ],
        mounts: vec![
            cri::Mount {
                container_path: "/data".into(),
                host_path: "/srv/data".into(),
                readonly: true,
                propagation: cri::MountPropagation::PropagationHostToContainer as i32,
                ..Default::default()
            },
            cri::Mount {
                container_path: "/shared".into(),
                host_path: "/srv/shared".into(),
                propagation: cri::MountPropagation::PropagationBidirectional as i32,
                ..Default::default()
            },
        ],
        devices: vec![cri::Device {
            container_path: "/dev/xnull".into(),
            host_path: "/dev/null".into(),
            permissions: "rw".into(),
        }],
        labels: HashMap::from([("l".into(), "1".into())]),
        annotations: HashMap::from([("a".into(), "2".into())]),
        log_path: "c/0.log".into(),
        stdin: true,
        stdin_once: true,
        tty: true,
        linux: Some(cri::LinuxContainerConfig {
            resources: Some(cri_resources()),
            security_context: Some(cri::LinuxContainerSecurityContext {
                capabilities: Some(cri::Capability {
                    add_capabilities: vec!["NET_ADMIN".into()],
                    drop_capabilities: vec!["KILL".into()],
                    ..Default::default()
                }),
                privileged: false,
                namespace_options: Some(ns_opt(
                    cri::NamespaceMode::Pod,
                    cri::NamespaceMode::Pod,
                    cri::NamespaceMode::Pod,
                )),
                run_as_user: Some(cri::Int64Value { value: 1000 }),
                run_as_group: Some(cri::Int64Value { value: 2000 }),
                run_as_username: String::new(),
                readonly_rootfs: true,
                supplemental_groups: vec![3000],
                no_new_privs: true,
                masked_paths: vec!["/proc/kcore".into()],
                readonly_paths: vec!["/proc/sys".into()],
                seccomp: Some(cri::SecurityProfile {
                    profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

#[test]
fn container_spec_table() {
    let got = container_spec(cri_container()).unwrap();
    let want = ContainerSpec {
        name: "c".into(),
        attempt: 3,
        image: "busybox:1".into(),
        command: vec!["/bin/sh".into()],
        args: vec!["-c".into(), "true".into()],
        working_dir: "/w".into(),
        // Order kept: later entries override earlier ones when the spec is built.
        envs: vec![("B".into(), "2".into()), ("A".into(), "1".into())],
        mounts: vec![
            MountSpec {
                container_path: "/data".into(),
                host_path: "/srv/data".into(),
                readonly: true,
                propagation: Propagation::HostToContainer,
                ..Default::default()
            },
            MountSpec {
                container_path: "/shared".into(),
                host_path: "/srv/shared".into(),
                readonly: false,
                propagation: Propagation::Bidirectional,
                ..Default::default()
            },
        ],
        devices: vec![DeviceSpec {
            container_path: "/dev/xnull".into(),
            host_path: "/dev/null".into(),
            permissions: "rw".into(),
        }],
        labels: BTreeMap::from([("l".into(), "1".into())]),
        annotations: BTreeMap::from([("a".into(), "2".into())]),
        cdi_devices: vec![],
        log_path: "c/0.log".into(),
        stdin: true,
        stdin_once: true,
        tty: true,
        resources: core_resources(),
        security: Security {
            add_capabilities: vec!["NET_ADMIN".into()],
            drop_capabilities: vec!["KILL".into()],
            privileged: false,
            namespaces: Namespaces::default(),
            run_as_user: Some(1000),
            run_as_group: Some(2000),
            run_as_username: String::new(),
            readonly_rootfs: true,
            supplemental_groups: vec![3000],
            supplemental_groups_policy: GroupsPolicy::Merge,
            no_new_privs: true,
            masked_paths: vec!["/proc/kcore".into()],
            readonly_paths: vec!["/proc/sys".into()],
            seccomp: Seccomp::RuntimeDefault,
        },
    };
    assert_eq!(got, want);

    // Without namespace options (or a security context) every namespace is the pod's: the
    // CRI enum's zero value is POD, for pid too, as with containerd (issue 13).
    let mut c = cri_container();
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.namespace_options = None;
    }
    let n = container_spec(c).unwrap().security.namespaces;
    assert_eq!(
        (n.network, n.pid, n.ipc),
        (NsMode::Pod, NsMode::Pod, NsMode::Pod)
    );
    // A mode this CRI does not know (7) is refused for the pod and the container alike.
    let mut c = cri_container();
    if let Some(o) = c
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|sc| sc.namespace_options.as_mut())
    {
        o.ipc = 7;
    }
    let e = container_spec(c).unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("namespace_options.ipc"),
        "{}",
        e.message()
    );
    let mut c = cri_container();
    if let Some(l) = c.linux.as_mut() {
        l.security_context = None;
    }
    let n = container_spec(c).unwrap().security.namespaces;
    assert_eq!(
        (n.network, n.pid, n.ipc),
        (NsMode::Pod, NsMode::Pod, NsMode::Pod)
    );

    // Private propagation, and the legacy seccomp path.
    let mut c = cri_container();
    c.mounts[0].propagation = cri::MountPropagation::PropagationPrivate as i32;
    #[allow(deprecated)]
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.seccomp = None;
        sc.seccomp_profile_path = "localhost//p.json".into();
    }
    let s = container_spec(c).unwrap();
    assert_eq!(s.mounts[0].propagation, Propagation::Private);
    assert_eq!(s.security.seccomp, Seccomp::Localhost("/p.json".into()));

    // The smallest valid config: metadata only.
    let s = container_spec(cri::ContainerConfig {
        metadata: cmd("m"),
        ..Default::default()
    })
    .unwrap();
    assert_eq!((s.name.as_str(), s.image.as_str()), ("m", ""));
    assert_eq!(s.resources, Resources::default());

    type Edit = fn(&mut cri::ContainerConfig);
    let bad: [(Edit, &str); 3] = [
        (|c| c.metadata = None, "metadata"),
        (|c| c.mounts[1].propagation = 7, "propagation 7"),
        (
            |c| {
                if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
                    sc.seccomp = Some(cri::SecurityProfile {
                        profile_type: 9,
                        localhost_ref: String::new(),
                    });
                }
            },
            "seccomp profile type 9",
        ),
    ];
    for (edit, names) in bad {
        let mut c = cri_container();
        edit(&mut c);
        let e = container_spec(c).unwrap_err();
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

fn container_record(state: ContainerState) -> ContainerRecord {
    let spec = container_spec(cri_container()).unwrap();
    ContainerRecord {
        version: 1,
        id: "c1".into(),
        pod_id: "pod1".into(),
        mounts: spec.mounts.clone(),
        spec,
        image_id: "sha256:img".into(),
        image_ref: "busybox@sha256:abc".into(),
        state,
        created_at: 1,
        started_at: 2,
        finished_at: 3,
        exit_code: 137,
        reason: "OOMKilled".into(),
        message: "m".into(),
        pid: 0,
        snapshot: "s".into(),
        bundle: "/b".into(),
        log_path: "/var/log/pods/x/c/0.log".into(),
        stop_signal: String::new(),
        cgroup_path: String::new(),
        oom_reported: false,
        user: None,
        image_volumes: Vec::new(),
    }
}

#[test]
fn container_out_table() {
    for (state, want) in [
        (
            ContainerState::Created,
            cri::ContainerState::ContainerCreated,
        ),
        (
            ContainerState::Running,
            cri::ContainerState::ContainerRunning,
        ),
        (ContainerState::Exited, cri::ContainerState::ContainerExited),
        (
            ContainerState::Unknown,
            cri::ContainerState::ContainerUnknown,
        ),
    ] {
        let c = container_record(state);
        assert_eq!(container_state(&c), want as i32);
        let l = container(&c);
        assert_eq!(
            (
                l.id.as_str(),
                l.pod_sandbox_id.as_str(),
                l.state,
                l.created_at
            ),
            ("c1", "pod1", want as i32, 1)
        );
        assert_eq!(
            (l.image_ref.as_str(), l.image_id.as_str()),
            ("busybox@sha256:abc", "sha256:img")
        );
        assert_eq!(l.image.map(|i| i.image), Some("busybox:1".into()));
        assert_eq!(
            l.metadata,
            Some(cri::ContainerMetadata {
                name: "c".into(),
                attempt: 3
            })
        );
    }
    let s = container_status(&container_record(ContainerState::Exited));
    assert_eq!(
        (s.created_at, s.started_at, s.finished_at, s.exit_code),
        (1, 2, 3, 137)
    );
    assert_eq!(
        (s.reason.as_str(), s.message.as_str(), s.log_path.as_str()),
        ("OOMKilled", "m", "/var/log/pods/x/c/0.log")
    );
    let mounts: Vec<_> = s
        .mounts
        .iter()
        .map(|m| (m.container_path.as_str(), m.readonly, m.propagation))
        .collect();
    assert_eq!(
        mounts,
        [
            (
                "/data",
                true,
                cri::MountPropagation::PropagationHostToContainer as i32
            ),
            (
                "/shared",
                false,
                cri::MountPropagation::PropagationBidirectional as i32
            ),
        ]
    );
    // Resources report what was asked (the CRI fields ContainerStatus carries).
    let r = s.resources.unwrap().linux.unwrap();
    let want = cri_resources();
    assert_eq!(
        (
            r.cpu_period,
            r.cpu_quota,
            r.cpu_shares,
            r.memory_limit_in_bytes
        ),
        (
            want.cpu_period,
            want.cpu_quota,
            want.cpu_shares,
            want.memory_limit_in_bytes
        )
    );
    assert_eq!(
        (
            r.oom_score_adj,
            r.cpuset_cpus,
            r.cpuset_mems,
            r.memory_swap_limit_in_bytes
        ),
        (
            want.oom_score_adj,
            want.cpuset_cpus,
            want.cpuset_mems,
            want.memory_swap_limit_in_bytes
        )
    );
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

/// `CDI_devices` reach the core by name (resolved at create); a `cdi.k8s.io/` annotation
/// is kept as an annotation (the core reads the names from it), one with no name after the
/// prefix is refused.
#[test]
fn cdi_devices_table() {
    let mut c = cri_container();
    c.cdi_devices = vec![
        cri::CdiDevice {
            name: "vendor.com/gpu=0".into(),
        },
        cri::CdiDevice {
            name: "vendor.com/gpu=1".into(),
        },
    ];
    c.annotations
        .insert("cdi.k8s.io/plugin".into(), "vendor.com/gpu=2".into());
    let s = container_spec(c).unwrap();
    assert_eq!(s.cdi_devices, ["vendor.com/gpu=0", "vendor.com/gpu=1"]);
    assert_eq!(s.annotations["cdi.k8s.io/plugin"], "vendor.com/gpu=2");
    let mut c = cri_container();
    c.annotations
        .insert("cdi.k8s.io/".into(), "vendor.com/gpu=2".into());
    let e = container_spec(c).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("\"cdi.k8s.io/\""), "{e:?}");
}

/// Merge and Strict reach the core from the container's security context; the pod's is
/// checked (an unknown value is refused) but has nothing to apply to.
#[test]
fn supplemental_groups_policy_table() {
    let with = |v: i32| {
        let mut c = cri_container();
        if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
            sc.supplemental_groups_policy = v;
        }
        container_spec(c)
    };
    let strict = cri::SupplementalGroupsPolicy::Strict as i32;
    assert_eq!(
        with(strict).unwrap().security.supplemental_groups_policy,
        GroupsPolicy::Strict
    );
    assert_eq!(
        with(0).unwrap().security.supplemental_groups_policy,
        GroupsPolicy::Merge
    );
    let pod = |v: i32| {
        pod_spec(
            cri::PodSandboxConfig {
                metadata: md("p"),
                linux: Some(cri::LinuxPodSandboxConfig {
                    security_context: Some(cri::LinuxSandboxSecurityContext {
                        supplemental_groups_policy: v,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            String::new(),
        )
    };
    assert!(pod(strict).is_ok());
    let e = pod(3).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("pod supplemental_groups_policy 3"),
        "{e:?}"
    );
}

/// ContainerStatus.user is the identity recorded at create; none for older records.
#[test]
fn container_status_user() {
    let mut r = container_record(ContainerState::Running);
    assert_eq!(container_status(&r).user, None);
    r.user = Some(ProcessUser {
        uid: 1000,
        gid: 2000,
        additional_gids: vec![3000, 10],
    });
    let u = container_status(&r).user.and_then(|u| u.linux).unwrap();
    assert_eq!(
        (u.uid, u.gid, u.supplemental_groups),
        (1000, 2000, vec![3000, 10])
    );
}

/// `Mount.recursive_read_only` reaches the core and comes back in ContainerStatus.
#[test]
fn recursive_read_only_both_ways() {
    let mut c = cri_container();
    c.mounts[0].recursive_read_only = true;
    let s = container_spec(c).unwrap();
    assert!(s.mounts[0].recursive_read_only);
    assert!(!s.mounts[1].recursive_read_only);
    let mut r = container_record(ContainerState::Running);
    r.mounts = s.mounts;
    let st = container_status(&r);
    assert!(st.mounts[0].recursive_read_only);
    assert!(!st.mounts[1].recursive_read_only);
}

/// `Mount.image` becomes an image volume (read-only even if not asked so) and comes back
/// in ContainerStatus; an empty ImageSpec is no image volume.
#[test]
fn image_volume_both_ways() {
    let mut c = cri_container();
    c.mounts[1].host_path = String::new();
    c.mounts[1].image = Some(cri::ImageSpec {
        image: "registry/data:1".into(),
        ..Default::default()
    });
    c.mounts[0].image = Some(cri::ImageSpec::default());
    let s = container_spec(c).unwrap();
    assert_eq!(s.mounts[1].image, "registry/data:1");
    assert!(s.mounts[1].readonly);
    assert_eq!(s.mounts[0].image, "");
    let mut r = container_record(ContainerState::Running);
    r.mounts = s.mounts;
    let st = container_status(&r);
    assert_eq!(
        st.mounts[1].image.as_ref().unwrap().image,
        "registry/data:1"
    );
    assert!(st.mounts[1].readonly);
    assert_eq!(st.mounts[0].image, None);
}
