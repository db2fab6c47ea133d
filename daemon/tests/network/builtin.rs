//! The built-in bridge network: pods exchanging TCP, hostPorts, address reuse, cleanup
//! after many cycles and after a crash, the subnet from the pod CIDR.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_builtin_two_pods_exchange_tcp_v4_and_v6() {
    if !is_root() {
        return;
    }
    let w = World::new();
    let mut cfg = w.config();
    cfg.bridge.subnet6 = Some(format!("fd00:c7:{:x}::/64", w.n).parse().unwrap());
    let m = NetworkManager::new(cfg).unwrap();
    assert!(matches!(m.current().unwrap(), Network::BuiltinBridge(_)));
    assert!(m.status().ready);
    let a = w.pod("pod-a").await;
    let b = w.pod("pod-b").await;
    let ra = m.setup(&a).await.unwrap();
    let rb = m.setup(&b).await.unwrap();
    assert_eq!(ra.interface, "eth0");
    assert_eq!(ra.ips.len(), 2, "{ra:?}");
    let ip_a = ra.primary_ip().unwrap();
    let ip_b = rb.primary_ip().unwrap();
    assert!(ip_a.is_ipv4() && ip_a != ip_b);
    m.check(&a).await.unwrap();

    let server = serve_once(&a.netns, 8080);
    assert_eq!(
        ping_from(&b.netns, SocketAddr::new(ip_a, 8080)).await,
        "pong ping"
    );
    assert_eq!(server.join().unwrap(), ip_b.to_string());

    let ip6_a = ra.additional_ips()[0];
    assert!(ip6_a.is_ipv6());
    let server = serve_once(&a.netns, 8081);
    assert_eq!(
        ping_from(&b.netns, SocketAddr::new(ip6_a, 8081)).await,
        "pong ping"
    );
    server.join().unwrap();

    for p in [&a, &b] {
        m.teardown(p).await.unwrap();
        m.teardown(p).await.unwrap(); // idempotent
        netns::remove(&p.netns).unwrap();
        netns::remove(&p.netns).unwrap();
    }
    assert!(m.check(&a).await.is_err());
    m.bridge().destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_builtin_host_port_from_host_and_conflict() {
    if !is_root() {
        return;
    }
    let w = World::new();
    let m = NetworkManager::new(w.config()).unwrap();
    let hp = w.host_port(0);
    let mut a = w.pod("hp-a").await;
    a.port_mappings = vec![PortMapping {
        host_port: hp,
        container_port: 80,
        protocol: Protocol::Tcp,
        host_ip: None,
    }];
    let ra = m.setup(&a).await.unwrap();
    let gw = ra.ips[0].gateway.unwrap();

    let server = serve_once(&a.netns, 80);
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(
        ping(SocketAddr::new(loopback, hp)).expect("hostPort via 127.0.0.1"),
        "pong ping"
    );
    server.join().unwrap();
    let server = serve_once(&a.netns, 80);
    assert_eq!(
        ping(SocketAddr::new(gw, hp)).expect("hostPort via bridge address"),
        "pong ping"
    );
    server.join().unwrap();

    // Another pod wanting the same hostPort fails clearly and leaves nothing.
    let mut b = w.pod("hp-b").await;
    b.port_mappings = a.port_mappings.clone();
    let before = m.bridge().ipam().allocations().unwrap().len();
    let err = m.setup(&b).await.unwrap_err();
    assert!(
        matches!(err, NetworkError::HostPortInUse { port, .. } if port == hp),
        "{err}"
    );
    assert_eq!(m.bridge().ipam().allocations().unwrap().len(), before);
    assert!(!host_links().contains(&m.bridge().veth_name("hp-b")));

    m.teardown(&a).await.unwrap();
    assert!(nft::list_elements(&w.bridge).await.unwrap().is_empty());
    assert!(ping(SocketAddr::new(loopback, hp)).is_err(), "mapping gone");
    m.bridge().destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_builtin_ip_reuse_after_removal_and_persisted_across_restart() {
    if !is_root() {
        return;
    }
    let w = World::new();
    let m = NetworkManager::new(w.config()).unwrap();
    let a = w.pod("reuse-a").await;
    let b = w.pod("reuse-b").await;
    let ip_a = m.setup(&a).await.unwrap().primary_ip().unwrap();
    // A restarted manager sees a's address as taken.
    drop(m);
    let m = NetworkManager::new(w.config()).unwrap();
    let ip_b = m.setup(&b).await.unwrap().primary_ip().unwrap();
    assert_ne!(ip_a, ip_b);
    m.teardown(&a).await.unwrap();
    netns::remove(&a.netns).unwrap();
    let c = w.pod("reuse-c").await;
    let ip_c = m.setup(&c).await.unwrap().primary_ip().unwrap();
    assert_eq!(ip_c, ip_a, "freed address is handed out again");
    for p in [&b, &c] {
        m.teardown(p).await.unwrap();
    }
    m.bridge().destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_builtin_50_cycles_leave_nothing_behind() {
    if !is_root() {
        return;
    }
    let w = World::new();
    let m = NetworkManager::new(w.config()).unwrap();
    // Bring the bridge up first so the "before" picture includes it.
    let warm = w.pod("warm").await;
    m.setup(&warm).await.unwrap();
    m.teardown(&warm).await.unwrap();
    netns::remove(&warm.netns).unwrap();
    let links = host_links_of(Some(&w.bridge));
    let ipam_dir = m.bridge().ipam().dir().to_path_buf();
    let (mut t_setup, mut t_teardown, mut t_unpin) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for i in 0..50 {
        let id = format!("cyc-{i}");
        let t0 = Instant::now();
        let mut p = w.pod(&id).await;
        p.port_mappings = vec![PortMapping {
            host_port: w.host_port(1),
            container_port: 80,
            protocol: Protocol::Tcp,
            host_ip: None,
        }];
        m.setup(&p).await.unwrap();
        let t1 = Instant::now();
        m.teardown(&p).await.unwrap();
        let t2 = Instant::now();
        netns::remove(&p.netns).unwrap();
        t_setup += t1 - t0;
        t_teardown += t2 - t1;
        t_unpin += t2.elapsed();
    }
    eprintln!(
        "built-in bridge, per pod with one hostPort: netns create+setup {:?}, teardown {:?}, netns remove {:?}",
        t_setup / 50,
        t_teardown / 50,
        t_unpin / 50
    );
    assert_eq!(host_links_of(Some(&w.bridge)), links, "links on the bridge");
    let all = host_links();
    for i in 0..50 {
        assert!(!all.contains(&m.bridge().veth_name(&format!("cyc-{i}"))));
    }
    assert_eq!(count_files(&ipam_dir), 0, "allocations");
    assert!(netns::list(&w.state()).is_empty(), "netns pins");
    assert!(
        nft::list_elements(&w.bridge).await.unwrap().is_empty(),
        "nft"
    );
    assert!(m.bridge().record_pods().unwrap().is_empty(), "records");
    m.bridge().destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_reconcile_cleans_up_after_a_crash() {
    if !is_root() {
        return;
    }
    let w = World::new();
    let m = NetworkManager::new(w.config()).unwrap();
    let live = w.pod("alive").await;
    m.setup(&live).await.unwrap();
    let mut dead = w.pod("dead").await;
    dead.port_mappings = vec![PortMapping {
        host_port: w.host_port(2),
        container_port: 80,
        protocol: Protocol::Udp,
        host_ip: Some("127.0.0.1".parse().unwrap()),
    }];
    m.setup(&dead).await.unwrap();
    // Half done: an address allocated with no record or veth (killed mid-setup).
    let subnet = w.subnet.parse().unwrap();
    m.bridge()
        .ipam()
        .allocate("half", subnet, "10.0.0.1".parse().unwrap())
        .unwrap();
    // "Crash": the manager goes away without teardown; a new one starts.
    drop(m);
    let m = NetworkManager::new(w.config()).unwrap();
    let report = m
        .reconcile(&HashSet::from(["alive".to_string()]))
        .await
        .unwrap();
    assert!(
        report.bridge_pods.contains(&"dead".to_string()),
        "{report:?}"
    );
    assert!(
        report.bridge_pods.contains(&"half".to_string()),
        "{report:?}"
    );
    assert_eq!(report.netns_pods, vec!["dead".to_string()]);
    let owners: Vec<String> = m
        .bridge()
        .ipam()
        .allocations()
        .unwrap()
        .into_values()
        .collect();
    assert_eq!(owners, vec!["alive".to_string()]);
    assert!(!host_links().contains(&m.bridge().veth_name("dead")));
    assert!(host_links().contains(&m.bridge().veth_name("alive")));
    assert!(nft::list_elements(&w.bridge).await.unwrap().is_empty());
    assert_eq!(netns::list(&w.state()), vec!["alive".to_string()]);
    m.check(&live).await.unwrap();
    m.teardown(&live).await.unwrap();
    m.bridge().destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_builtin_subnet_follows_pod_cidr() {
    if !is_root() {
        return;
    }
    let w = World::new();
    let mut cfg = w.config();
    cfg.bridge.subnet = None;
    let m = NetworkManager::new(cfg).unwrap();
    let first: ipnet::IpNet = format!("10.180.{}.0/24", w.n % 250).parse().unwrap();
    let second: ipnet::IpNet = format!("10.181.{}.0/24", w.n % 250).parse().unwrap();
    assert!(m
        .set_pod_cidr(Some("10.1.2.3/31".parse().unwrap()))
        .await
        .is_err());
    m.set_pod_cidr(Some(first)).await.unwrap();
    let a = w.pod("cidr-a").await;
    let ip = m.setup(&a).await.unwrap().primary_ip().unwrap();
    assert!(first.contains(&ip), "{ip} in {first}");
    // Pods hold addresses: the subnet stays.
    m.set_pod_cidr(Some(second)).await.unwrap();
    let b = w.pod("cidr-b").await;
    assert!(first.contains(&m.setup(&b).await.unwrap().primary_ip().unwrap()));
    m.teardown(&a).await.unwrap();
    m.teardown(&b).await.unwrap();
    // Empty bridge: it moves.
    m.set_pod_cidr(Some(second)).await.unwrap();
    let ip = m.setup(&a).await.unwrap().primary_ip().unwrap();
    assert!(second.contains(&ip), "{ip} in {second}");
    m.teardown(&a).await.unwrap();
    m.bridge().destroy().await.unwrap();
}
