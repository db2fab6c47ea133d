//! Stats of one cgroup, shaped like the `data` object of runc's `events --stats`
//! (runc `types/events.go`): field names and JSON keys match so tools reading runc's
//! output read ours.

use std::collections::BTreeMap;

/// The `data` object of `events --stats`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    /// Keyed by page size as the kernel names it ("2MB", "1GB").
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

/// CPU accounting.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

/// CFS throttling counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// Memory accounting (bytes).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat key/values as the kernel prints them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Unlimited memory limits are reported by the kernel as a huge value (v1: the page-rounded
/// `i64::MAX`, v2: `max`, read as `u64::MAX`); anything above this is "no limit" (the
/// threshold cadvisor and CRI-O use).
pub const MEMORY_UNLIMITED: u64 = 1 << 62;

/// Values derived from [`Memory`] the way cadvisor and kubelet define them, the same on v1
/// and v2 (v1's hierarchical `total_*` keys of memory.stat are preferred where both exist,
/// v2's keys are hierarchical already).
impl Memory {
    /// A memory.stat counter of this cgroup and its descendants: v1 `total_<key>` when
    /// present, else `<key>`; 0 when absent.
    pub fn stat(&self, key: &str) -> u64 {
        self.raw
            .get(&format!("total_{key}"))
            .or_else(|| self.raw.get(key))
            .copied()
            .unwrap_or(0)
    }

    /// Working set: usage minus inactive file pages (what kubelet evicts on).
    pub fn working_set(&self) -> u64 {
        self.usage.usage.saturating_sub(self.stat("inactive_file"))
    }

    /// Anonymous memory (v1 `rss`, v2 `anon`).
    pub fn rss(&self) -> u64 {
        if self.raw.contains_key("total_rss") || self.raw.contains_key("rss") {
            self.stat("rss")
        } else {
            self.stat("anon")
        }
    }

    /// Page cache (v1 `cache`, v2 `file`).
    pub fn page_cache(&self) -> u64 {
        if self.raw.contains_key("total_cache") || self.raw.contains_key("cache") {
            self.stat("cache")
        } else {
            self.stat("file")
        }
    }

    /// Memory-mapped file pages (v1 `mapped_file`, v2 `file_mapped`).
    pub fn mapped_file(&self) -> u64 {
        if self.raw.contains_key("total_mapped_file") || self.raw.contains_key("mapped_file") {
            self.stat("mapped_file")
        } else {
            self.stat("file_mapped")
        }
    }

    /// The memory limit, `None` when unlimited or unknown.
    pub fn limit(&self) -> Option<u64> {
        let l = self.usage.limit;
        (l > 0 && l < MEMORY_UNLIMITED).then_some(l)
    }

    /// Swap in use, `None` without swap accounting ([`Memory::swap`] holds memory+swap, as
    /// runc reports it on both versions).
    pub fn swap_usage(&self) -> Option<u64> {
        (self.swap.limit > 0).then(|| self.swap.usage.saturating_sub(self.usage.usage))
    }
}

/// One memory counter.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

/// Pids controller.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// Block I/O statistics.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

/// One blkio line: device, operation, value.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    pub value: u64,
}

/// One huge page size.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every key runc's `types/events.go` names, each with a non-zero value: read and written
    /// back unchanged (so each field keeps runc's JSON name, including the irregular
    /// `ioQueueRecursive` and `kernelTCP`).
    #[test]
    fn runc_keys_round_trip() {
        let e = serde_json::json!({"major": 8, "minor": 1, "op": "Read", "value": 5});
        let m = serde_json::json!({"limit": 1, "usage": 2, "max": 3, "failcnt": 4});
        let runc = serde_json::json!({
            "cpu": {
                "usage": {"total": 1, "percpu": [2], "percpu_kernel": [3], "percpu_user": [4],
                          "kernel": 5, "user": 6},
                "throttling": {"periods": 1, "throttledPeriods": 2, "throttledTime": 3}
            },
            "memory": {"cache": 1, "usage": m, "swap": m, "kernel": m, "kernelTCP": m,
                       "raw": {"rss": 7}},
            "pids": {"current": 1, "limit": 2},
            "blkio": {
                "ioServiceBytesRecursive": [e], "ioServicedRecursive": [e],
                "ioQueueRecursive": [e], "ioServiceTimeRecursive": [e],
                "ioWaitTimeRecursive": [e], "ioMergedRecursive": [e],
                "ioTimeRecursive": [e], "sectorsRecursive": [e]
            },
            "hugetlb": {"2MB": {"usage": 1, "max": 2, "failcnt": 3}}
        });
        let s: Stats = serde_json::from_value(runc.clone()).unwrap();
        assert_eq!(s.blkio.io_queued_recursive[0].value, 5);
        assert_eq!(s.memory.kernel_tcp.failcnt, 4);
        assert_eq!(serde_json::to_value(&s).unwrap(), runc);
    }

    /// Absent keys read as zero (runc omits zero counters), and zeros are omitted again.
    #[test]
    fn absent_keys_are_zero() {
        let runc = serde_json::json!({
            "cpu": {"usage": {}, "throttling": {}},
            "memory": {"usage": {}},
            "pids": {},
            "blkio": {},
            "hugetlb": {"1GB": {}}
        });
        let s: Stats = serde_json::from_value(runc).unwrap();
        assert_eq!(s.memory, Memory::default());
        assert_eq!(s.hugetlb["1GB"], Hugetlb::default());
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["blkio"], serde_json::json!({}));
        assert_eq!(back["pids"], serde_json::json!({}));
        assert_eq!(
            back["cpu"]["usage"],
            serde_json::json!({"kernel": 0, "user": 0})
        );
    }
}
