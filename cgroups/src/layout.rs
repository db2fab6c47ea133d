//! Which cgroup hierarchies this host has, read from `/proc/self/mountinfo`, and where the
//! calling process sits in them (`/proc/self/cgroup`).
//!
//! The layout is a closed set: pure v1 (one mount per controller or co-mounted group such as
//! `cpu,cpuacct`), pure v2 (cgroup2 mounted at `/sys/fs/cgroup`), or the hybrid layout that
//! systemd calls "hybrid": v1 controllers plus a cgroup2 mount without controllers (usually
//! `/sys/fs/cgroup/unified`) that processes are joined to for membership only, as runc does.
//! The host layout is parsed once per process (cached); fake trees are parsed on every call.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::CgroupError;

/// v1 controllers this crate knows; any other option of a v1 mount is a mount option.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One cgroup filesystem mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Mount point, prefixed with the fake root for test trees.
    pub(crate) mount_point: PathBuf,
    /// Root of the mount inside its hierarchy (mountinfo field 4), "/" on the host.
    pub(crate) root: String,
    /// v1: controllers (and `name=…` hierarchies) of this mount; v2: empty.
    pub(crate) controllers: Vec<String>,
}

/// The cgroup layout of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// v1 mounts (keyed by controller), plus the cgroup2 mount of the hybrid layout.
    V1 {
        mounts: BTreeMap<String, Mount>,
        unified: Option<Mount>,
    },
    /// The unified hierarchy.
    V2 { mount: Mount },
}

/// Where the calling process is: v1 controller (or `name=…`) → path, and the v2 path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OwnCgroups {
    pub(crate) v1: BTreeMap<String, String>,
    pub(crate) v2: Option<String>,
}

/// The host's layout, parsed once per process.
pub(crate) fn host_layout() -> Result<&'static Layout, CgroupError> {
    static HOST: OnceLock<Result<Layout, String>> = OnceLock::new();
    let r = HOST.get_or_init(|| detect(Path::new("/")).map_err(|e| e.to_string()));
    r.as_ref().map_err(|reason| CgroupError::Detect {
        path: PathBuf::from("/proc/self/mountinfo"),
        reason: reason.clone(),
    })
}

/// Parses `<fs_root>/proc/self/mountinfo` into a layout.
pub(crate) fn detect(fs_root: &Path) -> Result<Layout, CgroupError> {
    let path = fs_root.join("proc/self/mountinfo");
    let text = std::fs::read_to_string(&path).map_err(|source| CgroupError::Read {
        path: path.clone(),
        source,
    })?;
    parse_mountinfo(fs_root, &text).ok_or(CgroupError::Detect {
        path,
        reason: "no cgroup or cgroup2 mount".to_string(),
    })
}

fn parse_mountinfo(fs_root: &Path, text: &str) -> Option<Layout> {
    // Later lines shadow earlier mounts on the same mount point.
    let mut v1: BTreeMap<String, Mount> = BTreeMap::new();
    let mut v2: Vec<Mount> = Vec::new();
    for mi in crate::mountinfo::parse(text) {
        let rel = mi.mount_point.strip_prefix("/").unwrap_or(&mi.mount_point);
        let mount_point = fs_root.join(rel);
        let root = mi.root.to_string_lossy().into_owned();
        match mi.fstype.as_str() {
            "cgroup2" => {
                v2.retain(|m| m.mount_point != mount_point);
                v1.retain(|_, m| m.mount_point != mount_point);
                v2.push(Mount {
                    mount_point,
                    root,
                    controllers: Vec::new(),
                });
            }
            "cgroup" => {
                let controllers: Vec<String> = mi
                    .super_options
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(str::to_string)
                    .collect();
                if controllers.is_empty() {
                    continue;
                }
                v2.retain(|m| m.mount_point != mount_point);
                let m = Mount {
                    mount_point,
                    root,
                    controllers,
                };
                for c in &m.controllers {
                    // The first mount of a controller is the canonical one (bind mounts of
                    // the same hierarchy elsewhere come later).
                    v1.entry(c.clone()).or_insert_with(|| m.clone());
                }
            }
            _ => {}
        }
    }
    let std_root = fs_root.join("sys/fs/cgroup");
    if let Some(m) = v2.iter().find(|m| m.mount_point == std_root) {
        return Some(Layout::V2 { mount: m.clone() });
    }
    if !v1.is_empty() {
        let unified = v2
            .iter()
            .find(|m| m.mount_point == std_root.join("unified"))
            .or(v2.first())
            .cloned();
        return Some(Layout::V1 {
            mounts: v1,
            unified,
        });
    }
    v2.into_iter().next().map(|mount| Layout::V2 { mount })
}

/// Reads `<fs_root>/proc/self/cgroup`.
pub(crate) fn own_cgroups(fs_root: &Path) -> Result<OwnCgroups, CgroupError> {
    cgroups_in(&fs_root.join("proc/self/cgroup"))
}

/// Reads a `/proc/<pid>/cgroup` file.
pub(crate) fn cgroups_in(path: &Path) -> Result<OwnCgroups, CgroupError> {
    let path = path.to_path_buf();
    let text = std::fs::read_to_string(&path).map_err(|source| CgroupError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(parse_own(&text))
}

fn parse_own(text: &str) -> OwnCgroups {
    let mut own = OwnCgroups::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if id == "0" && ctrls.is_empty() {
            own.v2 = Some(path.to_string());
            continue;
        }
        for c in ctrls.split(',').filter(|c| !c.is_empty()) {
            own.v1.insert(c.to_string(), path.to_string());
        }
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn hybrid_layout() {
        let l = parse_mountinfo(Path::new("/"), HYBRID).unwrap();
        let Layout::V1 { mounts, unified } = l else {
            panic!("not v1")
        };
        assert_eq!(
            mounts.keys().collect::<Vec<_>>(),
            [
                "cpu",
                "cpuacct",
                "cpuset",
                "memory",
                "name=systemd",
                "net_cls",
                "net_prio"
            ]
        );
        assert_eq!(mounts["cpu"], mounts["cpuacct"]);
        assert_eq!(
            mounts["cpuacct"].mount_point,
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(mounts["cpuset"].controllers, ["cpuset"]);
        assert_eq!(
            unified.unwrap().mount_point,
            Path::new("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn pure_v2_and_fake_root() {
        let t = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = parse_mountinfo(Path::new("/tmp/x"), t).unwrap();
        assert_eq!(
            l,
            Layout::V2 {
                mount: Mount {
                    mount_point: PathBuf::from("/tmp/x/sys/fs/cgroup"),
                    root: "/".into(),
                    controllers: vec![]
                }
            }
        );
    }

    #[test]
    fn pure_v1_and_none() {
        let t = "35 31 0:32 /a\\040b /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let Layout::V1 { mounts, unified } = parse_mountinfo(Path::new("/"), t).unwrap() else {
            panic!()
        };
        assert_eq!(mounts["memory"].root, "/a b");
        assert!(unified.is_none());
        assert!(parse_mountinfo(Path::new("/"), "1 0 0:1 / / rw - ext4 /dev/sda rw\n").is_none());
    }

    #[test]
    fn host_detection_is_cheap() {
        let t = std::time::Instant::now();
        let l = detect(Path::new("/"));
        eprintln!(
            "parsing /proc/self/mountinfo took {:?}: {:?}",
            t.elapsed(),
            l.is_ok()
        );
    }

    #[test]
    fn own_cgroup_file() {
        let o = parse_own("9:name=systemd:/\n4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/u\n");
        assert_eq!(o.v1["memory"], "/a/b");
        assert_eq!(o.v1["cpuacct"], "/c");
        assert_eq!(o.v1["name=systemd"], "/");
        assert_eq!(o.v2.as_deref(), Some("/u"));
    }
}
