//! Resources of a container: the OCI `linux.resources` fields (memory, CPU, hugepages,
//! unified) and the lowest oom_score_adj the host allows.

use serde_json::{json, Value};

use crate::runtime::types::Resources;

/// The OCI `linux.resources` fields of `r` (device rules untouched).
pub fn resources_json(r: &Resources, out: &mut Value) {
    let mut mem = serde_json::Map::new();
    if r.memory_limit_in_bytes > 0 {
        mem.insert("limit".into(), json!(r.memory_limit_in_bytes));
        let swap = if r.memory_swap_limit_in_bytes > 0 {
            r.memory_swap_limit_in_bytes
        } else {
            r.memory_limit_in_bytes
        };
        mem.insert("swap".into(), json!(swap));
    }
    let mut cpu = serde_json::Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if r.cpu_quota != 0 {
        cpu.insert("quota".into(), json!(r.cpu_quota));
    }
    if r.cpu_period > 0 {
        cpu.insert("period".into(), json!(r.cpu_period));
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(r.cpuset_mems));
    }
    if !mem.is_empty() {
        out["memory"] = Value::Object(mem);
    }
    if !cpu.is_empty() {
        out["cpu"] = Value::Object(cpu);
    }
    if !r.hugepage_limits.is_empty() {
        out["hugepageLimits"] = r
            .hugepage_limits
            .iter()
            .map(|(k, v)| json!({"pageSize": k, "limit": v}))
            .collect();
    }
    if !r.unified.is_empty() {
        out["unified"] = json!(r.unified);
    }
}

/// The lowest oom_score_adj this process may give its children: its own unless it
/// holds CAP_SYS_RESOURCE.
pub fn min_oom_score_adj() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if cap_eff & (1 << 24) != 0 {
        return -1000;
    }
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Refuses values no kernel or runtime takes (runc's limits), before anything is created or
/// the shim is asked: the runtime's refusal came back as an INTERNAL error of the shim.
pub fn check(r: &crate::runtime::types::Resources) -> crate::runtime::error::Result<()> {
    let bad = |what: &str, v: i64, rule: &str| {
        Err(crate::runtime::error::invalid(format!(
            "linux resources: {what} {v} {rule}"
        )))
    };
    if r.cpu_period < 0 || (r.cpu_period > 0 && !(1_000..=1_000_000).contains(&r.cpu_period)) {
        return bad(
            "cpu_period",
            r.cpu_period,
            "must be 0 or 1000..=1000000 (µs)",
        );
    }
    if r.cpu_quota < -1 || (r.cpu_quota > 0 && r.cpu_quota < 1_000) {
        return bad(
            "cpu_quota",
            r.cpu_quota,
            "must be -1, 0 or at least 1000 (µs)",
        );
    }
    if r.cpu_shares < 0 {
        return bad("cpu_shares", r.cpu_shares, "is negative");
    }
    if r.memory_limit_in_bytes < 0 {
        return bad(
            "memory_limit_in_bytes",
            r.memory_limit_in_bytes,
            "is negative",
        );
    }
    for size in r.hugepage_limits.keys() {
        let digits = size.trim_end_matches(['K', 'M', 'G', 'T', 'P']).len();
        let ok = size.ends_with('B')
            && size.len() >= 3
            && matches!(
                size.as_bytes()[size.len() - 2],
                b'K' | b'M' | b'G' | b'T' | b'P'
            )
            && size[..size.len() - 2].bytes().all(|b| b.is_ascii_digit())
            && digits > 0;
        if !ok {
            return Err(crate::runtime::error::invalid(format!(
                "linux resources: hugepage size {size:?} is not like \"2MB\" or \"1GB\""
            )));
        }
    }
    if r.memory_swap_limit_in_bytes < -1 {
        return bad(
            "memory_swap_limit_in_bytes",
            r.memory_swap_limit_in_bytes,
            "must be -1 or more",
        );
    }
    Ok(())
}
