//! Keeping the shim's resident memory small (issue 5 target: 1.5 MB RSS per shim).
//!
//! Measured (static opt-level z build, one pod): of ~1.95 MB RSS, ~1.78 MB are clean
//! pages of the executable itself (1.45 MB of text: static glibc ~0.7 MB, Rust ~0.8 MB),
//! and ~0.22 MB heap, stack and data. Nearly the whole text is resident although little
//! of it runs after start-up: the kernel maps file pages in 64 kB "fault-around" blocks,
//! and start-up (argument parsing, runtime and server set-up, the first Create/Start)
//! walks most of the binary. `MADV_RANDOM` does not turn fault-around off.
//!
//! So, once the shim is idle (no Task request for [`IDLE`]), [`Trimmer`] unmaps the
//! executable's clean, read-only file pages with `MADV_DONTNEED`. They stay in the page
//! cache (shared by every shim); what runs next faults back in as minor faults from the
//! page cache (tens of microseconds per request after an idle period).
//!
//! `CRUST_SHIM_TRIM=0` turns this off.
//!
//! Invariant: only mappings of our own executable that are read-only and have no
//! anonymous (copy-on-write) pages when the shim starts are ever dropped: text and the
//! first read-only segment, which are never written (the RELRO data relocated at start-up
//! has anonymous pages and is left alone), so dropping them loses nothing.

use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

/// Quiet time after the last request before code pages are dropped.
pub const IDLE: Duration = Duration::from_millis(200);

/// Clean read-only mappings of the executable: (start, length).
static CLEAN: OnceLock<Vec<(usize, usize)>> = OnceLock::new();

/// Environment variable that turns trimming off when set to `0` (e.g. to debug the shim
/// with breakpoints, which live in copy-on-write text pages).
pub const TRIM_ENV: &str = "CRUST_SHIM_TRIM";

/// Finds the executable's read-only mappings without anonymous pages, from
/// `/proc/self/smaps`. Call once, early.
pub fn find_clean_mappings() {
    CLEAN.get_or_init(|| {
        if std::env::var_os(TRIM_ENV).is_some_and(|v| v == "0") {
            return Vec::new();
        }
        let (Ok(exe), Ok(smaps)) = (
            std::fs::read_link("/proc/self/exe"),
            std::fs::read("/proc/self/smaps"),
        ) else {
            return Vec::new();
        };
        parse_clean(&smaps, exe.as_os_str().as_bytes())
    });
}

/// The `(start, len)` of every mapping of `exe` that is `r-xp` or `r--p` and whose
/// `Anonymous:` count is 0.
fn parse_clean(smaps: &[u8], exe: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, usize)> = None;
    for line in smaps.split(|&b| b == b'\n') {
        let f: Vec<&[u8]> = line
            .split(|&b| b == b' ')
            .filter(|s| !s.is_empty())
            .collect();
        if f.len() >= 6 && f[0].contains(&b'-') && !f[0].ends_with(b":") {
            cur = None;
            if f[5] == exe && (f[1] == b"r-xp" || f[1] == b"r--p") {
                let range = std::str::from_utf8(f[0]).ok().and_then(|r| {
                    let (a, b) = r.split_once('-')?;
                    Some((
                        usize::from_str_radix(a, 16).ok()?,
                        usize::from_str_radix(b, 16).ok()?,
                    ))
                });
                cur = range.filter(|(a, b)| b > a).map(|(a, b)| (a, b - a));
            }
        } else if f.first() == Some(&&b"Anonymous:"[..]) {
            if let Some(r) = cur.take() {
                if f.get(1) == Some(&&b"0"[..]) {
                    out.push(r);
                }
            }
        }
    }
    out
}

/// Drops the resident pages of the clean mappings found by [`find_clean_mappings`].
pub fn release_code() {
    for &(start, len) in CLEAN.get().map(Vec::as_slice).unwrap_or_default() {
        // SAFETY: (start, len) is a read-only private file mapping of our executable
        // that had no anonymous page (see the module invariant): MADV_DONTNEED only
        // unmaps clean pages, which fault back in unchanged from the file.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    }
}

/// Drops code pages once the shim has been idle for [`IDLE`]. Cheap to clone.
#[derive(Clone)]
pub struct Trimmer {
    poke: Arc<Notify>,
}

impl Trimmer {
    /// Starts the idle watcher on the current runtime.
    pub fn start() -> Self {
        let poke = Arc::new(Notify::new());
        let p = poke.clone();
        tokio::spawn(async move {
            loop {
                p.notified().await;
                // Debounce: wait until no poke came for IDLE.
                while tokio::time::timeout(IDLE, p.notified()).await.is_ok() {}
                release_code();
            }
        });
        Self { poke }
    }

    /// Records activity (a request finished).
    pub fn poke(&self) {
        self.poke.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_clean_readonly_mappings_of_the_executable() {
        let smaps = b"\
55d0a0000000-55d0a0082000 r--p 00000000 08:01 123 /usr/bin/shim
Size:                520 kB
Anonymous:             0 kB
55d0a0083000-55d0a01e7000 r-xp 00083000 08:01 123 /usr/bin/shim
Size:               1424 kB
Anonymous:             0 kB
55d0a01e8000-55d0a01f4000 r--p 001e6000 08:01 123 /usr/bin/shim
Anonymous:            48 kB
55d0a01f4000-55d0a01f5000 rw-p 001f2000 08:01 123 /usr/bin/shim
Anonymous:             4 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
Anonymous:            28 kB
7f0000000000-7f0000001000 r-xp 00000000 08:01 9 /usr/lib/other
Anonymous:             0 kB
";
        assert_eq!(
            parse_clean(smaps, b"/usr/bin/shim"),
            vec![(0x55d0a0000000, 0x82000), (0x55d0a0083000, 0x164000)]
        );
    }

    #[test]
    fn releasing_code_keeps_the_process_working() {
        find_clean_mappings();
        release_code();
        // Code and read-only data fault back in.
        assert_eq!(format!("{:?}", (1, "x")), "(1, \"x\")");
    }
}
