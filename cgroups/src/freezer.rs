//! Freezing and thawing: v1 `freezer.state` (FREEZING → FROZEN), v2 `cgroup.freeze` with the
//! result reported in `cgroup.events` ("frozen 1").
//!
//! `freeze` returns only once the kernel reports the whole cgroup frozen; if that does not
//! happen in time the cgroup is thawed again and an error returned, so a failed pause never
//! leaves a half-frozen container behind.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroupfs;
use crate::CgroupError;

/// How long a freeze may take before it is abandoned.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// The freezer interface of one cgroup directory.
pub(crate) enum Freezer<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

impl Freezer<'_> {
    pub(crate) fn freeze(&self) -> Result<(), CgroupError> {
        let start = Instant::now();
        let mut delay = Duration::from_micros(100);
        let mut round = 0u32;
        loop {
            match self {
                // Re-writing FROZEN nudges tasks that were forking while the freeze started.
                Freezer::V1(d) if round.is_multiple_of(10) => {
                    cgroupfs::write(d, "freezer.state", "FROZEN")?
                }
                Freezer::V2(d) if round == 0 => cgroupfs::write(d, "cgroup.freeze", "1")?,
                _ => {}
            }
            if self.is_frozen()? {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                let state = self.state_text().unwrap_or_default();
                let path = match self {
                    Freezer::V1(d) | Freezer::V2(d) => d.to_path_buf(),
                };
                let _ = self.thaw();
                return Err(CgroupError::FreezeTimeout {
                    path,
                    state,
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(10));
            round += 1;
        }
    }

    pub(crate) fn thaw(&self) -> Result<(), CgroupError> {
        match self {
            Freezer::V1(d) => cgroupfs::write(d, "freezer.state", "THAWED"),
            Freezer::V2(d) => cgroupfs::write(d, "cgroup.freeze", "0"),
        }
    }

    pub(crate) fn is_frozen(&self) -> Result<bool, CgroupError> {
        match self {
            Freezer::V1(_) => Ok(self.state_text()? == "FROZEN"),
            Freezer::V2(d) => Ok(cgroupfs::read_keyed(d, "cgroup.events", "frozen")? == Some(1)),
        }
    }

    fn state_text(&self) -> Result<String, CgroupError> {
        match self {
            Freezer::V1(d) => Ok(cgroupfs::read(d, "freezer.state")?.trim().to_string()),
            Freezer::V2(d) => Ok(cgroupfs::read(d, "cgroup.events")?
                .replace('\n', " ")
                .trim()
                .to_string()),
        }
    }
}
