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
pub struct CpuUsage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    #[serde(default)]
    pub kernel: u64,
    #[serde(default)]
    pub user: u64,
}

/// CFS throttling counters.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Throttling {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(default, rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(default, rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// Memory accounting (bytes).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache: u64,
    #[serde(default)]
    pub usage: MemoryEntry,
    #[serde(default)]
    pub swap: MemoryEntry,
    #[serde(default)]
    pub kernel: MemoryEntry,
    #[serde(default, rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// memory.stat key/values as the kernel prints them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
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
pub struct MemoryEntry {
    #[serde(default)]
    pub limit: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    #[serde(default)]
    pub failcnt: u64,
}

/// Pids controller.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pids {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// Block I/O statistics.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Blkio {
    #[serde(
        default,
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioServicedRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioQueueRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_queued_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioWaitTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioMergedRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_merged_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "ioTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_time_recursive: Vec<BlkioEntry>,
    #[serde(
        default,
        rename = "sectorsRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sectors_recursive: Vec<BlkioEntry>,
}

/// One blkio line: device, operation, value.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BlkioEntry {
    #[serde(default)]
    pub major: u64,
    #[serde(default)]
    pub minor: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(default)]
    pub value: u64,
}

/// One huge page size.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hugetlb {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max: u64,
    #[serde(default)]
    pub failcnt: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(v: &u64) -> bool {
    *v == 0
}
