//! CheckpointContainer is refused cleanly (Unimplemented, naming what is missing): crust has
//! no CRIU integration (Debian 12's criu 3.17 cannot even start on kernels >= 6.13: "vdso:
//! Unexpected rt vDSO area bounds", criu issue #2532). The container keeps running and no
//! archive appears where kubelet asked for one.

use crust_e2e::pods::{self, container_config, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_is_refused_and_changes_nothing() {
    require_root!();
    let (_reg, _d, mut rt, img, logs, _g) = setup().await;
    let pc = pod_config("ckpt", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let id = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("c", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .expect("create+start");
    let archive = logs.path().join("checkpoint.tar");
    let e = rt
        .checkpoint_container(kc::CheckpointContainerRequest {
            container_id: id.clone(),
            location: archive.display().to_string(),
            timeout: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e:?}");
    assert!(e.message().contains("CRIU"), "{e:?}");
    assert!(!archive.exists(), "an archive was written");
    let s = pods::status(&mut rt, &id).await;
    assert_eq!(s.state, kc::ContainerState::ContainerRunning as i32);
    pods::remove_pod(&mut rt, &pod).await;
}
