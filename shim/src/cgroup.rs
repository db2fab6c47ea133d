//! A container's cgroup metrics for the Stats request, in containerd's message shapes
//! (`io.containerd.cgroups.v1.Metrics` / `.v2.Metrics`). Where the cgroup is, what it
//! counts and how OOMs are watched are crust-cgroups' facts ([`crust_cgroups::Cgroup`]);
//! this module only maps its stats onto containerd's protobuf fields.

use containerd_shim_protos::cgroups::metrics as v1m;
use containerd_shim_protos::cgroups_v2::metrics as v2m;
use crust_cgroups::Cgroup;
use protobuf::well_known_types::any::Any;
use protobuf::Message;

/// containerd's metrics message for `cg`, packed as an Any. Unreadable files read as zero.
pub fn metrics(cg: &Cgroup) -> Any {
    let s = cg.stats().unwrap_or_default();
    let ev = cg.memory_events().unwrap_or_default();
    let event = |k: &str| ev.get(k).copied().unwrap_or(0);
    let raw = |k: &str| s.memory.raw.get(k).copied().unwrap_or(0);
    if cg.is_v2() {
        let mut m = v2m::Metrics::new();
        let mut pids = v2m::PidsStat::new();
        pids.current = s.pids.current;
        pids.limit = s.pids.limit;
        m.pids = Some(pids).into();
        let mut cpu = v2m::CPUStat::new();
        cpu.usage_usec = s.cpu.usage.total / 1000;
        cpu.user_usec = s.cpu.usage.user / 1000;
        cpu.system_usec = s.cpu.usage.kernel / 1000;
        m.cpu = Some(cpu).into();
        let mut mem = v2m::MemoryStat::new();
        mem.anon = raw("anon");
        mem.file = raw("file");
        mem.inactive_file = raw("inactive_file");
        mem.active_file = raw("active_file");
        mem.usage = s.memory.usage.usage;
        mem.usage_limit = s.memory.usage.limit;
        m.memory = Some(mem).into();
        let mut e = v2m::MemoryEvents::new();
        e.oom = event("oom");
        e.oom_kill = event("oom_kill");
        e.max = event("max");
        e.high = event("high");
        m.memory_events = Some(e).into();
        return pack("io.containerd.cgroups.v2.Metrics", &m);
    }
    let has = |c: &str| {
        cg.hierarchies()
            .iter()
            .any(|h| h.controllers.split(',').any(|x| x == c))
    };
    let mut m = v1m::Metrics::new();
    if has("pids") {
        let mut p = v1m::PidsStat::new();
        p.current = s.pids.current;
        p.limit = s.pids.limit;
        m.pids = Some(p).into();
    }
    if has("cpuacct") {
        let mut u = v1m::CPUUsage::new();
        u.total = s.cpu.usage.total;
        // cpuacct.usage_user/_sys are the sums of the per-CPU files.
        u.user = s.cpu.usage.percpu_user.iter().sum();
        u.kernel = s.cpu.usage.percpu_kernel.iter().sum();
        let mut cpu = v1m::CPUStat::new();
        cpu.usage = Some(u).into();
        m.cpu = Some(cpu).into();
    }
    if has("memory") {
        let mut ms = v1m::MemoryStat::new();
        ms.cache = raw("cache");
        ms.rss = raw("rss");
        ms.mapped_file = raw("mapped_file");
        ms.inactive_file = raw("inactive_file");
        ms.active_file = raw("active_file");
        ms.total_inactive_file = raw("total_inactive_file");
        ms.total_rss = raw("total_rss");
        ms.total_cache = raw("total_cache");
        ms.pg_fault = raw("pgfault");
        ms.pg_maj_fault = raw("pgmajfault");
        let mut e = v1m::MemoryEntry::new();
        e.usage = s.memory.usage.usage;
        e.limit = s.memory.usage.limit;
        e.max = s.memory.usage.max;
        e.failcnt = s.memory.usage.failcnt;
        ms.usage = Some(e).into();
        m.memory = Some(ms).into();
        let mut o = v1m::MemoryOomControl::new();
        o.oom_kill_disable = event("oom_kill_disable");
        o.under_oom = event("under_oom");
        o.oom_kill = event("oom_kill");
        m.memory_oom_control = Some(o).into();
    }
    pack("io.containerd.cgroups.v1.Metrics", &m)
}

/// Packs `m` (type URL written out: see `events::Publisher::send`).
fn pack(type_url: &str, m: &impl Message) -> Any {
    let mut any = Any::new();
    any.type_url = type_url.to_string();
    any.value = m.write_to_bytes().unwrap_or_default();
    any
}
