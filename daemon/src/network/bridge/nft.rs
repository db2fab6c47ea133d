//! hostPort DNAT and masquerading for the built-in bridge, in an nftables table of our
//! own, `inet crust-<bridge>`, driven by the `nft` command with script input.
//!
//! Why `nft` and not netlink: the nftables netlink protocol needs the expression
//! bytecode assembled by hand (no maintained Rust crate covers maps, concatenations and
//! NAT); `nft -f -` applies a whole script as one kernel transaction, which is exactly
//! the atomicity wanted, and costs one process spawn per pod.
//!
//! Layout: chains `prerouting`/`output` jump to `hostports` for local destinations;
//! `hostports` DNATs through four maps keyed by (proto . port) or (daddr . proto . port)
//! for IPv4 and IPv6; `postrouting` masquerades pod traffic leaving the subnet (when
//! enabled) and 127.0.0.1-sourced hostPort traffic. A pod's hostPorts are map elements,
//! added in one transaction and deleted in one (only those present with the pod's own
//! target, since nft deletes by key). A hostPort
//! already mapped to another pod fails the add with "File exists".

use std::net::IpAddr;
use std::process::Stdio;
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use tokio::io::AsyncWriteExt;

use super::super::error::{NetworkError, Result};
use super::super::types::PortMapping;

const NFT_TIMEOUT: Duration = Duration::from_secs(10);

/// Name of the table of `bridge`.
pub fn table(bridge: &str) -> String {
    format!("crust-{bridge}")
}

/// One map element: which map, and its text form (`key : value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Map name.
    pub map: String,
    /// `key : value` as nft writes it.
    pub text: String,
    /// The DNAT target address (the pod's).
    pub target: IpAddr,
}

/// Creates or refreshes the table, chains and maps of `bridge` (map contents kept).
pub async fn ensure_table(
    bridge: &str,
    v4: Option<Ipv4Net>,
    v6: Option<Ipv6Net>,
    masquerade: bool,
) -> Result<()> {
    let t = format!("inet {}", table(bridge));
    let mut s = String::new();
    s.push_str(&format!("add table {t}\n"));
    for (map, ty) in [
        (
            "hp4",
            "inet_proto . inet_service : ipv4_addr . inet_service",
        ),
        (
            "hp4ip",
            "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
        ),
        (
            "hp6",
            "inet_proto . inet_service : ipv6_addr . inet_service",
        ),
        (
            "hp6ip",
            "ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service",
        ),
    ] {
        s.push_str(&format!("add map {t} {map} {{ type {ty} ; }}\n"));
    }
    s.push_str(&format!(
        "add chain {t} prerouting {{ type nat hook prerouting priority dstnat ; }}\n\
         add chain {t} output {{ type nat hook output priority -100 ; }}\n\
         add chain {t} postrouting {{ type nat hook postrouting priority srcnat ; }}\n\
         add chain {t} hostports\n"
    ));
    for c in ["prerouting", "output", "postrouting", "hostports"] {
        s.push_str(&format!("flush chain {t} {c}\n"));
    }
    s.push_str(&format!(
        "add rule {t} prerouting fib daddr type local jump hostports\n\
         add rule {t} output fib daddr type local jump hostports\n\
         add rule {t} hostports meta nfproto ipv4 dnat ip to ip daddr . meta l4proto . th dport map @hp4ip\n\
         add rule {t} hostports meta nfproto ipv4 dnat ip to meta l4proto . th dport map @hp4\n\
         add rule {t} hostports meta nfproto ipv6 dnat ip6 to ip6 daddr . meta l4proto . th dport map @hp6ip\n\
         add rule {t} hostports meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @hp6\n"
    ));
    if let Some(n) = v4 {
        s.push_str(&format!(
            "add rule {t} postrouting ip saddr 127.0.0.0/8 ip daddr {n} masquerade\n"
        ));
        if masquerade {
            s.push_str(&format!(
                "add rule {t} postrouting ip saddr {n} ip daddr != {n} masquerade\n"
            ));
        }
    }
    if let (Some(n), true) = (v6, masquerade) {
        s.push_str(&format!(
            "add rule {t} postrouting ip6 saddr {n} ip6 daddr != {n} masquerade\n"
        ));
    }
    run(bridge, &s).await
}

/// Deletes the table of `bridge` (missing is fine).
pub async fn delete_table(bridge: &str) -> Result<()> {
    let t = format!("inet {}", table(bridge));
    run(bridge, &format!("add table {t}\ndelete table {t}\n")).await
}

/// The elements mapping `mappings` to the pod addresses `ips`, each once (a duplicated
/// mapping gives one element: nft's delete of the same element twice in one transaction
/// fails, and the whole teardown with it).
pub fn elements(ips: &[IpAddr], mappings: &[PortMapping]) -> Vec<Element> {
    let mut out = Vec::new();
    for m in mappings {
        let proto = m.protocol.as_str();
        for ip in ips {
            let (any_map, ip_map) = if ip.is_ipv4() {
                ("hp4", "hp4ip")
            } else {
                ("hp6", "hp6ip")
            };
            let value = format!("{ip} . {}", m.container_port);
            match m.host_ip {
                Some(h) if !h.is_unspecified() => {
                    if h.is_ipv4() == ip.is_ipv4() {
                        out.push(Element {
                            map: ip_map.to_string(),
                            text: format!("{h} . {proto} . {} : {value}", m.host_port),
                            target: *ip,
                        });
                    }
                }
                Some(h) if h.is_ipv4() != ip.is_ipv4() => {}
                _ => out.push(Element {
                    map: any_map.to_string(),
                    text: format!("{proto} . {} : {value}", m.host_port),
                    target: *ip,
                }),
            }
        }
    }
    dedup(out)
}

/// `elems` without repeats, in order.
fn dedup(elems: Vec<Element>) -> Vec<Element> {
    let mut out: Vec<Element> = Vec::with_capacity(elems.len());
    for e in elems {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Adds `elems` in one transaction. A hostPort held by another pod fails with
/// [`NetworkError::HostPortInUse`].
pub async fn add_elements(
    bridge: &str,
    pod: &str,
    elems: &[Element],
    mappings: &[PortMapping],
) -> Result<()> {
    if elems.is_empty() {
        return Ok(());
    }
    let t = format!("inet {}", table(bridge));
    let script: String = elems
        .iter()
        .map(|e| format!("add element {t} {} {{ {} }}\n", e.map, e.text))
        .collect();
    match run(pod, &script).await {
        Err(NetworkError::Nft { stderr, .. }) if stderr.contains("File exists") => {
            // Name the mapping that clashed: the first whose key is present already.
            let existing = list_elements(bridge).await.unwrap_or_default();
            let clash = mappings.iter().find(|m| {
                let key = format!(" {} . {} :", m.protocol.as_str(), m.host_port);
                existing
                    .iter()
                    .any(|e| format!(" {}", e.text).contains(&key))
            });
            let (port, protocol) = clash
                .or(mappings.first())
                .map(|m| (m.host_port, m.protocol.as_str()))
                .unwrap_or((0, "tcp"));
            Err(NetworkError::HostPortInUse {
                pod: pod.to_string(),
                port,
                protocol,
            })
        }
        other => other,
    }
}

/// Deletes those of `elems` that are present with exactly this key and value, each once,
/// in one transaction. (nft deletes map elements by key, so an element whose key now maps to
/// another pod must not be named; elements already gone are skipped.)
pub async fn delete_elements(bridge: &str, target: &str, elems: &[Element]) -> Result<()> {
    if elems.is_empty() {
        return Ok(());
    }
    let present = list_elements(bridge).await?;
    let t = format!("inet {}", table(bridge));
    // Records written before elements() deduplicated may name an element twice.
    let script: String = dedup(elems.to_vec())
        .iter()
        .filter(|e| present.iter().any(|p| p.map == e.map && p.text == e.text))
        .map(|e| format!("delete element {t} {} {{ {} }}\n", e.map, e.text))
        .collect();
    if script.is_empty() {
        return Ok(());
    }
    run(target, &script).await
}

/// Every element of the four maps of `bridge` (empty when the table does not exist).
pub async fn list_elements(bridge: &str) -> Result<Vec<Element>> {
    let out = nft_output(bridge, &["-j", "list", "table", "inet", &table(bridge)]).await?;
    let Some(out) = out else {
        return Ok(Vec::new());
    };
    let v: serde_json::Value = serde_json::from_slice(&out).map_err(|e| NetworkError::Nft {
        target: bridge.to_string(),
        stderr: format!("unreadable JSON listing: {e}"),
    })?;
    let mut elems = Vec::new();
    let items = v["nftables"].as_array().cloned().unwrap_or_default();
    for item in items {
        let Some(map) = item.get("map") else { continue };
        let name = map["name"].as_str().unwrap_or_default().to_string();
        for e in map["elem"].as_array().cloned().unwrap_or_default() {
            let parts = |x: &serde_json::Value| -> Vec<String> {
                x["concat"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|p| match p {
                                serde_json::Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let key = parts(&e[0]);
            let value = parts(&e[1]);
            let Some(target) = value.first().and_then(|s| s.parse::<IpAddr>().ok()) else {
                continue;
            };
            elems.push(Element {
                map: name.clone(),
                text: format!("{} : {}", key.join(" . "), value.join(" . ")),
                target,
            });
        }
    }
    Ok(elems)
}

/// Runs `nft -f -` with `script` as one transaction.
async fn run(target: &str, script: &str) -> Result<()> {
    let exec = |source| NetworkError::NftExec {
        target: target.to_string(),
        source,
    };
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(exec)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).await.map_err(exec)?;
    }
    let out = tokio::time::timeout(NFT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| exec(std::io::Error::other("nft timed out")))?
        .map_err(exec)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Nft {
            target: target.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs nft with `args`; `None` when the object does not exist.
async fn nft_output(target: &str, args: &[&str]) -> Result<Option<Vec<u8>>> {
    let out = tokio::time::timeout(
        NFT_TIMEOUT,
        tokio::process::Command::new("nft")
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| NetworkError::NftExec {
        target: target.to_string(),
        source: std::io::Error::other("nft timed out"),
    })?
    .map_err(|source| NetworkError::NftExec {
        target: target.to_string(),
        source,
    })?;
    if out.status.success() {
        return Ok(Some(out.stdout));
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.contains("No such file or directory") {
        return Ok(None);
    }
    Err(NetworkError::Nft {
        target: target.to_string(),
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::types::Protocol;

    #[test]
    fn network_nft_elements_per_family_and_host_ip() {
        let ips: Vec<IpAddr> = vec!["10.1.0.2".parse().unwrap(), "fd00::2".parse().unwrap()];
        let m = vec![
            PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: None,
            },
            PortMapping {
                host_port: 53,
                container_port: 5353,
                protocol: Protocol::Udp,
                host_ip: Some("127.0.0.1".parse().unwrap()),
            },
        ];
        let e = elements(&ips, &m);
        let texts: Vec<_> = e.iter().map(|e| format!("{} {}", e.map, e.text)).collect();
        assert_eq!(
            texts,
            vec![
                "hp4 tcp . 8080 : 10.1.0.2 . 80",
                "hp6 tcp . 8080 : fd00::2 . 80",
                "hp4ip 127.0.0.1 . udp . 53 : 10.1.0.2 . 5353",
            ]
        );
    }
}
