//! `linux.cgroupsPath` → the container's path inside each hierarchy, as runc's fs driver.
//!
//! - absolute (`/a/b`): used as is under every hierarchy root;
//! - relative (`a/b`): joined under the caller's own cgroup (v2: under its parent, because the
//!   caller's own cgroup has processes and so could not enable controllers for a child);
//! - absent or empty: the container id, relative;
//! - systemd style `slice:prefix:name` (what containerd/kubelet send with the systemd cgroup
//!   driver): mapped to the path systemd would use, `/<expanded slice>/<prefix>-<name>.scope`.
//!   The systemd driver itself (creating the scope over D-Bus) is not implemented; the scope
//!   directory is created directly on the filesystem.
//!
//! Invariant: a resolved path never contains `.` or `..` components, never escapes the
//! hierarchy and never names the hierarchy root.

use crate::CgroupError;

/// A cleaned cgroup path inside a hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inner {
    /// From the hierarchy root; starts with '/'.
    Absolute(String),
    /// From the caller's own cgroup; no leading '/'.
    Relative(String),
}

/// Resolves the spec's `cgroupsPath` (None / "" → the container id).
pub(crate) fn resolve(
    cgroups_path: Option<&str>,
    container_id: &str,
) -> Result<Inner, CgroupError> {
    let p = cgroups_path.unwrap_or("");
    if p.is_empty() {
        if container_id.is_empty()
            || container_id.contains('/')
            || container_id == "."
            || container_id == ".."
        {
            return Err(invalid(container_id, "container id cannot name a cgroup"));
        }
        return Ok(Inner::Relative(container_id.to_string()));
    }
    if p.contains('\0') {
        return Err(invalid(p, "contains a NUL byte"));
    }
    if p.contains(':') {
        return systemd_path(p);
    }
    let cleaned = clean(p)?;
    if cleaned.is_empty() {
        return Err(invalid(p, "resolves to the hierarchy root"));
    }
    if p.starts_with('/') {
        Ok(Inner::Absolute(format!("/{cleaned}")))
    } else {
        Ok(Inner::Relative(cleaned))
    }
}

/// Lexically cleans `p` ("", "." dropped, ".." pops); a ".." that would leave the starting
/// point is an error. Returns the components joined by '/', without a leading '/'.
pub(crate) fn clean(p: &str) -> Result<String, CgroupError> {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(invalid(p, "'..' escapes the cgroup hierarchy"));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// "slice:prefix:name" → "/<expanded slice>/<prefix>-<name>.scope" (or "…/<name>" when the
/// name is itself a slice), as runc's systemd driver names its units.
fn systemd_path(p: &str) -> Result<Inner, CgroupError> {
    let parts: Vec<&str> = p.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(invalid(
            p,
            "systemd cgroupsPath must be \"slice:prefix:name\"",
        ));
    };
    if name.is_empty() || name.contains('/') || prefix.contains('/') {
        return Err(invalid(
            p,
            "systemd unit name must be non-empty and contain no '/'",
        ));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let expanded = expand_slice(slice).ok_or_else(|| {
        invalid(
            p,
            "slice must look like \"a-b.slice\" (no '/', no empty '-' parts)",
        )
    })?;
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else {
        format!("{prefix}-{name}.scope")
    };
    let full = if expanded.is_empty() {
        unit
    } else {
        format!("{expanded}/{unit}")
    };
    let cleaned = clean(&full)?;
    if cleaned.is_empty() {
        return Err(invalid(p, "resolves to the hierarchy root"));
    }
    Ok(Inner::Absolute(format!("/{cleaned}")))
}

/// The cgroup directory (from the hierarchy root, leading '/') of systemd slice `slice`:
/// `kubepods-burstable-pod1.slice` → `/kubepods.slice/kubepods-burstable.slice/
/// kubepods-burstable-pod1.slice`. None when `slice` is not a slice name or is the root
/// slice `-.slice`.
pub fn slice_path(slice: &str) -> Option<String> {
    if slice.contains(':') || slice.contains('\0') {
        return None;
    }
    let expanded = expand_slice(slice)?;
    let cleaned = clean(&expanded).ok()?;
    if cleaned.is_empty() || cleaned != expanded {
        return None;
    }
    Some(format!("/{cleaned}"))
}

/// systemd's slice nesting: "a-b-c.slice" → "a.slice/a-b.slice/a-b-c.slice"; "-.slice" → "".
fn expand_slice(slice: &str) -> Option<String> {
    let base = slice.strip_suffix(".slice")?;
    if slice.contains('/') {
        return None;
    }
    if base == "-" {
        return Some(String::new());
    }
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        return None;
    }
    let mut out = String::new();
    let mut prefix = String::new();
    for comp in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
            out.push('/');
        }
        prefix.push_str(comp);
        out.push_str(&prefix);
        out.push_str(".slice");
    }
    Some(out)
}

fn invalid(path: &str, reason: &'static str) -> CgroupError {
    CgroupError::InvalidPath {
        path: path.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abs(s: &str) -> Inner {
        Inner::Absolute(s.into())
    }

    #[test]
    fn slice_paths() {
        assert_eq!(
            slice_path("kubepods-burstable-pod1.slice").as_deref(),
            Some("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice")
        );
        assert_eq!(slice_path("crust.slice").as_deref(), Some("/crust.slice"));
        for bad in [
            "-.slice",
            "a",
            "a/b.slice",
            "-a.slice",
            "a--b.slice",
            "a:b.slice",
        ] {
            assert_eq!(slice_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn absolute_relative_default() {
        assert_eq!(resolve(Some("/a//b/./c/"), "x").unwrap(), abs("/a/b/c"));
        assert_eq!(resolve(Some("/a/b/../c"), "x").unwrap(), abs("/a/c"));
        assert_eq!(
            resolve(Some("kube/pod"), "x").unwrap(),
            Inner::Relative("kube/pod".into())
        );
        assert_eq!(
            resolve(None, "ctr1").unwrap(),
            Inner::Relative("ctr1".into())
        );
        assert_eq!(
            resolve(Some(""), "ctr1").unwrap(),
            Inner::Relative("ctr1".into())
        );
    }

    #[test]
    fn escapes_and_root_rejected() {
        for p in ["/../etc", "../x", "a/../../b", "/", "/a/.."] {
            let e = resolve(Some(p), "x").unwrap_err();
            assert!(matches!(e, CgroupError::InvalidPath { .. }), "{p}: {e}");
        }
        assert!(resolve(None, "a/b").is_err());
        assert!(resolve(None, "..").is_err());
    }

    #[test]
    fn systemd_style() {
        assert_eq!(
            resolve(Some("system.slice:docker:abc"), "x").unwrap(),
            abs("/system.slice/docker-abc.scope")
        );
        assert_eq!(
            resolve(Some("kubepods-burstable-pod12.slice:cri-containerd:abc"), "x").unwrap(),
            abs("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice/cri-containerd-abc.scope")
        );
        assert_eq!(
            resolve(Some(":crust:abc"), "x").unwrap(),
            abs("/system.slice/crust-abc.scope")
        );
        assert_eq!(
            resolve(Some("-.slice:p:machine.slice"), "x").unwrap(),
            abs("/machine.slice")
        );
        for bad in [
            "a:b",
            "a.slice:b:c:d",
            "a--b.slice:p:n",
            "nos:p:n",
            "a.slice:p:",
            "a.slice:p:../x",
        ] {
            assert!(resolve(Some(bad), "x").is_err(), "{bad}");
        }
    }
}
