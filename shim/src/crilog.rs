//! The CRI container log format, written by the shim straight to the file kubelet names.
//!
//! Each record is `<RFC3339Nano> <stdout|stderr> <P|F> <text>\n`: `F` ends a line, `P` is
//! a partial piece of a line longer than [`MAX_LINE`] (or one still open when the
//! stream ends: the last piece is flushed as `F`, as containerd does). Records are
//! written with one `write(2)` on an `O_APPEND` file so stdout and stderr records of one
//! container never interleave inside a record.
//!
//! [`LogFile::reopen`] reopens the path (kubelet's ReopenContainerLog after rotation).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::error::{Result, ShimError};

/// Longest line text per record before it is split into partial records
/// (containerd's default `max_container_log_line_size`).
pub const MAX_LINE: usize = 16 * 1024;

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn tag(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A CRI log file shared by a process's stdout and stderr writers.
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| ShimError::io("open log", path, e))
}

impl LogFile {
    /// Opens (creating) the log at `path` for appending. `path` must be absolute.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_absolute() {
            return Err(ShimError::InvalidRequest(format!(
                "log path {} is not absolute",
                path.display()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(open(path)?)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reopens the path (after the old file was renamed away); writes go to the new file.
    pub fn reopen(&self) -> Result<()> {
        let f = open(&self.path)?;
        if let Ok(mut g) = self.file.lock() {
            *g = f;
        }
        Ok(())
    }

    fn write_record(&self, stream: Stream, partial: bool, text: &[u8]) {
        let mut rec = Vec::with_capacity(text.len() + 48);
        rec.extend_from_slice(rfc3339_nano(SystemTime::now()).as_bytes());
        rec.push(b' ');
        rec.extend_from_slice(stream.tag().as_bytes());
        rec.extend_from_slice(if partial { b" P " } else { b" F " });
        rec.extend_from_slice(text);
        rec.push(b'\n');
        if let Ok(mut f) = self.file.lock() {
            // A failed log write must not stop the container; the record is dropped.
            let _ = f.write_all(&rec);
        }
    }
}

/// Splits one stream's bytes into CRI records. Holds at most [`MAX_LINE`] bytes of an
/// unfinished line.
#[derive(Debug)]
pub struct LineWriter {
    log: LogFile,
    stream: Stream,
    pending: Vec<u8>,
}

impl LineWriter {
    pub fn new(log: LogFile, stream: Stream) -> Self {
        Self {
            log,
            stream,
            pending: Vec::new(),
        }
    }

    /// Feeds bytes read from the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = MAX_LINE - self.pending.len();
            match data.iter().take(room).position(|&b| b == b'\n') {
                Some(nl) => {
                    if self.pending.is_empty() {
                        self.log.write_record(self.stream, false, &data[..nl]);
                    } else {
                        self.pending.extend_from_slice(&data[..nl]);
                        self.log.write_record(self.stream, false, &self.pending);
                        self.pending.clear();
                    }
                    data = &data[nl + 1..];
                }
                None if data.len() >= room => {
                    // The line is longer than MAX_LINE: emit a partial record.
                    self.pending.extend_from_slice(&data[..room]);
                    self.log.write_record(self.stream, true, &self.pending);
                    self.pending.clear();
                    self.pending.shrink_to(0);
                    data = &data[room..];
                }
                None => {
                    self.pending.extend_from_slice(data);
                    data = &[];
                }
            }
        }
    }

    /// End of stream: flushes an unfinished line as a final record.
    pub fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.log.write_record(self.stream, false, &self.pending);
            self.pending = Vec::new();
        }
    }
}

/// Formats `t` as Go's `time.RFC3339Nano` in UTC (trailing zeros of the fraction dropped),
/// with the `time` crate (its RFC 3339 format trims the fraction the same way).
pub fn rfc3339_nano(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_like_go_rfc3339nano() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 1); // 2000-02-29
        assert_eq!(rfc3339_nano(t), "2000-02-29T00:00:00.000000001Z");
    }

    #[test]
    fn splits_long_lines_and_flushes_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let log = LogFile::open(&path).unwrap();
        let mut w = LineWriter::new(log.clone(), Stream::Stderr);
        let long = vec![b'x'; MAX_LINE + 10];
        w.feed(b"a\nb");
        w.feed(b"c\n");
        w.feed(&long);
        w.feed(b"\ntail");
        w.finish();
        let text = std::fs::read_to_string(&path).unwrap();
        let recs: Vec<Vec<&str>> = text.lines().map(|l| l.splitn(4, ' ').collect()).collect();
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[0][1..], ["stderr", "F", "a"]);
        assert_eq!(recs[1][1..], ["stderr", "F", "bc"]);
        assert_eq!(recs[2][2], "P");
        assert_eq!(recs[2][3].len(), MAX_LINE);
        assert_eq!(recs[3][2..], ["F", "xxxxxxxxxx"]);
        assert_eq!(recs[4][2..], ["F", "tail"]);
    }
}
