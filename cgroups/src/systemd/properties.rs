//! `linux.resources` → the unit properties systemd owns on cgroup v2, as runc's systemd
//! driver sets them (same conversions and defaults). Everything else (io.max, hugetlb,
//! rdma, memory.high when systemd is not told, device filters, unified keys systemd has no
//! property for) is written to the cgroup files after the unit exists, so both agree.
//!
//! Pure: builds a list of [`Prop`]s, which the D-Bus client turns into `a(sv)`. Values are
//! validated by [`crate::resources::validate`] before this is called.

use oci_spec::runtime::LinuxResources;

use crate::resources::{blkio_to_io_weight, shares_to_weight, swap_v2};
use crate::CgroupError;

/// systemd's "infinity" for the u64 limit properties.
pub(crate) const INFINITY: u64 = u64::MAX;

/// One property value, in the D-Bus type systemd declares for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// `b`
    Bool(bool),
    /// `t`
    U64(u64),
    /// `s`
    Str(String),
    /// `au` (PIDs)
    U32s(Vec<u32>),
    /// `ay` (AllowedCPUs/AllowedMemoryNodes bitmasks, lowest CPU in the lowest bit of
    /// the first byte)
    Bytes(Vec<u8>),
    /// `a(st)` (IODeviceWeight: device node path, weight)
    PathU64s(Vec<(String, u64)>),
}

/// (name, value) pairs in the order they are sent.
pub(crate) type Props = Vec<(&'static str, Value)>;

/// The properties for `r`.
pub(crate) fn from_resources(r: &LinuxResources) -> Result<Props, CgroupError> {
    let mut p = Props::new();
    if let Some(cpu) = r.cpu() {
        let w = shares_to_weight(cpu.shares().unwrap_or(0));
        if w != 0 {
            p.push(("CPUWeight", Value::U64(w)));
        }
        let quota = cpu.quota().unwrap_or(0);
        let period = cpu.period().unwrap_or(0);
        if quota != 0 || period != 0 {
            // systemd takes the quota per second of wall time, in 1% (10 ms) steps: round
            // up so the container never gets less than it asked for.
            let period_us = if period == 0 { 100_000 } else { period };
            let per_sec = if quota > 0 {
                let us = (quota as u64).saturating_mul(1_000_000) / period_us;
                us.div_ceil(10_000) * 10_000
            } else {
                INFINITY
            };
            p.push(("CPUQuotaPerSecUSec", Value::U64(per_sec)));
            if period != 0 {
                p.push(("CPUQuotaPeriodUSec", Value::U64(period)));
            }
        }
        if let Some(c) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            p.push(("AllowedCPUs", Value::Bytes(bitmask(c)?)));
        }
        if let Some(m) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            p.push(("AllowedMemoryNodes", Value::Bytes(bitmask(m)?)));
        }
    }
    if let Some(m) = r.memory() {
        let limit = m.limit().unwrap_or(0);
        if limit != 0 {
            p.push(("MemoryMax", Value::U64(limit_u64(limit))));
        }
        if let Some(res) = m.reservation().filter(|r| *r != 0) {
            p.push(("MemoryLow", Value::U64(limit_u64(res))));
        }
        if let Some(swap) = swap_v2(m.swap().unwrap_or(0), limit)? {
            p.push(("MemorySwapMax", Value::U64(limit_u64(swap))));
        }
    }
    if let Some(pids) = r.pids() {
        match pids.limit() {
            0 => {}
            l => p.push(("TasksMax", Value::U64(limit_u64(l)))),
        }
    }
    if let Some(b) = r.block_io() {
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            p.push(("IOWeight", Value::U64(blkio_to_io_weight(w))));
        }
        let devs: Vec<(String, u64)> = b
            .weight_device()
            .iter()
            .flatten()
            .filter_map(|d| {
                let w = d.weight().filter(|w| *w != 0)?;
                Some((
                    format!("/dev/block/{}:{}", d.major(), d.minor()),
                    blkio_to_io_weight(w),
                ))
            })
            .collect();
        if !devs.is_empty() {
            p.push(("IODeviceWeight", Value::PathU64s(devs)));
        }
    }
    // Unified keys systemd has a property for override the typed fields, as in runc.
    if let Some(u) = r.unified() {
        let mut keys: Vec<&String> = u.keys().collect();
        keys.sort();
        for k in keys {
            if let Some(prop) = unified(k, u[k].trim())? {
                p.retain(|(n, _)| *n != prop.0);
                p.push(prop);
            }
        }
    }
    Ok(p)
}

/// The property for unified key `key` = `v`, if systemd owns that file.
fn unified(key: &str, v: &str) -> Result<Option<(&'static str, Value)>, CgroupError> {
    let field = || format!("linux.resources.unified[{key:?}]");
    let num = |v: &str| -> Result<u64, CgroupError> {
        if v == "max" {
            return Ok(INFINITY);
        }
        v.parse::<u64>().map_err(|_| CgroupError::InvalidResource {
            field: field(),
            reason: format!("{v:?} is not a number or \"max\""),
        })
    };
    Ok(Some(match key {
        "memory.max" => ("MemoryMax", Value::U64(num(v)?)),
        "memory.high" => ("MemoryHigh", Value::U64(num(v)?)),
        "memory.low" => ("MemoryLow", Value::U64(num(v)?)),
        "memory.min" => ("MemoryMin", Value::U64(num(v)?)),
        "memory.swap.max" => ("MemorySwapMax", Value::U64(num(v)?)),
        "pids.max" => ("TasksMax", Value::U64(num(v)?)),
        "cpu.weight" => ("CPUWeight", Value::U64(num(v)?)),
        "cpuset.cpus" => ("AllowedCPUs", Value::Bytes(bitmask(v)?)),
        "cpuset.mems" => ("AllowedMemoryNodes", Value::Bytes(bitmask(v)?)),
        "cpu.max" => {
            let mut it = v.split_whitespace();
            let quota = it.next().unwrap_or("max");
            let period = match it.next() {
                Some(p) => p.parse::<u64>().map_err(|_| CgroupError::InvalidResource {
                    field: field(),
                    reason: format!("period {p:?} is not a number"),
                })?,
                None => 100_000,
            };
            if period == 0 {
                return Err(CgroupError::InvalidResource {
                    field: field(),
                    reason: "period 0".into(),
                });
            }
            let per_sec = match quota {
                "max" => INFINITY,
                q => {
                    let q = q.parse::<u64>().map_err(|_| CgroupError::InvalidResource {
                        field: field(),
                        reason: format!("quota {q:?} is not a number or \"max\""),
                    })?;
                    (q.saturating_mul(1_000_000) / period).div_ceil(10_000) * 10_000
                }
            };
            ("CPUQuotaPerSecUSec", Value::U64(per_sec))
        }
        _ => return Ok(None),
    }))
}

/// -1 → infinity.
fn limit_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(INFINITY)
}

/// "0-3,8" → the little-endian byte bitmask systemd's AllowedCPUs takes.
pub(crate) fn bitmask(list: &str) -> Result<Vec<u8>, CgroupError> {
    let bad = || CgroupError::InvalidResource {
        field: "cpuset".into(),
        reason: format!("{list:?} is not a list like \"0-3,5\""),
    };
    let mut out: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: usize = a.trim().parse().map_err(|_| bad())?;
        let b: usize = b.trim().parse().map_err(|_| bad())?;
        // The kernel's limit for CPU and node numbers is far below this.
        if a > b || b >= 8192 {
            return Err(bad());
        }
        for i in a..=b {
            if out.len() <= i / 8 {
                out.resize(i / 8 + 1, 0);
            }
            out[i / 8] |= 1 << (i % 8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder,
        LinuxResourcesBuilder, LinuxWeightDeviceBuilder,
    };
    use std::collections::HashMap;

    fn get<'a>(p: &'a Props, name: &str) -> Option<&'a Value> {
        p.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn bitmask_little_endian() {
        assert_eq!(bitmask("0").unwrap(), vec![1]);
        assert_eq!(bitmask("0-3,8").unwrap(), vec![0x0f, 0x01]);
        assert_eq!(bitmask("9").unwrap(), vec![0, 0x02]);
        assert!(bitmask("3-1").is_err());
        assert!(bitmask("a").is_err());
        assert!(bitmask("0-99999").is_err());
    }

    #[test]
    fn cpu_memory_pids_io() {
        let r = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(50_000i64)
                    .period(100_000u64)
                    .cpus("0-1")
                    .mems("0")
                    .build()
                    .unwrap(),
            )
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .swap(128 << 20)
                    .reservation(32 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
            .block_io(
                LinuxBlockIoBuilder::default()
                    .weight(500u16)
                    .weight_device(vec![LinuxWeightDeviceBuilder::default()
                        .major(8)
                        .minor(0)
                        .weight(100u16)
                        .build()
                        .unwrap()])
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let p = from_resources(&r).unwrap();
        // runc's conversions: 1024 shares → weight 39; 50 ms per 100 ms → 500 ms per s.
        assert_eq!(get(&p, "CPUWeight"), Some(&Value::U64(39)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), Some(&Value::U64(100_000)));
        assert_eq!(get(&p, "AllowedCPUs"), Some(&Value::Bytes(vec![3])));
        assert_eq!(get(&p, "AllowedMemoryNodes"), Some(&Value::Bytes(vec![1])));
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(64 << 20)));
        assert_eq!(get(&p, "MemoryLow"), Some(&Value::U64(32 << 20)));
        assert_eq!(get(&p, "MemorySwapMax"), Some(&Value::U64(64 << 20)));
        assert_eq!(get(&p, "TasksMax"), Some(&Value::U64(INFINITY)));
        // runc: 1 + (w - 10) * 9999 / 990 → 500 → 4950, 100 → 910.
        assert_eq!(get(&p, "IOWeight"), Some(&Value::U64(4950)));
        assert_eq!(
            get(&p, "IODeviceWeight"),
            Some(&Value::PathU64s(vec![("/dev/block/8:0".into(), 910)]))
        );
    }

    #[test]
    fn quota_rounds_up_to_whole_percent_and_unset_means_nothing() {
        let r = LinuxResourcesBuilder::default()
            .cpu(LinuxCpuBuilder::default().quota(1234i64).build().unwrap())
            .build()
            .unwrap();
        let p = from_resources(&r).unwrap();
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(20_000)));
        assert_eq!(get(&p, "CPUQuotaPeriodUSec"), None);
        assert!(from_resources(&LinuxResources::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn unified_keys_override_and_unknown_keys_are_left_to_the_files() {
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(100).build().unwrap())
            .unified(HashMap::from([
                ("memory.max".to_string(), "max".to_string()),
                ("memory.high".to_string(), "50000000".to_string()),
                ("cpu.max".to_string(), "25000 50000".to_string()),
                ("io.max".to_string(), "8:0 rbps=1".to_string()),
            ]))
            .build()
            .unwrap();
        let p = from_resources(&r).unwrap();
        assert_eq!(get(&p, "MemoryMax"), Some(&Value::U64(INFINITY)));
        assert_eq!(p.iter().filter(|(n, _)| *n == "MemoryMax").count(), 1);
        assert_eq!(get(&p, "MemoryHigh"), Some(&Value::U64(50_000_000)));
        assert_eq!(get(&p, "CPUQuotaPerSecUSec"), Some(&Value::U64(500_000)));
        assert!(p.iter().all(|(n, _)| !n.starts_with("IO")));
        let bad = LinuxResourcesBuilder::default()
            .unified(HashMap::from([(
                "memory.high".to_string(),
                "lots".to_string(),
            )]))
            .build()
            .unwrap();
        assert!(from_resources(&bad).is_err());
    }
}
