//! Parsing CNI ADD results of the 0.3/0.4 shape (`ips[].version`, `interface` index) and
//! the 1.0 shape (no `version`) into a [`PodNetworkResult`].

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use super::super::types::{PodDns, PodIp, PodNetworkResult, PodRoute};

#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(default)]
    interfaces: Vec<RawInterface>,
    #[serde(default)]
    ips: Vec<RawIp>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    dns: PodDns,
}

#[derive(Debug, Deserialize)]
struct RawInterface {
    name: String,
    #[serde(default)]
    sandbox: String,
}

#[derive(Debug, Deserialize)]
struct RawIp {
    address: IpNet,
    #[serde(default)]
    gateway: Option<IpAddr>,
    #[serde(default)]
    interface: Option<usize>,
}

#[derive(Debug, Deserialize)]
struct RawRoute {
    dst: IpNet,
    #[serde(default)]
    gw: Option<IpAddr>,
}

/// Parses `value` (a result object); `ifname` is used when no sandbox interface is named.
pub fn parse(value: &serde_json::Value, ifname: &str) -> Result<PodNetworkResult, String> {
    let raw: Raw = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let interface = raw
        .ips
        .iter()
        .filter_map(|ip| ip.interface)
        .filter_map(|i| raw.interfaces.get(i))
        .find(|i| !i.sandbox.is_empty())
        .or_else(|| raw.interfaces.iter().find(|i| !i.sandbox.is_empty()))
        .map(|i| i.name.clone())
        .unwrap_or_else(|| ifname.to_string());
    let mut ips: Vec<PodIp> = raw
        .ips
        .into_iter()
        .map(|ip| PodIp {
            address: ip.address,
            gateway: ip.gateway,
        })
        .collect();
    ips.sort_by_key(|ip| ip.address.addr().is_ipv6()); // IPv4 first, stable otherwise
    Ok(PodNetworkResult {
        interface,
        ips,
        routes: raw
            .routes
            .into_iter()
            .map(|r| PodRoute {
                dst: r.dst,
                gw: r.gw,
            })
            .collect(),
        dns: raw.dns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_cni_result_040_and_100_shapes() {
        let v04 = serde_json::json!({
            "cniVersion": "0.4.0",
            "interfaces": [{"name": "cni0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/x"}],
            "ips": [{"version": "4", "address": "10.22.0.5/16", "gateway": "10.22.0.1", "interface": 2}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.0.0.10"]}
        });
        let r = parse(&v04, "eth0").unwrap();
        assert_eq!(r.interface, "eth0");
        assert_eq!(r.primary_ip(), Some("10.22.0.5".parse().unwrap()));
        assert_eq!(r.ips[0].gateway, Some("10.22.0.1".parse().unwrap()));
        assert_eq!(r.dns.nameservers, vec!["10.0.0.10"]);
        let v10 = serde_json::json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "net1", "sandbox": "/x"}],
            "ips": [{"address": "fd00::5/64", "interface": 0}, {"address": "10.1.0.5/24", "interface": 0}],
        });
        let r = parse(&v10, "eth0").unwrap();
        assert_eq!(r.interface, "net1");
        assert_eq!(r.primary_ip(), Some("10.1.0.5".parse().unwrap()));
        assert_eq!(
            r.additional_ips(),
            vec!["fd00::5".parse::<IpAddr>().unwrap()]
        );
        assert!(parse(&serde_json::json!({"ips": [{"address": "bogus"}]}), "eth0").is_err());
    }
}
