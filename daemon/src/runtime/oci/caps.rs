//! Capabilities of a container: containerd's default set, every capability Linux knows,
//! and the set a container gets from its add/drop lists (privileged: all this process
//! holds).

use std::collections::BTreeSet;

use crate::runtime::error::{invalid, Result};
use crate::runtime::types::ContainerSpec;

/// containerd's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux knows (up to 5.x).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Every capability this process may hand on (its bounding set; all of [`ALL_CAPS`] if
/// unreadable), as containerd's WithAllCurrentCapabilities: asking for one outside it
/// makes the runtime's capset fail (e.g. CAP_SYS_RESOURCE where root lacks it).
fn current_caps() -> Vec<String> {
    let bnd = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bnd & (1u64 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// The capability set of `s`: the default set with the request's adds and drops
/// (`ALL` allowed), in the kernel's order.
pub fn capabilities(s: &ContainerSpec) -> Result<Vec<String>> {
    if s.security.privileged {
        return Ok(current_caps());
    }
    let norm = |c: &str| -> Result<String> {
        let up = c.to_ascii_uppercase();
        let name = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        if name == "CAP_ALL" || ALL_CAPS.contains(&name.as_str()) {
            Ok(name)
        } else {
            Err(invalid(format!("unknown capability {c:?}")))
        }
    };
    let add: Vec<String> = s
        .security
        .add_capabilities
        .iter()
        .map(|c| norm(c))
        .collect::<Result<_>>()?;
    let drop: Vec<String> = s
        .security
        .drop_capabilities
        .iter()
        .map(|c| norm(c))
        .collect::<Result<_>>()?;
    let mut caps: BTreeSet<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    if add.iter().any(|c| c == "CAP_ALL") {
        caps = current_caps().into_iter().collect();
    }
    if drop.iter().any(|c| c == "CAP_ALL") {
        caps.clear();
    }
    for c in add.into_iter().filter(|c| c != "CAP_ALL") {
        caps.insert(c);
    }
    for c in drop.iter().filter(|c| *c != "CAP_ALL") {
        caps.remove(c);
    }
    // Keep the kernel's order for readability.
    Ok(ALL_CAPS
        .iter()
        .filter(|c| caps.contains(**c))
        .map(|c| c.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_add_drop() {
        let mut s = ContainerSpec::default();
        s.security.drop_capabilities = vec!["ALL".into()];
        s.security.add_capabilities = vec!["net_admin".into()];
        assert_eq!(capabilities(&s).unwrap(), ["CAP_NET_ADMIN"]);
        s.security.add_capabilities = vec!["bogus".into()];
        assert!(capabilities(&s).is_err());
        s.security.add_capabilities.clear();
        s.security.drop_capabilities = vec!["CAP_KILL".into()];
        let c = capabilities(&s).unwrap();
        assert!(!c.contains(&"CAP_KILL".to_string()) && c.contains(&"CAP_CHOWN".to_string()));
    }
}
