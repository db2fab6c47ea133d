//! Per-interface traffic counters of a network namespace, as the kernel keeps them
//! (`IFLA_STATS64` of an `RTM_GETLINK` dump), for the CRI's pod network stats and metrics.
//!
//! The dump runs on a short-lived thread that has joined the namespace ([`netns::run_in_blocking`]),
//! over a blocking netlink socket opened there, so no sysfs has to be mounted in the
//! namespace and no runtime thread changes namespace. rtnetlink only offers an async
//! connection (a tokio task per handle); a one-shot dump on a blocking socket is smaller
//! and runs wherever stats are computed (off the async workers). Loopback is left out, as
//! containerd and cadvisor do.

use std::io;
use std::path::Path;
use std::time::Duration;

use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use rtnetlink::sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::error::{NetworkError, Result};
use super::netns;

/// A dump that takes longer than this is abandoned (the kernel answers in microseconds).
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters of one interface since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Interface name inside the namespace (`eth0`).
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Packets dropped on receive.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
}

/// Counters of every interface but loopback in the namespace at `netns`, in the kernel's
/// (ifindex) order. Blocks (the stats paths call it on the blocking pool or the sampler
/// thread): it joins [`netns::run_in_blocking`]'s thread, no executor involved.
pub fn read(netns: &Path) -> Result<Vec<LinkStats>> {
    let err = |source| NetworkError::LinkStats {
        path: netns.to_path_buf(),
        source,
    };
    netns::run_in_blocking(netns, dump)?.map_err(err)
}

/// `RTM_GETLINK` dump on a new socket in the calling thread's namespace.
fn dump() -> io::Result<Vec<LinkStats>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(DUMP_TIMEOUT.as_secs() as _, 0),
    )?;
    let mut req = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::GetLink(LinkMessage::default())),
    );
    req.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.header.sequence_number = 1;
    req.finalize();
    let mut buf = vec![0u8; req.buffer_len()];
    req.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut out = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full()?;
        if data.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink socket closed during the link dump",
            ));
        }
        let mut at = 0;
        while at < data.len() {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[at..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => {
                    return Err(e.code.map_or_else(
                        || io::Error::other("netlink error without a code"),
                        |c| io::Error::from_raw_os_error(-c.get()),
                    ))
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                    if let Some(s) = link_stats(&link) {
                        out.push(s);
                    }
                }
                _ => {}
            }
            if len == 0 {
                break; // a malformed header; the rest of the datagram cannot be framed
            }
            at += len;
        }
    }
}

/// The counters of one link message, `None` for loopback or a link without 64-bit stats.
fn link_stats(link: &LinkMessage) -> Option<LinkStats> {
    let mut name = None;
    let mut stats = None;
    for a in &link.attributes {
        match a {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Stats64(s) => stats = Some(*s),
            _ => {}
        }
    }
    let name = name.filter(|n| n != "lo")?;
    let s = stats?;
    Some(LinkStats {
        name,
        rx_bytes: s.rx_bytes,
        rx_packets: s.rx_packets,
        rx_errors: s.rx_errors,
        rx_dropped: s.rx_dropped,
        tx_bytes: s.tx_bytes,
        tx_packets: s.tx_packets,
        tx_errors: s.tx_errors,
        tx_dropped: s.tx_dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host namespace always has at least loopback; the dump must parse and leave it
    /// out. Needs no privileges.
    #[test]
    fn host_dump_parses_and_skips_loopback() {
        let links = dump().expect("RTM_GETLINK dump");
        assert!(links.iter().all(|l| l.name != "lo"), "{links:?}");
        let sys: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "lo")
                    .collect()
            })
            .unwrap_or_default();
        for name in &sys {
            assert!(links.iter().any(|l| &l.name == name), "{name} in {links:?}");
        }
    }

    /// Counters of the veth pair of a fresh namespace after ARP traffic between its ends,
    /// bracketed by iproute2's readings of the same counters (needs root and `ip`; skips
    /// otherwise).
    #[test]
    fn counters_in_a_namespace_match_iproute2() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let pin = dir.path().join("net");
        std::fs::write(&pin, b"").unwrap();
        let p = pin.clone();
        let made = std::thread::spawn(move || -> io::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &p,
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .unwrap();
        if let Err(e) = made {
            eprintln!("skipped: cannot pin a network namespace: {e}");
            return;
        }
        let _unpin = Unpin(pin.clone());
        let run = |args: &[&str]| {
            std::process::Command::new("nsenter")
                .arg(format!("--net={}", pin.display()))
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
        };
        let set_up = [
            &[
                "ip", "link", "add", "csa", "type", "veth", "peer", "name", "csb",
            ][..],
            &["ip", "addr", "add", "172.22.250.1/29", "dev", "csa"],
            &["ip", "link", "set", "csa", "up"],
            &["ip", "link", "set", "csb", "up"],
        ];
        if !set_up.iter().all(|a| run(a).is_some()) {
            eprintln!("skipped: ip could not set up a veth pair in the namespace");
            return;
        }
        // ARP requests for a neighbour that never answers: out of csa, into csb.
        let _ = run(&[
            "busybox",
            "arping",
            "-c",
            "2",
            "-w",
            "1",
            "-I",
            "csa",
            "172.22.250.3",
        ]);
        let ip_stats = |dev: &str| -> (u64, u64) {
            let out = run(&["ip", "-s", "-j", "link", "show", dev]).expect("ip -s link");
            let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let s = &j[0]["stats64"];
            (
                s["rx"]["bytes"].as_u64().unwrap(),
                s["tx"]["bytes"].as_u64().unwrap(),
            )
        };
        let before = (ip_stats("csa"), ip_stats("csb"));
        let links = read(&pin).unwrap();
        let after = (ip_stats("csa"), ip_stats("csb"));
        let mut names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["csa", "csb"], "loopback left out");
        let csa = links.iter().find(|l| l.name == "csa").unwrap();
        let csb = links.iter().find(|l| l.name == "csb").unwrap();
        assert!(
            csa.tx_packets >= 2 && csb.rx_packets >= 2,
            "two ARP requests: {links:?}"
        );
        assert!(
            (before.0 .1..=after.0 .1).contains(&csa.tx_bytes),
            "csa tx {} not within ip's {:?} .. {:?}",
            csa.tx_bytes,
            before,
            after
        );
        assert!(
            (before.1 .0..=after.1 .0).contains(&csb.rx_bytes),
            "csb rx {} not within ip's {:?} .. {:?}",
            csb.rx_bytes,
            before,
            after
        );
    }

    /// Unmounts a test namespace pin (the namespace and its links go with the last user).
    struct Unpin(std::path::PathBuf);

    impl Drop for Unpin {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
