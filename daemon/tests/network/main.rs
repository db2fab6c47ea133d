//! Pod network tests (need root, create bridges, veths, netns and nft tables with unique
//! names; every test cleans up in Drop). Skipped with a message when not root.

#![allow(clippy::unwrap_used)] // tests

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crust_daemon::network::bridge::nft;
use crust_daemon::network::{
    netns, Network, NetworkConfig, NetworkError, NetworkManager, PodNetworkRequest, PortMapping,
    Protocol,
};
use nix::sched::{setns, CloneFlags};

mod builtin;
mod cni;

static SEQ: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: needs root");
        false
    }
}

/// A unique small number for names, subnets and ports of one test (below 960; at most
/// 16 tests per process).
fn uniq() -> u32 {
    let seq = SEQ.fetch_add(1, Ordering::SeqCst);
    assert!(seq < 16, "more tests than unique numbers");
    (std::process::id() % 60) * 16 + seq
}

/// hostPort `i` (0-9) of the test numbered `n` ([`uniq`], below 960).
fn host_port_of(n: u32, i: u16) -> u16 {
    20000 + (n as u16) * 10 + i
}

/// One test's network world: temp root/state/conf dirs, a bridge name, a subnet.
struct World {
    tmp: tempfile::TempDir,
    bridge: String,
    subnet: String,
    n: u32,
    extra_links: Vec<String>,
}

impl World {
    fn new() -> Self {
        let n = uniq();
        World {
            tmp: tempfile::tempdir().expect("tempdir"),
            bridge: format!("crt{}b{n}", std::process::id() % 10000),
            subnet: format!("10.{}.{}.0/24", 150 + n / 250, n % 250),
            n,
            extra_links: Vec::new(),
        }
    }
    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }
    fn state(&self) -> PathBuf {
        self.tmp.path().join("state")
    }
    fn conf_dir(&self) -> PathBuf {
        self.tmp.path().join("net.d")
    }
    fn config(&self) -> NetworkConfig {
        let mut c = NetworkConfig::new(&self.root(), &self.state());
        c.cni.conf_dir = self.conf_dir();
        c.cni.bin_dirs = vec![self.tmp.path().join("bin"), "/usr/lib/cni".into()];
        c.cni.timeout = Duration::from_secs(20);
        c.bridge.name = self.bridge.clone();
        c.bridge.subnet = Some(self.subnet.parse().expect("subnet"));
        c.bridge.masquerade = false; // leave the host's ip_forward alone in tests
        c
    }
    /// A hostPort of this test: 20000-29599, below the kernel's ephemeral range (32768 and
    /// up, checked by `host_ports_are_never_ephemeral`). The old 30000-39599 overlapped it, so
    /// a port-0 listener of a parallel test (a crustd's streaming server, a registry) could
    /// hold the same port and answer the "mapping gone" probe after teardown.
    fn host_port(&self, i: u16) -> u16 {
        host_port_of(self.n, i)
    }
    async fn pod(&self, id: &str) -> PodNetworkRequest {
        let netns = netns::create(&self.state(), id)
            .await
            .expect("create netns");
        PodNetworkRequest {
            pod_id: id.to_string(),
            name: format!("name-{id}"),
            namespace: "default".into(),
            uid: format!("uid-{id}"),
            netns,
            ..Default::default()
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // What a failed test left: reconcile with no live pods (CNI DEL from the cache,
        // bridge records, addresses), on a runtime of its own.
        let cfg = self.config();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(m) = NetworkManager::new(cfg) {
                    let _ = m.reconcile(&HashSet::new()).await;
                }
            })
        })
        .join();
        for pod in netns::list(&self.state()) {
            let _ = netns::remove(&netns::pin_path(&self.state(), &pod));
        }
        for l in std::iter::once(&self.bridge).chain(&self.extra_links) {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
        let table = format!("inet {}", nft::table(&self.bridge));
        let _ = Command::new("nft")
            .args(["delete", "table"])
            .args(table.split(' '))
            .output();
    }
}

/// Serves one TCP connection inside `ns` on `port`: answers "pong <what it read>".
fn serve_once(ns: &Path, port: u16) -> std::thread::JoinHandle<String> {
    let f = File::open(ns).expect("open netns");
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        setns(&f, CloneFlags::CLONE_NEWNET).expect("setns");
        let l = TcpListener::bind(("::", port)).expect("bind");
        tx.send(()).expect("ready");
        let (mut s, peer) = l.accept().expect("accept");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).expect("read");
        s.write_all(format!("pong {}", String::from_utf8_lossy(&buf[..n])).as_bytes())
            .expect("write");
        peer.ip().to_canonical().to_string()
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("listener ready");
    h
}

fn ping(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"ping")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

async fn ping_from(ns: &Path, addr: SocketAddr) -> String {
    netns::run_in(ns, move || ping(addr))
        .await
        .expect("enter netns")
        .expect("tcp exchange")
}

/// Links of the host namespace (`master`: only the ports of that bridge).
fn host_links_of(master: Option<&str>) -> HashSet<String> {
    let mut cmd = Command::new("ip");
    cmd.args(["-o", "link", "show"]);
    if let Some(m) = master {
        cmd.args(["master", m]);
    }
    let out = cmd.output().expect("ip");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

fn host_links() -> HashSet<String> {
    host_links_of(None)
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Every hostPort the tests use lies below the ephemeral port range, so no socket bound to
/// port 0 anywhere on the host can hold one.
#[test]
fn host_ports_are_never_ephemeral() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").expect("range");
    let low: u16 = range
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("low");
    let highest = host_port_of(959, 9);
    assert!(highest < low, "{highest} >= {low}");
}

#[tokio::test]
async fn network_bad_input_is_rejected() {
    let w = World::new();
    let m = NetworkManager::new(w.config()).unwrap();
    for id in ["", "..", "a/b", "x y"] {
        let req = PodNetworkRequest {
            pod_id: id.into(),
            netns: "/proc/self/ns/net".into(),
            ..Default::default()
        };
        assert!(matches!(
            m.setup(&req).await.unwrap_err(),
            NetworkError::InvalidPodId(_)
        ));
    }
    let req = PodNetworkRequest {
        pod_id: "p".into(),
        netns: w.tmp.path().join("missing"),
        ..Default::default()
    };
    let e = m.setup(&req).await.unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    let _ = Arc::clone(&m);
}
