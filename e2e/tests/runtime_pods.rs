//! RuntimeService features: shared namespaces, security context, OOM, events, recovery
//! after kill -9, bad input.

use std::collections::HashMap;

use crust_e2e::pods::{self, container_config, exec, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;
use tonic::Code;

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// The real id of a `Uid:` or `Gid:` line of /proc/<pid>/status (its first column).
fn real_id(status: &str, key: &str) -> String {
    let v = status_field(status, key);
    v.split_whitespace().next().unwrap_or_default().to_string()
}

/// Runs `/bin/sleep 1000` named `name` in `pod` with the security context `sc`.
async fn sleeper(
    rt: &mut pods::Runtime,
    (pod, pc): (&str, &kc::PodSandboxConfig),
    img: &str,
    name: &str,
    sc: Option<kc::LinuxContainerSecurityContext>,
) -> String {
    let mut c = container_config(name, img, &["/bin/sleep", "1000"]);
    c.linux.as_mut().expect("linux config").security_context = sc;
    pods::run_container(rt, pod, pc, c)
        .await
        .expect("RunContainer")
}

/// The error CreateContainer + StartContainer of `c` in `pod` must end with: `code`, and a
/// message naming `names`.
async fn refused(
    rt: &mut pods::Runtime,
    (pod, pc): (&str, &kc::PodSandboxConfig),
    c: kc::ContainerConfig,
    code: Code,
    names: &str,
) {
    let e = pods::run_container(rt, pod, pc, c)
        .await
        .expect_err("a refused container");
    assert!(
        e.code() == code && e.message().contains(names),
        "want {code:?} naming {names:?}: {e:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_share_pod_namespaces() {
    require_root!();
    let (_reg, _d, mut rt, img, logs, _g) = setup().await;
    let mut pc = pod_config("share", logs.path().to_str().unwrap());
    pc.linux = Some(kc::LinuxPodSandboxConfig {
        sysctls: HashMap::from([("kernel.shmmni".to_string(), "1234".to_string())]),
        ..Default::default()
    });
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let sc = kc::LinuxContainerSecurityContext {
        namespace_options: Some(kc::NamespaceOption {
            pid: kc::NamespaceMode::Pod as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let a = sleeper(&mut rt, (&pod, &pc), &img, "a", Some(sc.clone())).await;
    let b = sleeper(&mut rt, (&pod, &pc), &img, "b", Some(sc)).await;
    let ns = "for n in net ipc uts; do ls -l /proc/self/ns/$n; done";
    let (na, _) = exec(&mut rt, &a, ns).await;
    let (nb, _) = exec(&mut rt, &b, ns).await;
    let ids = |s: &str| {
        s.lines()
            .map(|l| l.rsplit("-> ").next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&na), ids(&nb), "{na}\n{nb}");
    assert_eq!(ids(&na).len(), 3);
    let (_, code) = exec(&mut rt, &a, "echo shared > /dev/shm/x").await;
    assert_eq!(code, 0);
    assert_eq!(exec(&mut rt, &b, "cat /dev/shm/x").await.0, "shared\n");
    assert_eq!(
        exec(
            &mut rt,
            &b,
            "cat /etc/hostname; cat /proc/sys/kernel/hostname"
        )
        .await
        .0,
        "share\nshare\n"
    );
    assert_eq!(
        exec(&mut rt, &b, "cat /proc/sys/kernel/shmmni").await.0,
        "1234\n"
    );
    // Shared pid namespace: b sees a's sleep.
    let (ps, _) = exec(&mut rt, &b, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").await;
    assert!(ps.matches("sleep 1000").count() >= 2, "{ps}");
    let hosts = exec(&mut rt, &a, "cat /etc/hosts").await.0;
    assert!(hosts.contains("localhost"), "{hosts}");
    pods::remove_pod(&mut rt, &pod).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn security_context_features() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("sec", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();

    // Defaults: root, default caps, no seccomp, masked paths, writable rootfs.
    let plain = sleeper(&mut rt, (&pod, &pc), &img, "plain", None).await;
    let st = exec(&mut rt, &plain, "cat /proc/self/status").await.0;
    assert_eq!(real_id(&st, "Uid:"), "0");
    assert_eq!(status_field(&st, "CapEff:"), "00000000a80425fb", "{st}");
    assert_eq!(status_field(&st, "Seccomp:"), "0");
    assert_eq!(
        exec(
            &mut rt,
            &plain,
            "cat /proc/kcore | wc -c; echo hi > /x && cat /x"
        )
        .await
        .0
        .trim_start(),
        "0\nhi\n"
    );

    // Hardened: user by name, groups, caps, read-only rootfs, no_new_privs, RuntimeDefault.
    let sc = kc::LinuxContainerSecurityContext {
        run_as_username: "nobody".into(),
        supplemental_groups: vec![4242],
        readonly_rootfs: true,
        no_new_privs: true,
        capabilities: Some(kc::Capability {
            drop_capabilities: vec!["ALL".into()],
            add_capabilities: vec!["NET_BIND_SERVICE".into()],
            ..Default::default()
        }),
        seccomp: Some(kc::SecurityProfile {
            profile_type: kc::security_profile::ProfileType::RuntimeDefault as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    let hard = sleeper(&mut rt, (&pod, &pc), &img, "hard", Some(sc)).await;
    let st = exec(&mut rt, &hard, "cat /proc/self/status").await.0;
    assert_eq!(real_id(&st, "Uid:"), "65534", "{st}\n{}", d.log());
    assert_eq!(real_id(&st, "Gid:"), "65534");
    assert!(status_field(&st, "Groups:").contains("4242"), "{st}");
    assert_eq!(status_field(&st, "CapBnd:"), "0000000000000400");
    assert_eq!(status_field(&st, "NoNewPrivs:"), "1");
    assert_eq!(status_field(&st, "Seccomp:"), "2");
    let (_, code) = exec(&mut rt, &hard, "echo x > /tmp/y").await;
    assert_ne!(code, 0, "rootfs is read-only");

    // runAsUser + explicit uid without passwd entry.
    let sc = kc::LinuxContainerSecurityContext {
        run_as_user: Some(kc::Int64Value { value: 1234 }),
        run_as_group: Some(kc::Int64Value { value: 5678 }),
        ..Default::default()
    };
    let uid = sleeper(&mut rt, (&pod, &pc), &img, "uid", Some(sc)).await;
    let st = exec(&mut rt, &uid, "cat /proc/self/status").await.0;
    assert_eq!(real_id(&st, "Uid:"), "1234");
    assert_eq!(real_id(&st, "Gid:"), "5678");

    // OOM: a 16 MiB limit and a shell that doubles a string.
    let mut cfg = container_config(
        "oom",
        &img,
        &[
            "/bin/sh",
            "-c",
            "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
        ],
    );
    cfg.linux.as_mut().unwrap().resources = Some(kc::LinuxContainerResources {
        memory_limit_in_bytes: 16 << 20,
        ..Default::default()
    });
    let oom = pods::run_container(&mut rt, &pod, &pc, cfg).await.unwrap();
    let s = pods::wait_exited(&mut rt, &oom).await;
    assert_eq!(
        (s.exit_code, s.reason.as_str()),
        (137, "OOMKilled"),
        "{s:?}"
    );
    pods::remove_pod(&mut rt, &pod).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_stream_and_restart_recovery() {
    require_root!();
    let (_reg, mut d, mut rt, img, logs, _g) = setup().await;
    let mut events = rt
        .get_container_events(kc::GetEventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let pc = pod_config("recover", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let sleeper = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("sleeper", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), events.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(e.container_id, sleeper);
        assert!(e.pod_sandbox_status.is_some());
        seen.push(e.container_event_type);
    }
    assert_eq!(
        seen,
        [
            kc::ContainerEventType::ContainerCreatedEvent as i32,
            kc::ContainerEventType::ContainerStartedEvent as i32
        ]
    );
    let quitter = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "quitter",
            &img,
            &[
                "/bin/sh",
                "-c",
                "while [ ! -e /dev/shm/go ]; do sleep 0.1; done; exit 5",
            ],
        ),
    )
    .await
    .unwrap();
    // Crash crustd; the quitter exits while it is down.
    d.kill9();
    std::fs::write(
        d.dir.path().join("state/pods").join(&pod).join("shm/go"),
        "go",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    d.restart();
    let mut rt = pods::Runtime::new(d.channel().await);
    let s = pods::wait_exited(&mut rt, &quitter).await;
    assert_eq!(
        (s.exit_code, s.reason.as_str()),
        (5, "Error"),
        "{s:?}\n{}",
        d.log()
    );
    let s = pods::status(&mut rt, &sleeper).await;
    assert_eq!(s.state, kc::ContainerState::ContainerRunning as i32);
    assert_eq!(exec(&mut rt, &sleeper, "echo alive").await.0, "alive\n");
    // SIGTERM: a clean exit that leaves the pod running.
    drop(rt);
    assert!(d.stop(), "crustd exits 0 on SIGTERM: {}", d.log());
    d.restart();
    let mut rt = pods::Runtime::new(d.channel().await);
    assert_eq!(exec(&mut rt, &sleeper, "echo still").await.0, "still\n");
    // The exit watcher is back: a stop is seen.
    rt.stop_container(kc::StopContainerRequest {
        container_id: sleeper.clone(),
        timeout: 0,
    })
    .await
    .unwrap();
    assert_eq!(pods::status(&mut rt, &sleeper).await.exit_code, 137);
    pods::remove_pod(&mut rt, &pod).await;
    let state = d.dir.path().join("state");
    for sub in ["bundles", "pods", "ns"] {
        assert_eq!(crust_e2e::daemon::count(&state.join(sub)), 0, "{sub} left");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_and_leaves_nothing() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let ld = logs.path().to_str().unwrap();
    // Unknown ids.
    let e = rt
        .container_status(kc::ContainerStatusRequest {
            container_id: "nope".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = rt
        .pod_sandbox_status(kc::PodSandboxStatusRequest {
            pod_sandbox_id: "nope".into(),
            verbose: false,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = rt
        .start_container(kc::StartContainerRequest {
            container_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Stop and remove of an unknown id succeed: the CRI makes them idempotent (critest
    // "should not return an error if not found"; containerd and CRI-O answer the same).
    rt.stop_pod_sandbox(kc::StopPodSandboxRequest {
        pod_sandbox_id: "nope".into(),
    })
    .await
    .expect("StopPodSandbox of an unknown id");
    rt.stop_container(kc::StopContainerRequest {
        container_id: "nope".into(),
        timeout: 0,
    })
    .await
    .expect("StopContainer of an unknown id");
    rt.remove_pod_sandbox(kc::RemovePodSandboxRequest {
        pod_sandbox_id: "nope".into(),
    })
    .await
    .expect("RemovePodSandbox of an unknown id");
    rt.remove_container(kc::RemoveContainerRequest {
        container_id: "nope".into(),
    })
    .await
    .expect("RemoveContainer of an unknown id");
    // Missing metadata.
    let mut pc = pod_config("bad", ld);
    pc.metadata = None;
    assert_eq!(
        pods::run_pod(&mut rt, &pc).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    // Unsafe / host-namespace sysctls.
    let mut pc = pod_config("bad", ld);
    pc.linux = Some(kc::LinuxPodSandboxConfig {
        sysctls: HashMap::from([("kernel.panic".to_string(), "1".to_string())]),
        ..Default::default()
    });
    let e = pods::run_pod(&mut rt, &pc).await.unwrap_err();
    assert!(
        e.code() == Code::InvalidArgument && e.message().contains("kernel.panic"),
        "{e:?}"
    );
    // Duplicate sandbox.
    let pc = pod_config("dup", ld);
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let e = pods::run_pod(&mut rt, &pc).await.unwrap_err();
    assert!(
        e.code() == Code::AlreadyExists && e.message().contains(&pod),
        "{e:?}"
    );
    // Bad containers: escaping log path, missing host path, unknown seccomp profile,
    // unknown image, unknown capability.
    let at = (pod.as_str(), &pc);
    let mut c = container_config("c", &img, &["/bin/true"]);
    c.log_path = "../escape.log".into();
    refused(&mut rt, at, c, Code::InvalidArgument, "escape").await;
    let mut c = container_config("c", &img, &["/bin/true"]);
    c.log_path = "/abs.log".into();
    refused(&mut rt, at, c, Code::InvalidArgument, "").await;
    let mut c = container_config("c", &img, &["/bin/true"]);
    c.mounts = vec![kc::Mount {
        container_path: "/data".into(),
        host_path: "/nonexistent/crust-e2e".into(),
        ..Default::default()
    }];
    refused(
        &mut rt,
        at,
        c,
        Code::InvalidArgument,
        "/nonexistent/crust-e2e",
    )
    .await;
    assert!(!std::path::Path::new("/nonexistent").exists());
    let mut c = container_config("c", &img, &["/bin/true"]);
    c.linux.as_mut().unwrap().security_context = Some(kc::LinuxContainerSecurityContext {
        seccomp: Some(kc::SecurityProfile {
            profile_type: kc::security_profile::ProfileType::Localhost as i32,
            localhost_ref: "/nonexistent/profile.json".into(),
        }),
        ..Default::default()
    });
    refused(&mut rt, at, c, Code::InvalidArgument, "profile").await;
    let c = container_config("c", "no/such:image", &["/bin/true"]);
    refused(&mut rt, at, c, Code::NotFound, "").await;
    let mut c = container_config("c", &img, &["/bin/true"]);
    c.linux.as_mut().unwrap().security_context = Some(kc::LinuxContainerSecurityContext {
        capabilities: Some(kc::Capability {
            add_capabilities: vec!["CAP_BOGUS".into()],
            ..Default::default()
        }),
        ..Default::default()
    });
    refused(&mut rt, at, c, Code::InvalidArgument, "").await;
    // Nothing was created.
    let n = rt
        .list_containers(kc::ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers
        .len();
    assert_eq!(n, 0);
    assert_eq!(
        crust_e2e::daemon::count(&d.dir.path().join("state/bundles")),
        0
    );
    // Container in a stopped pod.
    rt.stop_pod_sandbox(kc::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let e = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("late", &img, &["/bin/true"]),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    pods::remove_pod(&mut rt, &pod).await;
    let snaps = std::fs::read_dir(d.root().join("snapshots"))
        .map(|r| r.count())
        .unwrap_or(0);
    assert_eq!(snaps, 1, "only the image layer remains");
}
