//! Pod security settings: user namespaces and seccomp profiles.

use super::*;

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
