//! Filling [`Stats`] from v1 controller files or a v2 directory, as runc's `events --stats`.
//!
//! Missing files (controller not mounted, feature not in this kernel) leave their fields at
//! zero; unreadable or malformed files are errors naming the file.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cgroupfs::{parse_flat_keyed, read_keyed, read_opt, read_u64_opt};
use crate::stats::*;
use crate::CgroupError;

/// Nanoseconds per USER_HZ tick of cpuacct.stat (USER_HZ is 100 on Linux).
const NS_PER_TICK: u64 = 10_000_000;

fn list(dir: &Path, file: &str) -> Result<Vec<u64>, CgroupError> {
    Ok(read_opt(dir, file)?
        .map(|s| {
            s.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default())
}

/// A `key value` per line file; missing file = empty.
pub(crate) fn keyed(dir: &Path, file: &str) -> Result<BTreeMap<String, u64>, CgroupError> {
    Ok(read_opt(dir, file)?
        .map(|s| {
            parse_flat_keyed(&s)
                .map(|(k, v)| (k.to_string(), v))
                .collect()
        })
        .unwrap_or_default())
}

/// "max"/huge limits are reported as u64::MAX-like values by the kernel; keep them as read.
fn limit_v1(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    read_u64_opt(dir, file)
}

/// Hugepage sizes of this host as cgroup files name them ("2MB", "1GB").
fn hugepage_sizes() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let kb: u64 = n
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(size_name(kb))
        })
        .collect();
    v.sort();
    v
}

fn size_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

/// Cumulative CPU nanoseconds from a v1 cpuacct directory (`cpuacct.usage`, one file).
pub(crate) fn cpu_usage_v1(d: &Path) -> Result<u64, CgroupError> {
    read_u64_opt(d, "cpuacct.usage")
}

/// Cumulative CPU nanoseconds from a v2 directory (`usage_usec` of `cpu.stat`, which the
/// kernel keeps whether or not the cpu controller is enabled).
pub(crate) fn cpu_usage_v2(d: &Path) -> Result<u64, CgroupError> {
    Ok(read_keyed(d, "cpu.stat", "usage_usec")?.unwrap_or(0) * 1000)
}

/// Stats from v1 controller directories (controller → dir).
pub(crate) fn v1(dirs: &BTreeMap<&str, &Path>) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    if let Some(d) = dirs.get("cpuacct") {
        let u = &mut s.cpu.usage;
        u.total = read_u64_opt(d, "cpuacct.usage")?;
        u.percpu = list(d, "cpuacct.usage_percpu")?;
        u.percpu_kernel = list(d, "cpuacct.usage_percpu_sys")?;
        u.percpu_user = list(d, "cpuacct.usage_percpu_user")?;
        let st = keyed(d, "cpuacct.stat")?;
        u.user = st.get("user").copied().unwrap_or(0) * NS_PER_TICK;
        u.kernel = st.get("system").copied().unwrap_or(0) * NS_PER_TICK;
    }
    if let Some(d) = dirs.get("cpu") {
        let st = keyed(d, "cpu.stat")?;
        s.cpu.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(d) = dirs.get("memory") {
        let entry = |prefix: &str| -> Result<MemoryEntry, CgroupError> {
            Ok(MemoryEntry {
                limit: limit_v1(d, &format!("{prefix}.limit_in_bytes"))?,
                usage: read_u64_opt(d, &format!("{prefix}.usage_in_bytes"))?,
                max: read_u64_opt(d, &format!("{prefix}.max_usage_in_bytes"))?,
                failcnt: read_u64_opt(d, &format!("{prefix}.failcnt"))?,
            })
        };
        let m = &mut s.memory;
        m.usage = entry("memory")?;
        m.swap = entry("memory.memsw")?;
        m.kernel = entry("memory.kmem")?;
        m.kernel_tcp = entry("memory.kmem.tcp")?;
        m.raw = keyed(d, "memory.stat")?;
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(d) = dirs.get("pids") {
        s.pids.current = read_u64_opt(d, "pids.current")?;
        s.pids.limit = pids_limit(d)?;
    }
    if let Some(d) = dirs.get("blkio") {
        s.blkio = blkio_v1(d)?;
    }
    if let Some(d) = dirs.get("hugetlb") {
        for size in hugepage_sizes() {
            let h = Hugetlb {
                usage: read_u64_opt(d, &format!("hugetlb.{size}.usage_in_bytes"))?,
                max: read_u64_opt(d, &format!("hugetlb.{size}.max_usage_in_bytes"))?,
                failcnt: read_u64_opt(d, &format!("hugetlb.{size}.failcnt"))?,
            };
            s.hugetlb.insert(size, h);
        }
    }
    Ok(s)
}

fn pids_limit(d: &Path) -> Result<u64, CgroupError> {
    // "max" is reported as 0 (no limit), as runc does.
    Ok(match read_u64_opt(d, "pids.max")? {
        u64::MAX => 0,
        v => v,
    })
}

/// blkio: CFQ files when present, else BFQ, else the throttle counters (runc's order).
fn blkio_v1(d: &Path) -> Result<Blkio, CgroupError> {
    let mut b = Blkio::default();
    let prefix = if d.join("blkio.io_service_bytes_recursive").exists() {
        "blkio."
    } else if d.join("blkio.bfq.io_service_bytes_recursive").exists() {
        "blkio.bfq."
    } else {
        "blkio.throttle."
    };
    b.io_service_bytes_recursive =
        blkio_entries(d, &format!("{prefix}io_service_bytes_recursive"))?;
    b.io_serviced_recursive = blkio_entries(d, &format!("{prefix}io_serviced_recursive"))?;
    if prefix == "blkio." {
        b.io_queued_recursive = blkio_entries(d, "blkio.io_queued_recursive")?;
        b.io_service_time_recursive = blkio_entries(d, "blkio.io_service_time_recursive")?;
        b.io_wait_time_recursive = blkio_entries(d, "blkio.io_wait_time_recursive")?;
        b.io_merged_recursive = blkio_entries(d, "blkio.io_merged_recursive")?;
        b.io_time_recursive = blkio_entries(d, "blkio.time_recursive")?;
        b.sectors_recursive = blkio_entries(d, "blkio.sectors_recursive")?;
    }
    Ok(b)
}

/// Lines "8:0 Read 4096" (or "8:0 4096"); the "Total" line is skipped.
fn blkio_entries(d: &Path, file: &str) -> Result<Vec<BlkioEntry>, CgroupError> {
    let Some(text) = read_opt(d, file)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dev, op, val) = match f[..] {
            [dev, op, val] => (dev, op, val),
            [dev, val] => (dev, "", val),
            _ => continue,
        };
        let Some((maj, min)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(value)) = (maj.parse(), min.parse(), val.parse()) else {
            continue;
        };
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value,
        });
    }
    Ok(out)
}

/// Stats from a v2 directory.
pub(crate) fn v2(d: &Path) -> Result<Stats, CgroupError> {
    let mut s = Stats::default();
    let cpu = keyed(d, "cpu.stat")?;
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = get(&cpu, "usage_usec") * 1000;
    s.cpu.usage.user = get(&cpu, "user_usec") * 1000;
    s.cpu.usage.kernel = get(&cpu, "system_usec") * 1000;
    s.cpu.throttling = Throttling {
        periods: get(&cpu, "nr_periods"),
        throttled_periods: get(&cpu, "nr_throttled"),
        throttled_time: get(&cpu, "throttled_usec") * 1000,
    };
    if d.join("memory.current").exists() {
        let m = &mut s.memory;
        m.raw = keyed(d, "memory.stat")?;
        m.cache = get(&m.raw, "file");
        let events = keyed(d, "memory.events")?;
        m.usage = MemoryEntry {
            limit: read_u64_opt(d, "memory.max")?,
            usage: read_u64_opt(d, "memory.current")?,
            max: read_u64_opt(d, "memory.peak")?,
            failcnt: get(&events, "max"),
        };
        // Like runc: v2 swap is reported as memory+swap, matching v1's memsw.
        if d.join("memory.swap.current").exists() {
            let swap = read_u64_opt(d, "memory.swap.current")?;
            let swap_max = read_u64_opt(d, "memory.swap.max")?;
            m.swap = MemoryEntry {
                limit: swap_max.saturating_add(m.usage.limit),
                usage: swap.saturating_add(m.usage.usage),
                max: 0,
                failcnt: get(&keyed(d, "memory.swap.events")?, "max"),
            };
        }
    }
    if d.join("pids.current").exists() {
        s.pids.current = read_u64_opt(d, "pids.current")?;
        s.pids.limit = pids_limit(d)?;
    }
    if let Some(text) = read_opt(d, "io.stat")? {
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let Some((maj, min)) = f.next().and_then(|dev| dev.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
                continue;
            };
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                    "dbytes" => (&mut s.blkio.io_service_bytes_recursive, "Discard"),
                    "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                    "dios" => (&mut s.blkio.io_serviced_recursive, "Discard"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
        }
    }
    for size in hugepage_sizes() {
        let cur = format!("hugetlb.{size}.current");
        if !d.join(&cur).exists() {
            continue;
        }
        let h = Hugetlb {
            usage: read_u64_opt(d, &cur)?,
            max: 0,
            failcnt: get(&keyed(d, &format!("hugetlb.{size}.events"))?, "max"),
        };
        s.hugetlb.insert(size, h);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_names() {
        assert_eq!(size_name(2048), "2MB");
        assert_eq!(size_name(1 << 20), "1GB");
        assert_eq!(size_name(64), "64KB");
    }
}
