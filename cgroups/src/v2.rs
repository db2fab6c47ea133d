//! Writing limits to a cgroup v2 (unified) directory, and creating it with its ancestors'
//! controllers enabled.
//!
//! Device rules become a BPF program attached to the directory (see [`crate::devices`] and
//! [`crate::bpf`]); an update attaches the new program first and then detaches the old ones,
//! so there is no window without a filter.

use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroupfs::{self, write};
use crate::devices::{Rule, RuleSet};
use crate::resources::{blkio_to_io_weight, shares_to_weight, swap_v2, v2_limit};
use crate::{bpf, CgroupError};

/// `mkdir -p` of `dir`, enabling in every ancestor from `mount` down to `dir`'s parent all the
/// controllers that ancestor has (errors there are tolerated, as runc does: a controller that
/// cannot be enabled surfaces as a missing file when a limit needs it).
pub(crate) fn create(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    cgroupfs::mkdir_all(dir)?;
    let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut cur = mount.to_path_buf();
    for comp in rel.components() {
        enable_controllers(&cur);
        cur.push(comp);
    }
    Ok(())
}

fn enable_controllers(dir: &Path) {
    let Ok(Some(avail)) = cgroupfs::read_opt(dir, "cgroup.controllers") else {
        return;
    };
    let enabled = cgroupfs::read_opt(dir, "cgroup.subtree_control")
        .ok()
        .flatten()
        .unwrap_or_default();
    let missing: Vec<String> = avail
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return;
    }
    if write(dir, "cgroup.subtree_control", &missing.join(" ")).is_err() {
        for c in &missing {
            let _ = write(dir, "cgroup.subtree_control", c);
        }
    }
}

/// Writes `r` (already validated for v2) into `dir`.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<(), CgroupError> {
    // Checked before any write so a bad key changes nothing.
    for k in r.unified().iter().flat_map(|u| u.keys()) {
        if !cgroupfs::exists(dir, k) {
            return Err(CgroupError::InvalidResource {
                field: format!("linux.resources.unified[{k:?}]"),
                reason: "no such interface file (controller not enabled?)".into(),
            });
        }
    }
    if let Some(cpu) = r.cpu() {
        let w = shares_to_weight(cpu.shares().unwrap_or(0));
        if w != 0 {
            write(dir, "cpu.weight", &w.to_string())?;
        }
        if let Some(b) = cpu.burst() {
            write(dir, "cpu.max.burst", &b.to_string())?;
        }
        let quota = cpu.quota().unwrap_or(0);
        let period = cpu.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            let mut v = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_string()
            };
            if period != 0 {
                v.push_str(&format!(" {period}"));
            }
            write(dir, "cpu.max", &v)?;
        }
        if let Some(i) = cpu.idle() {
            write(dir, "cpu.idle", &i.to_string())?;
        }
        if let Some(c) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            write(dir, "cpuset.cpus", c)?;
        }
        if let Some(m) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            write(dir, "cpuset.mems", m)?;
        }
    }
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        if let Some(swap) = swap_v2(m.swap().unwrap_or(0), limit)? {
            let v = v2_limit(swap);
            // Without swap accounting there is no memory.swap.max; "unlimited" then holds.
            if cgroupfs::exists(dir, "memory.swap.max") || swap != -1 {
                write(dir, "memory.swap.max", &v)?;
            }
        }
        if limit != 0 {
            write(dir, "memory.max", &v2_limit(limit))?;
        }
        if let Some(res) = m.reservation().filter(|r| *r != 0) {
            write(dir, "memory.low", &v2_limit(res))?;
        }
        // swappiness, disableOOMKiller, kernel and kernelTCP have no v2 equivalent and are
        // ignored, as runc does.
    }
    if let Some(p) = r.pids() {
        match p.limit() {
            0 => {}
            l => write(dir, "pids.max", &v2_limit(l))?,
        }
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    for h in r.hugepage_limits().iter().flatten() {
        write(
            dir,
            &format!("hugetlb.{}.max", h.page_size()),
            &h.limit().to_string(),
        )?;
    }
    if let Some(rdma) = r.rdma() {
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
    // net_cls / net_prio do not exist in v2 (use BPF or the network plugin); ignored as runc.
    if let Some(u) = r.unified() {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        for k in keys {
            write(dir, k, &u[k])?;
        }
    }
    if let Some(devs) = r.devices() {
        let rules: Vec<Rule> = devs.iter().map(Rule::from_spec).collect();
        set_device_filter(dir, &RuleSet::reduce(&rules))?;
    }
    Ok(())
}

fn io(dir: &Path, b: &oci_spec::runtime::LinuxBlockIo) -> Result<(), CgroupError> {
    let bfq = cgroupfs::exists(dir, "io.bfq.weight");
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if bfq {
            write(dir, "io.bfq.weight", &w.to_string())?;
        } else {
            write(dir, "io.weight", &blkio_to_io_weight(w).to_string())?;
        }
    }
    for wd in b.weight_device().iter().flatten() {
        if let Some(w) = wd.weight().filter(|w| *w != 0) {
            let (file, v) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_to_io_weight(w))
            };
            write(dir, file, &format!("{}:{} {v}", wd.major(), wd.minor()))?;
        }
    }
    for (key, list) in [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ] {
        for t in list.iter().flatten() {
            write(
                dir,
                "io.max",
                &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
            )?;
        }
    }
    Ok(())
}

/// Loads the program for `set`, attaches it to `dir` and detaches whatever device programs
/// were attached before.
pub(crate) fn set_device_filter(dir: &Path, set: &RuleSet) -> Result<(), CgroupError> {
    let insns = set.program();
    let prog = bpf::load_device_program(&insns).map_err(|(source, log)| CgroupError::BpfLoad {
        path: dir.to_path_buf(),
        log,
        source,
    })?;
    let cg = open_dir(dir)?;
    let attach_err = |op, source| CgroupError::BpfAttach {
        op,
        path: dir.to_path_buf(),
        source,
    };
    let old = bpf::query_device_programs(&cg).map_err(|e| attach_err("querying", e))?;
    bpf::attach_device_program(&cg, &prog).map_err(|e| attach_err("attaching", e))?;
    for id in old {
        match bpf::detach_device_program(&cg, id) {
            Ok(()) => {}
            // Already gone (detached concurrently): fine.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(attach_err("detaching the previous", e)),
        }
    }
    Ok(())
}

fn open_dir(dir: &Path) -> Result<OwnedFd, CgroupError> {
    std::fs::File::open(dir)
        .map(OwnedFd::from)
        .map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })
}
