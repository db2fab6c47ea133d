//! The netlink operations of the built-in bridge (rtnetlink): bridge, gateway address,
//! veth pair with its peer created directly inside the pod namespace as `eth0`, pod
//! address and default route. Nothing here shells out.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::super::error::{netlink_errno, NetworkError, Result};

const ENODEV: i32 = libc::ENODEV;

fn nl(op: &'static str, target: &str) -> impl Fn(rtnetlink::Error) -> NetworkError {
    let target = target.to_string();
    move |source| NetworkError::Netlink {
        op,
        target: target.clone(),
        source,
    }
}

/// The link called `name`, if any.
pub async fn get(handle: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    match handle
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_next()
        .await
    {
        Ok(link) => Ok(link),
        Err(e) if netlink_errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(nl("get link", name)(e)),
    }
}

/// Every link of the namespace.
pub async fn list(handle: &Handle) -> Result<Vec<LinkMessage>> {
    handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(nl("list links", ""))
}

/// The name of a link message.
pub fn name_of(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// The bridge (controller) index of a link message.
pub fn controller_of(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(i) => Some(*i),
        _ => None,
    })
}

/// Creates bridge `name` if missing, brings it up and gives it `gateways` (each an
/// address with the subnet's prefix). Returns its index.
pub async fn ensure_bridge(
    handle: &Handle,
    name: &str,
    gateways: &[IpNet],
    mtu: Option<u32>,
) -> Result<u32> {
    let index = match get(handle, name).await? {
        Some(link) => link.header.index,
        None => {
            let mut b = LinkBridge::new(name);
            if let Some(m) = mtu {
                b = b.mtu(m);
            }
            match handle.link().add(b.build()).execute().await {
                Ok(()) => {}
                Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {} // raced
                Err(e) => return Err(nl("add bridge", name)(e)),
            }
            get(handle, name)
                .await?
                .ok_or_else(|| nl("add bridge", name)(rtnetlink::Error::RequestFailed))?
                .header
                .index
        }
    };
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl("set up", name))?;
    for gw in gateways {
        add_address(handle, index, *gw, name).await?;
    }
    Ok(index)
}

/// Adds (or replaces) `addr` on link `index`; IPv6 without duplicate detection so it
/// is usable at once.
pub async fn add_address(handle: &Handle, index: u32, addr: IpNet, target: &str) -> Result<()> {
    let mut req = handle
        .address()
        .add(index, addr.addr(), addr.prefix_len())
        .replace();
    if addr.addr().is_ipv6() {
        req.message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    req.execute().await.map_err(nl("add address", target))
}

/// Removes `addr` from link `index` if it is there.
pub async fn del_address(handle: &Handle, index: u32, addr: IpNet, target: &str) -> Result<()> {
    let found: Vec<_> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .set_address_filter(addr.addr())
        .set_prefix_length_filter(addr.prefix_len())
        .execute()
        .try_collect()
        .await
        .map_err(nl("list addresses", target))?;
    for msg in found {
        match handle.address().del(msg).execute().await {
            Ok(()) => {}
            Err(e) if netlink_errno(&e) == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(nl("delete address", target)(e)),
        }
    }
    Ok(())
}

/// Deletes link `name`; a missing link is not an error.
pub async fn delete(handle: &Handle, name: &str) -> Result<()> {
    let Some(link) = get(handle, name).await? else {
        return Ok(());
    };
    match handle.link().del(link.header.index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(ENODEV) => Ok(()),
        Err(e) => Err(nl("delete link", name)(e)),
    }
}

/// Creates veth `host` on bridge `bridge_index` (up) with its peer created inside the
/// namespace at `netns` as `ifname` (down until [`configure_pod`]).
pub async fn add_veth(
    handle: &Handle,
    host: &str,
    bridge_index: u32,
    netns: &Path,
    ifname: &str,
    mtu: Option<u32>,
) -> Result<()> {
    let ns = std::fs::File::open(netns).map_err(|source| NetworkError::EnterNetns {
        path: netns.to_path_buf(),
        source,
    })?;
    let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(ifname.to_string())
        .setns_by_fd(ns.as_raw_fd());
    // The peer cannot be brought up in the same request (its veth peer pointer is not
    // set yet, the kernel answers ENOTCONN); configure_pod does it inside the pod.
    let mut msg = LinkVeth::new(host, ifname).controller(bridge_index).up();
    if let Some(m) = mtu {
        peer = peer.mtu(m);
        msg = msg.mtu(m);
    }
    let msg = msg
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build();
    let res = handle.link().add(msg).execute().await;
    drop(ns);
    res.map_err(nl("add veth", host))
}

/// Inside the pod (via `pod`, a handle in its namespace): addresses on `ifname` and a
/// default route per family through the gateways.
pub async fn configure_pod(
    pod: &Handle,
    ifname: &str,
    addrs: &[(IpNet, IpAddr)],
    target: &str,
) -> Result<()> {
    let link = get(pod, ifname)
        .await?
        .ok_or_else(|| nl("find pod interface", target)(rtnetlink::Error::RequestFailed))?;
    let index = link.header.index;
    pod.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl("set pod interface up", target))?;
    for (addr, _) in addrs {
        add_address(pod, index, *addr, target).await?;
    }
    for (_, gw) in addrs {
        let route = match gw {
            IpAddr::V4(g) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .gateway(*g)
                .output_interface(index)
                .build(),
            IpAddr::V6(g) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .gateway(*g)
                .output_interface(index)
                .build(),
        };
        pod.route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(nl("add default route", target))?;
    }
    Ok(())
}
