//! Container conversions: resources, the container spec, container records out, CDI
//! devices, supplemental groups policy and mounts.

use super::*;

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
        pod_oom_kills_at_start: None,
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
