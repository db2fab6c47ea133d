//! Persistent IP address management for the built-in bridge.
//!
//! On-disk format (version 1): one directory per bridge, `<ipam>/<bridge>/`, holding one
//! file per allocated address, named by the address (`10.88.0.7`, `fd00::7`) and
//! containing the owning pod id. A file is created with `O_EXCL`, so two allocators can
//! never hand out the same address; the lowest free address is used, so an address is
//! reused as soon as its pod is removed. An empty or unreadable file (a crash between
//! create and write) has no owner and is freed by reconcile.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind as IoKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::super::error::{NetworkError, Result};

/// How many addresses of an IPv6 subnet are considered (a node never has more pods).
const MAX_V6_HOSTS: u128 = 1 << 16;

/// An allocator over one directory.
#[derive(Debug, Clone)]
pub struct Ipam {
    dir: PathBuf,
}

impl Ipam {
    /// Allocations live in `dir` (created on first use).
    pub fn new(dir: PathBuf) -> Self {
        Ipam { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state_err(&self, path: &Path) -> impl Fn(std::io::Error) -> NetworkError {
        let path = path.to_path_buf();
        move |source| NetworkError::State {
            path: path.clone(),
            source,
        }
    }

    /// Every allocation: address → owner ("" when the file is empty).
    pub fn allocations(&self) -> Result<BTreeMap<IpAddr, String>> {
        let mut out = BTreeMap::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(out),
            Err(e) => return Err(self.state_err(&self.dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(self.state_err(&self.dir))?;
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let owner = fs::read_to_string(entry.path()).unwrap_or_default();
            out.insert(ip, owner.trim().to_string());
        }
        Ok(out)
    }

    /// Allocates an address of `net` for `pod`, skipping the network address, `gateway`
    /// and the broadcast address. Returns the pod's existing address in `net` if it has
    /// one (so a retried setup is idempotent).
    pub fn allocate(&self, pod: &str, net: IpNet, gateway: IpAddr) -> Result<IpAddr> {
        fs::create_dir_all(&self.dir).map_err(self.state_err(&self.dir))?;
        let current = self.allocations()?;
        if let Some((ip, _)) = current
            .iter()
            .find(|(ip, owner)| owner.as_str() == pod && net.contains(*ip))
        {
            return Ok(*ip);
        }
        let used: HashSet<IpAddr> = current.into_keys().collect();
        for ip in candidates(net) {
            if ip == gateway || used.contains(&ip) {
                continue;
            }
            let path = self.dir.join(ip.to_string());
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(pod.as_bytes())
                        .and_then(|()| f.sync_data())
                        .map_err(self.state_err(&path))?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == IoKind::AlreadyExists => continue, // lost a race
                Err(e) => return Err(self.state_err(&path)(e)),
            }
        }
        Err(NetworkError::IpamExhausted {
            pod: pod.to_string(),
            subnet: net.to_string(),
        })
    }

    /// Frees every address owned by `pod`; returns them.
    pub fn release_pod(&self, pod: &str) -> Result<Vec<IpAddr>> {
        let mut freed = Vec::new();
        for (ip, owner) in self.allocations()? {
            if owner == pod {
                self.release(ip)?;
                freed.push(ip);
            }
        }
        Ok(freed)
    }

    /// Frees one address (missing is fine).
    pub fn release(&self, ip: IpAddr) -> Result<()> {
        let path = self.dir.join(ip.to_string());
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == IoKind::NotFound => Ok(()),
            Err(e) => Err(self.state_err(&path)(e)),
        }
    }
}

/// The first usable host address of `net` (the conventional gateway).
pub fn first_host(net: IpNet) -> Option<IpAddr> {
    candidates(net).next()
}

/// Host addresses of `net` in ascending order (network and broadcast excluded for v4).
fn candidates(net: IpNet) -> Box<dyn Iterator<Item = IpAddr>> {
    match net {
        IpNet::V4(n) => {
            let start = u32::from(n.network()) as u64 + 1;
            let end = u32::from(n.broadcast()) as u64; // exclusive
            Box::new((start..end).map(|v| IpAddr::V4(Ipv4Addr::from(v as u32))))
        }
        IpNet::V6(n) => {
            let start = u128::from(n.network()) + 1;
            let size = 1u128
                .checked_shl(128 - u32::from(n.prefix_len()))
                .unwrap_or(u128::MAX);
            let count = size.saturating_sub(1).min(MAX_V6_HOSTS);
            Box::new((0..count).map(move |i| IpAddr::V6(Ipv6Addr::from(start + i))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_ipam_allocates_lowest_free_and_reuses() {
        let tmp = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(tmp.path().join("br"));
        let net: IpNet = "10.200.0.0/29".parse().unwrap();
        let gw = first_host(net).unwrap();
        assert_eq!(gw, "10.200.0.1".parse::<IpAddr>().unwrap());
        let a = ipam.allocate("a", net, gw).unwrap();
        let b = ipam.allocate("b", net, gw).unwrap();
        assert_eq!(a, "10.200.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(b, "10.200.0.3".parse::<IpAddr>().unwrap());
        assert_eq!(ipam.allocate("a", net, gw).unwrap(), a, "idempotent");
        assert_eq!(ipam.release_pod("a").unwrap(), vec![a]);
        assert_eq!(ipam.allocate("c", net, gw).unwrap(), a, "reused");
        for p in ["d", "e", "f"] {
            ipam.allocate(p, net, gw).unwrap();
        }
        let err = ipam.allocate("g", net, gw).unwrap_err();
        assert!(matches!(err, NetworkError::IpamExhausted { .. }), "{err}");
        // A new allocator over the same dir sees the same state (persistence).
        let again = Ipam::new(tmp.path().join("br"));
        assert_eq!(again.allocations().unwrap().len(), 5);
    }

    #[test]
    fn network_ipam_v6() {
        let tmp = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(tmp.path().join("br"));
        let net: IpNet = "fd00:1::/64".parse().unwrap();
        let gw = first_host(net).unwrap();
        let a = ipam.allocate("a", net, gw).unwrap();
        assert_eq!(a, "fd00:1::2".parse::<IpAddr>().unwrap());
    }
}
