//! Writing limits to v1 controllers (one directory per mounted controller).
//!
//! Controllers the host does not mount are skipped, as runc does; only the devices
//! controller is mandatory when device rules are given (a silently missing device filter
//! would be a security hole). Write order follows the kernel's cross-checks (memory vs
//! memory+swap, CFS period vs quota). The cpuset of a new cgroup starts empty in v1, so
//! [`create_cpuset`] copies cpus/mems down from the parent first.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroupfs::{self, write};
use crate::devices::{Rule, RuleSet};
use crate::CgroupError;

/// Creates `dir` below `mount`, giving every new level of the cpuset hierarchy its parent's
/// cpus and mems (a v1 cpuset with empty cpus/mems cannot take tasks).
pub(crate) fn create_cpuset(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut cur = mount.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        if !cur.exists() {
            cgroupfs::mkdir_all(&cur)?;
        }
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let mine = cgroupfs::read_opt(&cur, f)?.unwrap_or_default();
            if mine.trim().is_empty() {
                let from = cgroupfs::read(&parent, f)?;
                if !from.trim().is_empty() {
                    write(&cur, f, from.trim())?;
                }
            }
        }
    }
    Ok(())
}

/// Writes `r` (already validated) into the controller directories `dirs`.
pub(crate) fn apply(dirs: &BTreeMap<&str, &Path>, r: &LinuxResources) -> Result<(), CgroupError> {
    if r.devices().is_some() && !dirs.contains_key("devices") {
        return Err(CgroupError::Unsupported {
            field: "linux.resources.devices".into(),
            reason: "the v1 devices controller is not mounted",
        });
    }
    if let (Some(cpu), Some(dir)) = (r.cpu(), dirs.get("cpu")) {
        if let Some(s) = cpu.shares().filter(|s| *s != 0) {
            write(dir, "cpu.shares", &s.to_string())?;
            let got = cgroupfs::read_u64(dir, "cpu.shares")?;
            if got != s {
                return Err(CgroupError::InvalidResource {
                    field: "linux.resources.cpu.shares".into(),
                    reason: format!("the kernel set {got} instead of {s}"),
                });
            }
        }
        let period = cpu.period().filter(|p| *p != 0).map(|p| p.to_string());
        let quota = cpu.quota().filter(|q| *q != 0).map(|q| q.to_string());
        pair(
            dir,
            ("cpu.cfs_period_us", period),
            ("cpu.cfs_quota_us", quota),
        )?;
        if let Some(b) = cpu.burst() {
            write(dir, "cpu.cfs_burst_us", &b.to_string())?;
        }
        if let Some(i) = cpu.idle() {
            write(dir, "cpu.idle", &i.to_string())?;
        }
        let rt_period = cpu
            .realtime_period()
            .filter(|p| *p != 0)
            .map(|p| p.to_string());
        let rt_runtime = cpu
            .realtime_runtime()
            .filter(|p| *p != 0)
            .map(|p| p.to_string());
        pair(
            dir,
            ("cpu.rt_period_us", rt_period),
            ("cpu.rt_runtime_us", rt_runtime),
        )?;
    }
    if let (Some(cpu), Some(dir)) = (r.cpu(), dirs.get("cpuset")) {
        if let Some(c) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            write(dir, "cpuset.cpus", c)?;
        }
        if let Some(m) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            write(dir, "cpuset.mems", m)?;
        }
    }
    if let (Some(m), Some(dir)) = (r.memory(), dirs.get("memory")) {
        memory(dir, m)?;
    }
    if let (Some(p), Some(dir)) = (r.pids(), dirs.get("pids")) {
        match p.limit() {
            0 => {}
            l if l < 0 => write(dir, "pids.max", "max")?,
            l => write(dir, "pids.max", &l.to_string())?,
        }
    }
    if let (Some(b), Some(dir)) = (r.block_io(), dirs.get("blkio")) {
        blkio(dir, b)?;
    }
    if let Some(dir) = dirs.get("hugetlb") {
        for h in r.hugepage_limits().iter().flatten() {
            let f = format!("hugetlb.{}.limit_in_bytes", h.page_size());
            write(dir, &f, &h.limit().to_string())?;
        }
    }
    if let (Some(devs), Some(dir)) = (r.devices(), dirs.get("devices")) {
        let rules: Vec<Rule> = devs.iter().map(Rule::from_spec).collect();
        let target = RuleSet::reduce(&rules);
        let list = cgroupfs::read(dir, "devices.list")?;
        let current = RuleSet::from_v1_list(&list).ok_or_else(|| CgroupError::Parse {
            path: dir.join("devices.list"),
            reason: "unexpected device rule line".into(),
        })?;
        for rule in current.transition(&target) {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write(dir, file, &rule.v1_line())?;
        }
        // Safety check (as runc): a white-list must read back exactly as requested; a
        // black-list at least has to be in allow-by-default mode.
        let list = cgroupfs::read(dir, "devices.list")?;
        let now = RuleSet::from_v1_list(&list);
        let ok = now.is_some_and(|n| {
            n.default_allow == target.default_allow
                && (n.default_allow
                    || (n.exceptions.len() == target.exceptions.len()
                        && n.exceptions.iter().all(|e| target.exceptions.contains(e))))
        });
        if !ok {
            return Err(CgroupError::InvalidResource {
                field: "linux.resources.devices".into(),
                reason: format!("the kernel's device list differs from the rules: {list:?}"),
            });
        }
    }
    if let Some(n) = r.network() {
        if let (Some(id), Some(dir)) = (n.class_id(), dirs.get("net_cls")) {
            write(dir, "net_cls.classid", &id.to_string())?;
        }
        if let Some(dir) = dirs.get("net_prio") {
            for p in n.priorities().iter().flatten() {
                write(
                    dir,
                    "net_prio.ifpriomap",
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
    }
    if let (Some(rdma), Some(dir)) = (r.rdma(), dirs.get("rdma")) {
        for (dev, l) in rdma {
            let mut v = dev.clone();
            if let Some(h) = l.hca_handles() {
                v.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                v.push_str(&format!(" hca_object={o}"));
            }
            write(dir, "rdma.max", &v)?;
        }
    }
    Ok(())
}

/// Writes two interdependent files (period/quota style): in order, and if the kernel
/// rejects the first because of the current value of the second, the other way round.
fn pair(
    dir: &Path,
    first: (&str, Option<String>),
    second: (&str, Option<String>),
) -> Result<(), CgroupError> {
    match (&first.1, &second.1) {
        (Some(a), Some(b)) => {
            if let Err(e) = write(dir, first.0, a) {
                if !is_einval(&e) {
                    return Err(e);
                }
                write(dir, second.0, b)?;
                return write(dir, first.0, a);
            }
            write(dir, second.0, b)
        }
        (Some(a), None) => write(dir, first.0, a),
        (None, Some(b)) => write(dir, second.0, b),
        (None, None) => Ok(()),
    }
}

fn is_einval(e: &CgroupError) -> bool {
    matches!(e, CgroupError::Write { source, .. } if source.raw_os_error() == Some(libc::EINVAL))
}

fn memory(dir: &Path, m: &oci_spec::runtime::LinuxMemory) -> Result<(), CgroupError> {
    const LIMIT: &str = "memory.limit_in_bytes";
    const MEMSW: &str = "memory.memsw.limit_in_bytes";
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    // "memory unlimited, swap unset" means both unlimited (runc).
    if limit == -1 && swap == 0 && cgroupfs::exists(dir, MEMSW) {
        swap = -1;
    }
    let set_limit = || {
        if limit != 0 {
            write(dir, LIMIT, &limit.to_string())
        } else {
            Ok(())
        }
    };
    let set_swap = || {
        if swap != 0 {
            write(dir, MEMSW, &swap.to_string())
        } else {
            Ok(())
        }
    };
    // The kernel requires limit <= memsw at every moment: raise memsw first when growing.
    let swap_first = limit != 0 && swap != 0 && {
        let cur = cgroupfs::read_u64(dir, LIMIT)?;
        swap == -1 || cur < swap as u64
    };
    if swap_first {
        set_swap()?;
        set_limit()?;
    } else {
        set_limit()?;
        set_swap()?;
    }
    if let Some(r) = m.reservation().filter(|r| *r != 0) {
        write(dir, "memory.soft_limit_in_bytes", &r.to_string())?;
    }
    if let Some(s) = m.swappiness().filter(|s| *s <= 100) {
        write(dir, "memory.swappiness", &s.to_string())?;
    }
    if m.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    // kernelTCP (the TCP buffer limit) is still enforced by v1 kernels, so it is set (as
    // crun does). `kernel` is not: recent kernels accept a write to
    // memory.kmem.limit_in_bytes and keep the limit unlimited (seen on 6.18), and on old
    // ones a kmem limit triggers accounting bugs; it stays unset, as runc 1.1+ leaves it.
    if let Some(t) = m.kernel_tcp().filter(|t| *t != 0) {
        write(dir, "memory.kmem.tcp.limit_in_bytes", &t.to_string())?;
    }
    Ok(())
}

fn blkio(dir: &Path, b: &oci_spec::runtime::LinuxBlockIo) -> Result<(), CgroupError> {
    let bfq = cgroupfs::exists(dir, "blkio.bfq.weight");
    let (weight, weight_dev) = if bfq {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    } else {
        ("blkio.weight", "blkio.weight_device")
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        write(dir, weight, &w.to_string())?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        write(dir, "blkio.leaf_weight", &w.to_string())?;
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight().filter(|w| *w != 0) {
            write(
                dir,
                weight_dev,
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
        if let Some(w) = wd.leaf_weight().filter(|w| *w != 0) {
            write(
                dir,
                "blkio.leaf_weight_device",
                &format!("{}:{} {w}", wd.major(), wd.minor()),
            )?;
        }
    }
    for (file, list) in [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ] {
        for t in list.iter().flatten() {
            write(
                dir,
                file,
                &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}
