//! Validation of `linux.resources` and the value conversions shared by the v1 and v2 writers.
//!
//! [`validate`] checks every field before anything is written, so a bad value changes nothing;
//! errors name the field by its path in config.json.

use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

use crate::CgroupError;

fn bad(field: impl Into<String>, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidResource {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks value ranges and formats; `v2` selects the version-specific rules.
pub(crate) fn validate(r: &LinuxResources, v2: bool) -> Result<(), CgroupError> {
    if let Some(cpu) = r.cpu() {
        if let Some(s) = cpu.shares() {
            if s != 0 && !(2..=262_144).contains(&s) {
                return Err(bad(
                    "linux.resources.cpu.shares",
                    format!("{s} is outside 2..=262144"),
                ));
            }
        }
        if let Some(q) = cpu.quota() {
            if q != -1 && q != 0 && q < 1000 {
                return Err(bad(
                    "linux.resources.cpu.quota",
                    format!("{q} must be -1 or at least 1000 (µs)"),
                ));
            }
        }
        if let Some(p) = cpu.period() {
            if p != 0 && !(1000..=1_000_000).contains(&p) {
                return Err(bad(
                    "linux.resources.cpu.period",
                    format!("{p} is outside 1000..=1000000 (µs)"),
                ));
            }
        }
        if let Some(i) = cpu.idle() {
            if !(0..=1).contains(&i) {
                return Err(bad(
                    "linux.resources.cpu.idle",
                    format!("{i} must be 0 or 1"),
                ));
            }
        }
        if v2
            && (cpu.realtime_runtime().is_some_and(|v| v != 0)
                || cpu.realtime_period().is_some_and(|v| v != 0))
        {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.cpu.realtimeRuntime/realtimePeriod".into(),
                reason: "cgroup v2 has no realtime scheduling limits",
            });
        }
        if let Some(c) = cpu.cpus() {
            check_list("linux.resources.cpu.cpus", c)?;
        }
        if let Some(m) = cpu.mems() {
            check_list("linux.resources.cpu.mems", m)?;
        }
    }
    if let Some(m) = r.memory() {
        for (f, v) in [
            ("limit", m.limit()),
            ("reservation", m.reservation()),
            ("swap", m.swap()),
        ] {
            if let Some(v) = v {
                if v < -1 {
                    return Err(bad(
                        format!("linux.resources.memory.{f}"),
                        format!("{v} must be -1 (unlimited) or a byte count"),
                    ));
                }
            }
        }
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(bad(
                    "linux.resources.memory.swap",
                    format!("{s} is below memory.limit {l} (swap is memory+swap)"),
                ));
            }
        }
        if v2 {
            swap_v2(m.swap().unwrap_or(0), m.limit().unwrap_or(0))?;
        }
        if let Some(s) = m.swappiness() {
            // u64::MAX is how -1 ("unset") arrives from Go-written specs.
            if s > 100 && s != u64::MAX {
                return Err(bad(
                    "linux.resources.memory.swappiness",
                    format!("{s} is outside 0..=100"),
                ));
            }
        }
    }
    if let Some(b) = r.block_io() {
        for (f, w) in [("weight", b.weight()), ("leafWeight", b.leaf_weight())] {
            if let Some(w) = w {
                if w != 0 && !(10..=1000).contains(&w) {
                    return Err(bad(
                        format!("linux.resources.blockIO.{f}"),
                        format!("{w} is outside 10..=1000"),
                    ));
                }
            }
        }
        for (i, wd) in b.weight_device().iter().flatten().enumerate() {
            check_dev(
                &format!("linux.resources.blockIO.weightDevice[{i}]"),
                wd.major(),
                wd.minor(),
            )?;
            for w in [wd.weight(), wd.leaf_weight()].into_iter().flatten() {
                if w != 0 && !(10..=1000).contains(&w) {
                    return Err(bad(
                        format!("linux.resources.blockIO.weightDevice[{i}].weight"),
                        format!("{w} is outside 10..=1000"),
                    ));
                }
            }
        }
        for (name, list) in [
            ("throttleReadBpsDevice", b.throttle_read_bps_device()),
            ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
            ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
            ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
        ] {
            for (i, t) in list.iter().flatten().enumerate() {
                check_dev(
                    &format!("linux.resources.blockIO.{name}[{i}]"),
                    t.major(),
                    t.minor(),
                )?;
            }
        }
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let ps = h.page_size();
        let ok = ps.len() > 2
            && (ps.ends_with("KB") || ps.ends_with("MB") || ps.ends_with("GB"))
            && ps[..ps.len() - 2].bytes().all(|c| c.is_ascii_digit());
        if !ok {
            return Err(bad(
                format!("linux.resources.hugepageLimits[{i}].pageSize"),
                format!("{ps:?} is not like \"2MB\""),
            ));
        }
        if h.limit() < 0 {
            return Err(bad(
                format!("linux.resources.hugepageLimits[{i}].limit"),
                "must not be negative",
            ));
        }
    }
    for (i, d) in r.devices().iter().flatten().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        if matches!(d.typ(), Some(LinuxDeviceType::P)) {
            return Err(bad(
                format!("{field}.type"),
                "fifo (\"p\") is not a device cgroup type (a, b, c)",
            ));
        }
        for (f, v) in [("major", d.major()), ("minor", d.minor())] {
            if let Some(v) = v {
                if v < -1 || v > i64::from(u32::MAX) {
                    return Err(bad(
                        format!("{field}.{f}"),
                        format!("{v} is not a device number"),
                    ));
                }
            }
        }
        if let Some(a) = d.access() {
            crate::devices::parse_access(a).ok_or_else(|| {
                bad(
                    format!("{field}.access"),
                    format!("{a:?} must be made of r, w, m"),
                )
            })?;
        }
    }
    if let Some(u) = r.unified() {
        if !u.is_empty() && !v2 {
            return Err(CgroupError::Unsupported {
                field: "linux.resources.unified".into(),
                reason: "it needs cgroup v2 (this host uses v1 controllers)",
            });
        }
        for (k, v) in u {
            let field = format!("linux.resources.unified[{k:?}]");
            if k.is_empty() || k.contains('/') || k.starts_with('.') || !k.contains('.') {
                return Err(bad(
                    field,
                    "key must be an interface file name like \"memory.high\"",
                ));
            }
            if matches!(
                k.as_str(),
                "cgroup.procs" | "cgroup.threads" | "cgroup.subtree_control"
            ) {
                return Err(bad(
                    field,
                    "process membership and controllers are not resources",
                ));
            }
            if v.contains('\0') {
                return Err(bad(field, "value contains a NUL byte"));
            }
        }
    }
    if let Some(n) = r.network() {
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            let name = p.name();
            if name.is_empty() || name.contains(char::is_whitespace) || name.contains('/') {
                return Err(bad(
                    format!("linux.resources.network.priorities[{i}].name"),
                    format!("{name:?} is not an interface name"),
                ));
            }
        }
    }
    Ok(())
}

fn check_dev(field: &str, major: i64, minor: i64) -> Result<(), CgroupError> {
    if !(0..=i64::from(u32::MAX)).contains(&major) || !(0..=i64::from(u32::MAX)).contains(&minor) {
        return Err(bad(
            field,
            format!("{major}:{minor} is not a device number"),
        ));
    }
    Ok(())
}

/// cpuset list syntax: "0-3,5,7-8".
fn check_list(field: &str, s: &str) -> Result<(), CgroupError> {
    let ok = s.trim().is_empty()
        || s.trim().split(',').all(|part| {
            let mut it = part.splitn(2, '-');
            let a = it.next().and_then(|a| a.parse::<u32>().ok());
            match (a, it.next()) {
                (Some(_), None) => true,
                (Some(a), Some(b)) => b.parse::<u32>().is_ok_and(|b| b >= a),
                _ => false,
            }
        });
    if ok {
        Ok(())
    } else {
        Err(bad(field, format!("{s:?} is not a list like \"0-3,5\"")))
    }
}

/// runc's cpu.shares (2..262144) → cpu.weight (1..10000); 0 stays "unset".
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.saturating_sub(2)) * 9999) / 262_142
}

/// blkio.weight (10..1000) → io.weight (1..10000); 0 stays "unset".
pub(crate) fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// OCI memory.swap is memory+swap (v1 semantics); v2's memory.swap.max is swap alone.
/// Returns -1 for "max", 0 for "leave alone" … as runc's conversion, with the special case
/// that swap == limit means "no swap" (`Some(0)` to write).
pub(crate) fn swap_v2(swap: i64, limit: i64) -> Result<Option<i64>, CgroupError> {
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    if swap == -1 {
        return Ok(Some(-1));
    }
    if swap == 0 {
        return Ok(None);
    }
    if limit == 0 || limit == -1 {
        return Err(bad(
            "linux.resources.memory.swap",
            "a swap limit needs a memory limit",
        ));
    }
    if swap < limit {
        return Err(bad(
            "linux.resources.memory.swap",
            format!("{swap} is below memory.limit {limit} (swap is memory+swap)"),
        ));
    }
    Ok(Some(swap - limit))
}

/// A limit for a file where -1 means "max" (v2) .
pub(crate) fn v2_limit(v: i64) -> String {
    if v < 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder};

    #[test]
    fn conversions_match_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
        assert_eq!(swap_v2(0, -1).unwrap(), Some(-1));
        assert_eq!(swap_v2(-1, 100).unwrap(), Some(-1));
        assert_eq!(swap_v2(0, 100).unwrap(), None);
        assert_eq!(swap_v2(300, 100).unwrap(), Some(200));
        assert_eq!(swap_v2(100, 100).unwrap(), Some(0));
        assert!(swap_v2(50, 100).is_err());
        assert!(swap_v2(50, 0).is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let r = LinuxResourcesBuilder::default()
            .cpu(LinuxCpuBuilder::default().shares(1u64).build().unwrap())
            .build()
            .unwrap();
        let e = validate(&r, false).unwrap_err().to_string();
        assert!(e.contains("linux.resources.cpu.shares"), "{e}");

        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .swappiness(101u64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let e = validate(&r, false).unwrap_err().to_string();
        assert!(e.contains("linux.resources.memory.swappiness"), "{e}");

        let r = LinuxResourcesBuilder::default()
            .cpu(LinuxCpuBuilder::default().cpus("0-a").build().unwrap())
            .build()
            .unwrap();
        assert!(validate(&r, true)
            .unwrap_err()
            .to_string()
            .contains("cpu.cpus"));

        let r = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .realtime_runtime(100i64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(validate(&r, false).is_ok());
        assert!(validate(&r, true)
            .unwrap_err()
            .to_string()
            .contains("realtime"));
    }

    #[test]
    fn unified_keys_checked() {
        let mut u = std::collections::HashMap::new();
        u.insert("../memory.max".to_string(), "1".to_string());
        let r = LinuxResourcesBuilder::default().unified(u).build().unwrap();
        assert!(validate(&r, true)
            .unwrap_err()
            .to_string()
            .contains("unified"));
        let mut u = std::collections::HashMap::new();
        u.insert("memory.high".to_string(), "1".to_string());
        let r = LinuxResourcesBuilder::default().unified(u).build().unwrap();
        assert!(validate(&r, true).is_ok());
        assert!(matches!(
            validate(&r, false),
            Err(CgroupError::Unsupported { .. })
        ));
    }
}
