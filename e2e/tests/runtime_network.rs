//! A pod on the built-in bridge (unique name and subnet): PodSandboxStatus reports its IP
//! and /etc/hosts maps the hostname to it. The bridge and its nft table are removed after.

use crust_e2e::bridge::{crustd_on, Bridge};
use crust_e2e::pods::{self, container_config, exec, pod_config, Runtime};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

#[tokio::test(flavor = "multi_thread")]
async fn pod_on_builtin_bridge_gets_an_ip() {
    require_root!();
    let (reg, d0, _rt0, img, logs, g0) = pods::setup().await;
    drop((g0, d0));
    let n = std::process::id() % 200 + 20;
    let bridge = Bridge(format!("crte{n}"));
    let on = crustd_on(&bridge, &format!("10.{n}.77.0/24"), str::to_string, &img).await;
    let d = &on.crustd;
    let mut rt = Runtime::new(d.channel().await);
    let st = rt
        .status(kc::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let net = st
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.r#type == "NetworkReady")
        .unwrap();
    assert!(net.status, "{net:?}");
    let pc = pod_config("netpod", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.unwrap();
    let ps = rt
        .pod_sandbox_status(kc::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    let ip = ps.status.unwrap().network.unwrap().ip;
    assert!(ip.starts_with(&format!("10.{n}.77.")), "{ip}");
    let c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("c", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .unwrap();
    let hosts = exec(&mut rt, &c, "cat /etc/hosts").await.0;
    assert!(hosts.contains(&format!("{ip}\tnetpod")), "{hosts}");
    pods::remove_pod(&mut rt, &pod).await;
    drop(on);
    drop(reg);
}
