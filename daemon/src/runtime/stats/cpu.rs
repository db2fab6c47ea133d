//! CPU rates (nanocores) from one sample history per container and per pod that every
//! caller shares.
//!
//! A rate is the CPU time used between two samples divided by the time between them. Taking
//! the "previous sample" from whoever asked last (containerd 1.x, and crust before) gives two
//! callers 0.2 s apart a 0 or a spike, and a pod total and its containers read microseconds
//! apart a rate of noise. Here, as cadvisor (housekeeping once a second, rate between the
//! last two samples) and containerd 2.x (a background stats collector) do it: a background
//! sampler ([`spawn_sampler`]) records the cumulative CPU time of every running container and
//! ready pod once per [`SAMPLE_INTERVAL`]; stats calls add their own fresh reading. A sample
//! is kept only when it is newer than the newest one by at least [`MIN_WINDOW`], so the rate
//! every caller gets is the one over the newest window: the same for concurrent callers,
//! always measured over at least [`MIN_WINDOW`].
//!
//! Invariants: a series holds at most two samples, in time order; a sample older than the
//! newest is dropped (callers race); a counter that went backwards (a new cgroup under the
//! same name) restarts the series; no rate (`None`) until a series has two samples.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use super::super::Runtime;

/// How often the background sampler reads every container's and pod's CPU time (cadvisor's
/// and containerd's default housekeeping interval).
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest window a rate is computed over: a reading closer than this to the newest
/// sample is not recorded (a little under [`SAMPLE_INTERVAL`], so a late sampler tick still
/// counts).
pub const MIN_WINDOW: Duration = Duration::from_millis(900);

/// One reading of a cumulative CPU counter.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    cpu_ns: u64,
}

/// The newest two samples of one container or pod.
#[derive(Debug, Default)]
struct Series {
    prev: Option<Sample>,
    last: Option<Sample>,
}

impl Series {
    fn observe(&mut self, s: Sample) {
        if let Some(last) = self.last {
            if s.at <= last.at {
                return; // read before the newest sample: a racing caller
            }
            if s.cpu_ns < last.cpu_ns {
                // The counter restarted (a new cgroup of the same name): start over.
                *self = Series {
                    prev: None,
                    last: Some(s),
                };
                return;
            }
            if s.at.duration_since(last.at) < MIN_WINDOW {
                return;
            }
        }
        self.prev = self.last.replace(s);
    }

    fn rate(&self) -> Option<u64> {
        let (p, l) = (self.prev?, self.last?);
        let dt = l.at.duration_since(p.at).as_nanos();
        if dt == 0 {
            return None;
        }
        let used = u128::from(l.cpu_ns.saturating_sub(p.cpu_ns));
        u64::try_from(used * 1_000_000_000 / dt).ok()
    }
}

/// The sample histories, keyed by container id and [`pod_key`].
#[derive(Debug, Default)]
pub struct CpuHistory {
    series: Mutex<HashMap<String, Series>>,
}

/// The history key of pod `id` (container ids and pod ids may coincide).
pub fn pod_key(id: &str) -> String {
    format!("pod/{id}")
}

impl CpuHistory {
    /// Records `cpu_ns` read at `at` for `key` (kept only if at least [`MIN_WINDOW`] newer
    /// than the newest sample) and returns the rate over the newest window, if there is one.
    pub fn observe(&self, key: &str, at: Instant, cpu_ns: u64) -> Option<u64> {
        let mut map = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let series = match map.get_mut(key) {
            Some(s) => s,
            None => map.entry(key.to_string()).or_default(),
        };
        series.observe(Sample { at, cpu_ns });
        series.rate()
    }

    /// Drops the history of a removed container or pod.
    pub fn forget(&self, key: &str) {
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// Stops the background sampler when dropped (the thread wakes up and exits).
#[derive(Debug)]
pub struct Sampler {
    _stop: mpsc::Sender<()>,
}

/// Starts the background sampler of `rt` on its own thread (cgroup reads block, and must not
/// wait for an async worker). It holds only a weak reference: the runtime's [`Sampler`]
/// handle ends it. `None` (logged) when no thread can be started: rates then come from the
/// stats calls' own readings alone.
pub fn spawn_sampler(rt: Weak<Runtime>) -> Option<Sampler> {
    let (stop, stopped) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("crust-cpu-sampler".into())
        .spawn(move || {
            let mut cgroups = HashMap::new();
            loop {
                match stopped.recv_timeout(SAMPLE_INTERVAL) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                // Not upgradable while the runtime is being built or torn down.
                if let Some(rt) = rt.upgrade() {
                    rt.sample_cpu(&mut cgroups);
                }
            }
        });
    match spawned {
        Ok(_) => Some(Sampler { _stop: stop }),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the CPU sampler; rates come from stats calls only");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn no_rate_until_two_samples_a_window_apart() {
        let h = CpuHistory::default();
        let t = Instant::now();
        assert_eq!(h.observe("c", t, 0), None);
        assert_eq!(
            h.observe("c", at(t, 100), S / 10),
            None,
            "too close: not kept"
        );
        assert_eq!(h.observe("c", at(t, 1000), S), Some(S), "one core for 1 s");
    }

    #[test]
    fn callers_between_samples_share_the_newest_window() {
        let h = CpuHistory::default();
        let t = Instant::now();
        h.observe("c", t, 0);
        assert_eq!(h.observe("c", at(t, 1000), S / 2), Some(S / 2));
        // Two callers 200 ms and 1 µs apart, the container now idle or busy: the rate is the
        // newest window's until a reading is MIN_WINDOW newer.
        assert_eq!(h.observe("c", at(t, 1200), S / 2), Some(S / 2));
        assert_eq!(
            h.observe("c", at(t, 1200) + Duration::from_micros(1), S),
            Some(S / 2)
        );
        // The next window: 0.5 s of CPU over 1 s again... then an idle second.
        assert_eq!(h.observe("c", at(t, 2000), S), Some(S / 2));
        assert_eq!(h.observe("c", at(t, 3000), S), Some(0));
    }

    #[test]
    fn racing_older_reading_is_ignored() {
        let h = CpuHistory::default();
        let t = Instant::now();
        h.observe("c", t, 0);
        h.observe("c", at(t, 2000), 2 * S);
        // A caller that read at 1.5 s arrives late, with a smaller counter: no reset.
        assert_eq!(h.observe("c", at(t, 1500), S), Some(S));
        assert_eq!(h.observe("c", at(t, 3000), 3 * S), Some(S));
    }

    #[test]
    fn counter_going_backwards_restarts_the_series() {
        let h = CpuHistory::default();
        let t = Instant::now();
        h.observe("p", t, 5 * S);
        h.observe("p", at(t, 1000), 6 * S);
        assert_eq!(h.observe("p", at(t, 2000), 10), None, "recreated cgroup");
        assert_eq!(h.observe("p", at(t, 3000), 10 + S / 4), Some(S / 4));
    }

    #[test]
    fn keys_are_separate_and_forgotten() {
        let h = CpuHistory::default();
        let t = Instant::now();
        h.observe("x", t, 0);
        h.observe(&pod_key("x"), t, 0);
        assert_eq!(h.observe("x", at(t, 1000), S), Some(S));
        assert_eq!(h.observe(&pod_key("x"), at(t, 1000), 2 * S), Some(2 * S));
        h.forget("x");
        assert_eq!(h.observe("x", at(t, 2000), 2 * S), None);
        assert_eq!(h.observe(&pod_key("x"), at(t, 2000), 2 * S), Some(0));
    }

    #[test]
    fn long_windows_and_multi_core_rates_do_not_overflow() {
        let h = CpuHistory::default();
        let t = Instant::now();
        h.observe("c", t, 0);
        // 64 cores busy for a day.
        let day = 86_400_000;
        assert_eq!(h.observe("c", at(t, day), 64 * 86_400 * S), Some(64 * S));
    }
}
