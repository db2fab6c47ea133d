//! `crustctl logs CONTAINER` as crictl (kubelet's log reader) prints a container's CRI log
//! file (`<RFC 3339 time> <stdout|stderr> <P|F> <text>` per line, written by crust-shim):
//! `--tail N` records from the end, `--since` (a duration such as `42m`, an RFC 3339 time or
//! a Unix timestamp), `-t` timestamps, `--limit-bytes`, `-p` the previous attempt's log, and
//! `-f` follows the file (across rotation) until the container stops or Ctrl-C.
//! Partial (`P`) records are printed without a newline so lines come out whole.

use std::io::{BufRead, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use k8s_cri::v1 as cri;

use super::Conn;

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id (or prefix).
    container: String,
    /// Follow the log until the container stops.
    #[arg(long, short = 'f')]
    follow: bool,
    /// The previous instance's log (attempt - 1).
    #[arg(long, short = 'p')]
    previous: bool,
    /// Only the last N records (-1: all).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    tail: i64,
    /// Stop after this many bytes (-1: no limit).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    limit_bytes: i64,
    /// Only records since this time: a duration (42m, 1h30m), RFC 3339 (2013-01-02T13:23:37Z,
    /// local time without a zone) or Unix seconds.
    #[arg(long)]
    since: Option<String>,
    /// Prefix each record with its time.
    #[arg(long, short = 't')]
    timestamps: bool,
}

/// One parsed record.
struct Record<'a> {
    time: Option<Time>,
    stderr: bool,
    partial: bool,
    text: &'a [u8],
}

/// A time as nanoseconds since the epoch plus the zone offset it was written in.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Time {
    ns: i64,
    offset: i32,
}

fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut it = line.splitn(4, |b| *b == b' ');
    let ts = it.next()?;
    let stream = it.next()?;
    let rest: Vec<&[u8]> = it.collect();
    let (partial, text) = match rest.as_slice() {
        [tag, text] if *tag == b"P" || *tag == b"F" => (*tag == b"P", *text),
        [tag] if *tag == b"P" || *tag == b"F" => (*tag == b"P", &b""[..]),
        // Old format without a tag: the rest is the text.
        _ => (
            false,
            line.get(ts.len() + stream.len() + 2..).unwrap_or(b""),
        ),
    };
    Some(Record {
        time: std::str::from_utf8(ts).ok().and_then(parse_rfc3339),
        stderr: stream == b"stderr",
        partial,
        text,
    })
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; without a zone, `local` decides (None: refuse).
fn parse_time(s: &str, local: bool) -> Option<Time> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (mut h, mut mi, mut sec, mut frac, mut i) = (0, 0, 0, 0i64, 10);
    if b.len() > 10 {
        if b[10] != b'T' && b[10] != b' ' || b.len() < 19 {
            return None;
        }
        h = num(11..13)?;
        mi = num(14..16)?;
        sec = num(17..19)?;
        i = 19;
        if b.get(19) == Some(&b'.') {
            let digits = b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
            let f = s.get(20..20 + digits)?;
            let f9 = format!("{:0<9}", &f[..f.len().min(9)]);
            frac = f9.parse().ok()?;
            i = 20 + digits;
        }
    }
    let offset = match &s[i..] {
        "Z" | "z" => 0,
        "" if local => {
            let guess = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec;
            local_offset(guess)
        }
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) => {
            let oh: i32 = z.get(1..3)?.parse().ok()?;
            let om: i32 = z.get(4..6)?.parse().ok()?;
            let o = oh * 3600 + om * 60;
            if z.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - i64::from(offset);
    Some(Time {
        ns: secs.checked_mul(1_000_000_000)?.checked_add(frac)?,
        offset,
    })
}

fn parse_rfc3339(s: &str) -> Option<Time> {
    parse_time(s, false)
}

/// The local zone's offset at `secs` since the epoch.
fn local_offset(secs: i64) -> i32 {
    let t = libc::time_t::from(secs);
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        0
    } else {
        i32::try_from(tm.tm_gmtoff).unwrap_or(0)
    }
}

/// Go's `time.RFC3339Nano` of `t` in the offset it was written in.
fn format_time(t: Time) -> String {
    let local = t.ns.div_euclid(1_000_000_000) + i64::from(t.offset);
    let frac = t.ns.rem_euclid(1_000_000_000);
    let (days, rem) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // civil_from_days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if frac != 0 {
        s.push('.');
        s.push_str(format!("{frac:09}").trim_end_matches('0'));
    }
    if t.offset == 0 {
        s.push('Z');
    } else {
        let o = t.offset.abs();
        let sign = if t.offset < 0 { '-' } else { '+' };
        s.push_str(&format!("{sign}{:02}:{:02}", o / 3600, o % 3600 / 60));
    }
    s
}

/// A Go duration (`1h30m`, `42m`, `1.5s`, `300ms`) in nanoseconds.
fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    let mut any = false;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += v * mult;
        any = true;
    }
    any.then_some(if neg { -total } else { total } as i64)
}

/// `--since`: a duration before now, an RFC 3339 time (local without a zone), a date, or
/// Unix seconds, as docker's `timetypes.GetTimestamp` reads it.
fn parse_since(s: &str, now_ns: i64) -> anyhow::Result<i64> {
    if let Some(d) = parse_duration(s) {
        return Ok(now_ns - d);
    }
    if let Some(t) = parse_time(s, true) {
        return Ok(t.ns);
    }
    if let Ok(f) = s.parse::<f64>() {
        return Ok((f * 1e9) as i64);
    }
    anyhow::bail!(
        "--since {s:?}: expected a duration (42m, 1h30m), an RFC 3339 time \
         (2013-01-02T13:23:37Z) or Unix seconds"
    )
}

/// Where output goes, with the byte limit.
struct Out {
    left: Option<u64>,
    timestamps: bool,
}

impl Out {
    /// Writes one record; false once the limit is reached.
    fn record(&mut self, r: &Record) -> std::io::Result<bool> {
        let mut buf = Vec::with_capacity(r.text.len() + 40);
        if self.timestamps {
            if let Some(t) = r.time {
                buf.extend_from_slice(format_time(t).as_bytes());
                buf.push(b' ');
            }
        }
        buf.extend_from_slice(r.text);
        if !r.partial {
            buf.push(b'\n');
        }
        let mut done = false;
        if let Some(left) = self.left.as_mut() {
            if buf.len() as u64 >= *left {
                buf.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
                done = true;
            }
            *left -= buf.len() as u64;
        }
        if r.stderr {
            let mut e = std::io::stderr().lock();
            e.write_all(&buf)?;
            e.flush()?;
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(&buf)?;
            o.flush()?;
        }
        Ok(!done)
    }
}

/// The byte offset where the last `n` records of `f` start.
fn tail_start(f: &mut std::fs::File, n: u64) -> std::io::Result<u64> {
    let mut data = vec![];
    f.seek(std::io::SeekFrom::Start(0))?;
    f.read_to_end(&mut data)?;
    if n == 0 {
        return Ok(data.len() as u64);
    }
    let mut newlines = 0;
    let end = if data.last() == Some(&b'\n') {
        data.len() - 1
    } else {
        data.len()
    };
    for i in (0..end).rev() {
        if data[i] == b'\n' {
            newlines += 1;
            if newlines == n {
                return Ok(i as u64 + 1);
            }
        }
    }
    Ok(0)
}

pub async fn run(conn: &Conn, a: Args) -> anyhow::Result<()> {
    let since = a
        .since
        .as_deref()
        .map(|s| parse_since(s, crate::output::now_ns()))
        .transpose()?;
    let mut rt = conn.runtime().await?;
    let mut status = async || -> anyhow::Result<Option<cri::ContainerStatus>> {
        let r = rt
            .container_status(cri::ContainerStatusRequest {
                container_id: a.container.clone(),
                verbose: false,
            })
            .await
            .map_err(super::rpc)?;
        Ok(r.into_inner().status)
    };
    let st = status()
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status for {}", a.container))?;
    anyhow::ensure!(
        !st.log_path.is_empty(),
        "The container has not set log path"
    );
    let mut path = st.log_path.clone();
    if a.previous {
        let md = st.metadata.clone().unwrap_or_default();
        anyhow::ensure!(
            md.attempt != 0,
            "Previous terminated container {} not found",
            md.name
        );
        let dir = path.rfind('/').map_or(0, |i| i + 1);
        let ext = path.rfind('.').map_or(path.len(), |i| i);
        path = format!("{}{}{}", &path[..dir], md.attempt - 1, &path[ext..]);
    }
    let mut f = std::fs::File::open(&path).map_err(|e| anyhow::anyhow!("open {path}: {e}"))?;
    if a.tail >= 0 {
        let start = tail_start(&mut f, a.tail as u64)?;
        f.seek(std::io::SeekFrom::Start(start))?;
    }
    let mut out = Out {
        left: (a.limit_bytes >= 0).then_some(a.limit_bytes as u64),
        timestamps: a.timestamps,
    };
    if a.limit_bytes == 0 {
        return Ok(());
    }
    let mut r = std::io::BufReader::new(f);
    let mut line = Vec::new();
    let mut last_check = std::time::Instant::now();
    let mut stopped = false;
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n > 0 && line.last() == Some(&b'\n') {
            if let Some(rec) = parse_record(&line) {
                if since.is_none_or(|s| rec.time.is_none_or(|t| t.ns >= s)) && !out.record(&rec)? {
                    return Ok(());
                }
            }
            continue;
        }
        if n > 0 {
            // An unfinished line: read it again once it is complete.
            r.seek_relative(-(n as i64))?;
        }
        if !a.follow || stopped {
            return Ok(());
        }
        // Rotated: the path names a new file and the old one is drained.
        if let (Ok(now), Ok(cur)) = (std::fs::metadata(&path), r.get_ref().metadata()) {
            if now.ino() != cur.ino() || now.dev() != cur.dev() {
                r = std::io::BufReader::new(std::fs::File::open(&path)?);
                continue;
            }
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = std::time::Instant::now();
            let running = status()
                .await?
                .is_some_and(|s| s.state == cri::ContainerState::ContainerRunning as i32);
            // One more pass over what is left, then stop.
            stopped = !running;
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_times() {
        let r = parse_record(b"2024-01-02T03:04:05.120000000Z stderr P half\n").unwrap();
        assert!(r.stderr && r.partial && r.text == b"half");
        let t = r.time.unwrap();
        assert_eq!(format_time(t), "2024-01-02T03:04:05.12Z");
        let r = parse_record(b"2024-01-02T03:04:05+02:00 stdout F \n").unwrap();
        assert!(!r.stderr && !r.partial && r.text.is_empty());
        assert_eq!(format_time(r.time.unwrap()), "2024-01-02T03:04:05+02:00");
        assert_eq!(r.time.unwrap().ns, 1_704_157_445_000_000_000);
    }

    #[test]
    fn since_values() {
        let now = 1_700_000_000_000_000_000;
        assert_eq!(
            parse_since("42m", now).unwrap(),
            now - 42 * 60 * 1_000_000_000
        );
        assert_eq!(
            parse_since("1h30m", now).unwrap(),
            now - 5400 * 1_000_000_000
        );
        assert_eq!(parse_since("1.5s", now).unwrap(), now - 1_500_000_000);
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", now).unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(parse_since("1700000000", now).unwrap(), now);
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_duration("5x").is_none());
    }

    #[test]
    fn tail_counts_records_from_the_end() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"a\nb\nc\n").unwrap();
        assert_eq!(tail_start(&mut f, 2).unwrap(), 2);
        assert_eq!(tail_start(&mut f, 0).unwrap(), 6);
        assert_eq!(tail_start(&mut f, 9).unwrap(), 0);
    }
}
