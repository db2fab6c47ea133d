//! A pod whose hostPort mappings repeat (issue 18 item 9): RemovePodSandbox left the DNAT
//! element behind (nft's delete of one element twice in a transaction fails, so nothing
//! was deleted), the next pod given the address received traffic for a port it never
//! asked for, and every restart's reconcile failed. Needs root; bridge `crbr-ch`, subnet
//! 172.27.3.0/24, netns pins under a temp dir; everything removed in Drop.

#![allow(clippy::unwrap_used)] // tests

use std::collections::HashSet;
use std::process::Command;

use crust_daemon::network::bridge::nft;
use crust_daemon::network::{
    netns, NetworkConfig, NetworkError, NetworkManager, PodNetworkRequest, PortMapping, Protocol,
};

const BRIDGE: &str = "crbr-ch";

struct World {
    tmp: tempfile::TempDir,
}

impl World {
    fn config(&self) -> NetworkConfig {
        let mut c = NetworkConfig::new(
            &self.tmp.path().join("root"),
            &self.tmp.path().join("state"),
        );
        c.cni.conf_dir = self.tmp.path().join("net.d");
        c.bridge.name = BRIDGE.into();
        c.bridge.subnet = Some("172.27.3.0/24".parse().unwrap());
        c.bridge.masquerade = false;
        c
    }
    async fn pod(&self, id: &str, mappings: Vec<PortMapping>) -> PodNetworkRequest {
        PodNetworkRequest {
            pod_id: id.into(),
            name: id.into(),
            namespace: "default".into(),
            uid: format!("uid-{id}"),
            netns: netns::create(&self.tmp.path().join("state"), id)
                .await
                .unwrap(),
            port_mappings: mappings,
            ..Default::default()
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let cfg = self.config();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(m) = NetworkManager::new(cfg) {
                    let _ = m.reconcile(&HashSet::new()).await;
                }
            })
        })
        .join();
        let state = self.tmp.path().join("state");
        for pod in netns::list(&state) {
            let _ = netns::remove(&netns::pin_path(&state, &pod));
        }
        let _ = Command::new("ip").args(["link", "del", BRIDGE]).output();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &nft::table(BRIDGE)])
            .output();
    }
}

fn tcp(host_port: u16, container_port: u16) -> PortMapping {
    PortMapping {
        host_port,
        container_port,
        protocol: Protocol::Tcp,
        host_ip: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_duplicated_host_port_leaves_no_rule_behind() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let w = World {
        tmp: tempfile::tempdir().unwrap(),
    };
    let m = NetworkManager::new(w.config()).unwrap();
    let hp = 31000 + (std::process::id() % 1000) as u16;

    // The same mapping twice: one rule, and teardown removes it.
    let a = w
        .pod("ch-dup", vec![tcp(hp, 80), tcp(hp, 80), tcp(hp + 1, 81)])
        .await;
    m.setup(&a).await.unwrap();
    let texts: Vec<String> = nft::list_elements(BRIDGE)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.text)
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    m.teardown(&a).await.unwrap();
    assert!(
        nft::list_elements(BRIDGE).await.unwrap().is_empty(),
        "rule left"
    );
    netns::remove(&a.netns).unwrap();

    // A record written before elements were deduplicated, naming one element twice.
    let b = w.pod("ch-old", vec![tcp(hp, 80)]).await;
    m.setup(&b).await.unwrap();
    let rec = w
        .tmp
        .path()
        .join("root/network/bridge")
        .join(BRIDGE)
        .join("ch-old.json");
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
    let e = r["elements"][0].clone();
    r["elements"].as_array_mut().unwrap().push(e);
    std::fs::write(&rec, serde_json::to_vec(&r).unwrap()).unwrap();
    m.teardown(&b).await.unwrap();
    assert!(
        nft::list_elements(BRIDGE).await.unwrap().is_empty(),
        "rule left"
    );
    assert!(m.bridge().record_pods().unwrap().is_empty());
    netns::remove(&b.netns).unwrap();

    // One host port to two container ports: refused, nothing set up.
    let c = w.pod("ch-two", vec![tcp(hp, 80), tcp(hp, 81)]).await;
    let err = m.setup(&c).await.unwrap_err();
    assert!(
        matches!(&err, NetworkError::InvalidArgument { reason, .. } if reason.contains("80") && reason.contains("81")),
        "{err}"
    );
    assert!(nft::list_elements(BRIDGE).await.unwrap().is_empty());
    assert!(m.bridge().ipam().allocations().unwrap().is_empty());
    netns::remove(&c.netns).unwrap();
    m.reconcile(&HashSet::new()).await.unwrap();
    m.bridge().destroy().await.unwrap();
}
