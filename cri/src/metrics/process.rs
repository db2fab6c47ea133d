//! crustd's own process figures, named as Prometheus' other clients name them
//! (`process_resident_memory_bytes`, `process_open_fds`, ...), read from /proc/self at
//! scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The process gauges.
#[derive(Default)]
pub(super) struct Process {
    rss: Gauge,
    vsize: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    cpu: Counter<f64, AtomicU64>,
    cpu_seen: AtomicU64,
    start: Gauge<f64, AtomicU64>,
}

/// Fields of /proc/self/stat after the command name: (utime, stime, starttime) in clock
/// ticks, vsize in bytes, rss in pages.
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
    vsize: u64,
    rss_pages: u64,
}

fn stat() -> Option<Stat> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // proc(5): field 3 (state) is f[0]; utime 14, stime 15, starttime 22, vsize 23, rss 24.
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some(Stat {
        utime: n(14)?,
        stime: n(15)?,
        starttime: n(22)?,
        vsize: n(23)?,
        rss_pages: n(24)?,
    })
}

fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn sysconf(name: libc::c_int) -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).unwrap_or(0)
}

impl Process {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            self.rss.clone(),
        );
        r.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            self.vsize.clone(),
        );
        r.register(
            "process_open_fds",
            "Number of open file descriptors",
            self.open_fds.clone(),
        );
        r.register(
            "process_max_fds",
            "Maximum number of open file descriptors",
            self.max_fds.clone(),
        );
        r.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            self.cpu.clone(),
        );
        r.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            self.start.clone(),
        );
    }

    pub(super) fn refresh(&self) {
        let tick = sysconf(libc::_SC_CLK_TCK).max(1);
        if let Some(s) = stat() {
            let page = sysconf(libc::_SC_PAGESIZE);
            self.rss.set((s.rss_pages * page) as i64);
            self.vsize.set(s.vsize as i64);
            let ticks = s.utime + s.stime;
            let seen = self.cpu_seen.swap(ticks, Ordering::Relaxed);
            self.cpu
                .inc_by(ticks.saturating_sub(seen) as f64 / tick as f64);
            if let Some(bt) = boot_time() {
                self.start.set(bt as f64 + s.starttime as f64 / tick as f64);
            }
        }
        // The directory handle read_dir holds is one of the entries: not counted.
        if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(d.count().saturating_sub(1) as i64);
        }
        if let Ok((soft, _)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            self.max_fds.set(i64::try_from(soft).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let p = Process::default();
        p.refresh();
        let rss = p.rss.get();
        // This test binary's RSS: more than 1 MiB, less than 4 GiB.
        assert!(rss > 1 << 20 && rss < 4 << 30, "{rss}");
        // Files held open across the refresh are counted whatever the harness
        // left at fds 0-2 (CI runs tests with some of those closed) and whatever
        // other test threads open and close meanwhile.
        let held: Vec<_> = (0..8)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        p.refresh();
        let open = p.open_fds.get();
        assert!(open >= held.len() as i64, "{open}");
        assert!(p.max_fds.get() >= open);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = p.start.get();
        assert!(
            start > now - 3600.0 && start <= now + 1.0,
            "{start} vs {now}"
        );
    }
}
