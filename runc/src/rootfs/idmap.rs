//! Bind mounts with OCI `uidMappings`/`gidMappings` (id-mapped mounts, as runc 1.2), and
//! every bind mount of a container in a user namespace: the clone of each source (idmapped
//! when asked) is made by the init before it joins any namespace (an idmap needs
//! CAP_SYS_ADMIN over the source's filesystem, i.e. the host's; and the namespace's root
//! may not be able to reach a source under a private host directory such as crustd's
//! 0700 state dirs or kubelet's pod dirs, as runc opens sources before joining too), kept
//! as a detached mount fd, and attached at the destination by [`super::mount`] once the
//! container's mount namespace exists.
//!
//! Invariant: only bind mounts take mappings, and both maps are given.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crust_idmap::IdMap;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use super::options;
use super::RootfsError;

fn maps(v: &[LinuxIdMapping]) -> Vec<IdMap> {
    v.iter()
        .map(|m| IdMap {
            container_id: m.container_id(),
            host_id: m.host_id(),
            size: m.size(),
        })
        .collect()
}

fn invalid(index: usize, m: &Mount, reason: impl Into<String>) -> RootfsError {
    RootfsError::InvalidMount {
        index,
        destination: m.destination().to_path_buf(),
        reason: reason.into(),
    }
}

/// Whether `m` asks for an id-mapped mount.
pub(crate) fn wants(m: &Mount) -> bool {
    m.uid_mappings().is_some() || m.gid_mappings().is_some()
}

/// Makes the idmapped clone of every mount of `spec` that has mappings and, when the
/// container will be in a user namespace (`in_userns`), the plain clone of every other bind
/// mount; by mount index.
pub(crate) fn prepare(
    spec: &Spec,
    in_userns: bool,
) -> Result<HashMap<usize, OwnedFd>, RootfsError> {
    let mut out = HashMap::new();
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        let fstype = m.typ().as_deref().filter(|t| !t.is_empty());
        let opts = options::parse(fstype, m.options().as_deref().unwrap_or_default())
            .map_err(|e| invalid(index, m, e.to_string()))?;
        if !wants(m) {
            if in_userns && opts.is_bind() {
                if let Some(source) = m.source().as_deref() {
                    let fd = crust_idmap::clone_tree(source, opts.flags & libc::MS_REC != 0)
                        .map_err(|e| RootfsError::Idmap {
                            index,
                            path: source.to_path_buf(),
                            reason: chain(&e),
                        })?;
                    out.insert(index, fd);
                }
            }
            continue;
        }
        if !opts.is_bind() {
            return Err(invalid(
                index,
                m,
                "uidMappings/gidMappings are only supported on bind mounts",
            ));
        }
        let (Some(u), Some(g)) = (m.uid_mappings(), m.gid_mappings()) else {
            return Err(invalid(index, m, "uidMappings and gidMappings go together"));
        };
        let (uids, gids) = (maps(u), maps(g));
        for x in uids.iter().chain(&gids) {
            x.check().map_err(|e| invalid(index, m, e.to_string()))?;
        }
        if uids.is_empty() || gids.is_empty() {
            return Err(invalid(index, m, "empty uidMappings/gidMappings"));
        }
        let source = m
            .source()
            .as_deref()
            .ok_or_else(|| invalid(index, m, "bind mount without a source"))?;
        let recursive = opts.idmap.unwrap_or(opts.flags & libc::MS_REC != 0);
        let err = |e: crust_idmap::IdmapError| RootfsError::Idmap {
            index,
            path: Path::new(source).to_path_buf(),
            reason: chain(&e),
        };
        let ns = crust_idmap::userns_for(&uids, &gids).map_err(err)?;
        let fd = crust_idmap::clone_idmapped(source, ns.as_fd(), recursive).map_err(err)?;
        out.insert(index, fd);
    }
    Ok(out)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut c = e.source();
    while let Some(x) = c {
        s.push_str(&format!(": {x}"));
        c = x.source();
    }
    s
}
