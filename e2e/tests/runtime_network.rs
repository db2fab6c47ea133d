//! A pod on the built-in bridge (unique name and subnet): PodSandboxStatus reports its IP
//! and /etc/hosts maps the hostname to it. The bridge and its nft table are removed after.

use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{self, container_config, exec, pod_config, Runtime};
use crust_e2e::{cri, require_root};
use k8s_cri::v1 as kc;

struct Bridge(String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", &format!("crust-{}", self.0)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_on_builtin_bridge_gets_an_ip() {
    require_root!();
    let (reg, d0, _rt0, img, logs, g0) = pods::setup().await;
    drop((g0, d0));
    let n = std::process::id() % 200 + 20;
    let bridge = Bridge(format!("crte{n}"));
    let cni = tempfile::tempdir().unwrap();
    let d = Crustd::start(&format!(
        "[network]\nbridge = \"{}\"\nsubnet = \"10.{n}.77.0/24\"\ncni_conf_dir = \"{}\"\n",
        bridge.0,
        cni.path().display()
    ));
    let g = pods::Leftovers(d.dir.path().to_path_buf());
    cri::Images::new(d.channel().await)
        .pull(&img, None)
        .await
        .unwrap();
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
    drop(g);
    drop(d);
    drop(reg);
}
