//! End-to-end tests of the RuntimeService: real crustd, shim and runtime, a real registry.

use crust_e2e::pods::{self, container_config, pod_config};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;
use tonic::Code;

use crust_e2e::pods::setup;

#[tokio::test(flavor = "multi_thread")]
async fn pod_lifecycle_with_logs_and_exit_codes() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let v = rt
        .version(kc::VersionRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.runtime_name, "crust");
    let pc = pod_config("life", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");

    let c1 = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "hello",
            &img,
            &[
                "/bin/sh",
                "-c",
                "echo hello from crust; cat /etc/hostname; echo oops >&2; exit 3",
            ],
        ),
    )
    .await
    .expect("create+start");
    let s = pods::wait_exited(&mut rt, &c1).await;
    assert_eq!(s.exit_code, 3, "{s:?}\n{}", d.log());
    assert_eq!(s.reason, "Error");
    assert!(s.finished_at >= s.started_at && s.started_at > 0);
    let log = std::fs::read_to_string(logs.path().join("hello.log")).unwrap();
    assert!(log.contains(" stdout F hello from crust"), "{log}");
    assert!(log.contains(" stdout F life"), "{log}");
    assert!(log.contains(" stderr F oops"), "{log}");

    let c2 = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("ok", &img, &["/bin/true"]),
    )
    .await
    .unwrap();
    let s = pods::wait_exited(&mut rt, &c2).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));

    // A long-running container: exec, stop with timeout, list filters.
    // In a PID namespace of its own, where sleep is PID 1 and ignores SIGTERM.
    let mut sleeper = container_config("sleeper", &img, &["/bin/sleep", "1000"]);
    sleeper.linux.as_mut().unwrap().security_context = Some(kc::LinuxContainerSecurityContext {
        namespace_options: Some(kc::NamespaceOption {
            pid: kc::NamespaceMode::Container as i32,
            ..Default::default()
        }),
        ..Default::default()
    });
    let c3 = pods::run_container(&mut rt, &pod, &pc, sleeper)
        .await
        .unwrap();
    let out = rt
        .exec_sync(kc::ExecSyncRequest {
            container_id: c3.clone(),
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 7".into(),
            ],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice(), out.exit_code),
        (&b"out\n"[..], &b"err\n"[..], 7)
    );
    let e = rt
        .exec_sync(kc::ExecSyncRequest {
            container_id: c3.clone(),
            cmd: vec!["/bin/sleep".into(), "30".into()],
            timeout: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    let resolv = rt
        .exec_sync(kc::ExecSyncRequest {
            container_id: c3.clone(),
            cmd: vec!["/bin/cat".into(), "/etc/resolv.conf".into()],
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let resolv = String::from_utf8_lossy(&resolv.stdout).to_string();
    assert!(
        resolv.contains("nameserver 10.0.0.10") && resolv.contains("search svc.cluster.local"),
        "{resolv}"
    );
    let running = rt
        .list_containers(kc::ListContainersRequest {
            filter: Some(kc::ContainerFilter {
                state: Some(kc::ContainerStateValue {
                    state: kc::ContainerState::ContainerRunning as i32,
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert_eq!(
        running.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [c3.as_str()]
    );
    let st = rt
        .container_stats(kc::ContainerStatsRequest {
            container_id: c3.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mem = st
        .stats
        .unwrap()
        .memory
        .unwrap()
        .working_set_bytes
        .unwrap()
        .value;
    assert!(mem > 0);
    let t0 = std::time::Instant::now();
    rt.stop_container(kc::StopContainerRequest {
        container_id: c3.clone(),
        timeout: 2,
    })
    .await
    .unwrap();
    let s = pods::status(&mut rt, &c3).await;
    // sleep as pid 1 ignores SIGTERM: killed after the timeout.
    assert_eq!(s.exit_code, 137, "{s:?}");
    assert!(t0.elapsed().as_secs_f64() >= 1.5);

    let ps = rt
        .pod_sandbox_status(kc::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        ps.status.unwrap().state,
        kc::PodSandboxState::SandboxReady as i32
    );
    assert_eq!(ps.containers_statuses.len(), 3);

    pods::remove_pod(&mut rt, &pod).await;
    rt.remove_pod_sandbox(kc::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("idempotent remove");
    let listed = rt
        .list_pod_sandbox(kc::ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(listed.is_empty());
    let state = d.dir.path().join("state");
    for sub in ["bundles", "pods", "ns"] {
        assert_eq!(crust_e2e::daemon::count(&state.join(sub)), 0, "{sub} left");
    }
    assert!(
        !std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(d.dir.path().to_str().unwrap()),
        "mounts left"
    );
}
