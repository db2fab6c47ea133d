//! CheckpointContainer's errors through the CRI, on any node: an unknown container is
//! NotFound, one that is not running FailedPrecondition, a relative location or a
//! container in its pod's PID namespace InvalidArgument; and on a node where CRIU cannot work (`criu check` fails, as Debian
//! 12's criu 3.17 on kernels >= 6.13: "vdso: Unexpected rt vDSO area bounds", criu issue
//! #2532; or no criu) the refusal is Unimplemented naming CRIU and why, the container
//! keeps running and no archive appears. Where CRIU works, the checkpoint itself and the
//! restore are tested by vm_checkpoint (run in the VM suite, e2e/vm).

use crust_e2e::pods::{self, container_config, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

/// `cfg` with its own PID namespace (kubelet's default; CRI's default is the pod's).
fn own_pid_ns(mut cfg: kc::ContainerConfig) -> kc::ContainerConfig {
    let linux = cfg.linux.get_or_insert_with(Default::default);
    let sc = linux.security_context.get_or_insert_with(Default::default);
    sc.namespace_options = Some(kc::NamespaceOption {
        pid: kc::NamespaceMode::Container as i32,
        ..Default::default()
    });
    cfg
}

/// Whether `criu check` passes here (None: no criu).
fn criu_works() -> Option<bool> {
    std::process::Command::new("criu")
        .arg("check")
        .output()
        .ok()
        .map(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_errors_and_refusal_change_nothing() {
    require_root!();
    let (_reg, _d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("ckpt", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let archive = logs.path().join("checkpoint.tar");
    let ckpt = |id: &str, location: &str| kc::CheckpointContainerRequest {
        container_id: id.into(),
        location: location.into(),
        timeout: 60,
    };
    let loc = archive.display().to_string();

    let e = rt
        .checkpoint_container(ckpt("no-such-container", &loc))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");

    let created = rt
        .create_container(kc::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config("created", &img, &["/bin/sleep", "1000"])),
            sandbox_config: Some(pc.clone()),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    let e = rt
        .checkpoint_container(ckpt(&created, &loc))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("running"), "{e:?}");

    // In the pod's PID namespace (CRI's default mode): CRIU cannot dump it alone.
    let shared = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("shared", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .expect("create+start");
    let e = rt
        .checkpoint_container(ckpt(&shared, &loc))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("shared PID namespace"), "{e:?}");

    let id = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        own_pid_ns(container_config("c", &img, &["/bin/sleep", "1000"])),
    )
    .await
    .expect("create+start");
    let e = rt
        .checkpoint_container(ckpt(&id, "relative/ck.tar"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    match criu_works() {
        Some(true) => {
            eprintln!(
                "criu check passes on this node: the refusal does not apply here \
                 (vm_checkpoint checkpoints and restores)"
            );
        }
        works => {
            let e = rt.checkpoint_container(ckpt(&id, &loc)).await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");
            assert!(e.message().contains("CRIU"), "{e:?}");
            let why = if works.is_none() {
                "criu cannot be run"
            } else {
                "`criu check` fails"
            };
            assert!(e.message().contains(why), "{e:?}");
            eprintln!("refused as expected: {}", e.message());
        }
    }
    assert!(!archive.exists(), "an archive was written");
    let s = pods::status(&mut rt, &id).await;
    assert_eq!(s.state, kc::ContainerState::ContainerRunning as i32);
    pods::remove_pod(&mut rt, &pod).await;
}
