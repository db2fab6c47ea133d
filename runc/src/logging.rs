//! runc-compatible logging: `--log FILE` and `--log-format text|json`.
//!
//! Lines look like logrus' output so that containerd (which parses the JSON log of a
//! failed runc call) reads them: `{"level":"error","msg":"...","time":"RFC3339"}` or
//! `time="..." level=error msg="..."`. Without `--log` the lines go to stderr. The logger is
//! a process-wide singleton set once by `main`; the init process inherits nothing from it.

use std::fs::File;
use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// logrus text format.
    Text,
    /// logrus JSON format.
    Json,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Installs the process-wide logger. `file` None logs to stderr.
pub fn init(file: Option<File>, format: Format, debug: bool) {
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
}

/// Whether a log file was given (errors then also go to stderr as a bare line, like runc).
pub fn has_file() -> bool {
    LOGGER.get().is_some_and(|l| l.file.is_some())
}

/// Writes one log line at `level`.
pub fn log(level: Level, msg: &str) {
    let Some(logger) = LOGGER.get() else {
        if level >= Level::Warn {
            eprintln!("{msg}");
        }
        return;
    };
    if level == Level::Debug && !logger.debug {
        return;
    }
    let now = rfc3339(SystemTime::now(), false);
    let line = match logger.format {
        Format::Json => {
            let v = serde_json::json!({"level": level.as_str(), "msg": msg, "time": now});
            format!("{v}\n")
        }
        Format::Text => format!(
            "time=\"{now}\" level={} msg={}\n",
            level.as_str(),
            serde_json::Value::String(msg.to_string())
        ),
    };
    match &logger.file {
        Some(f) => {
            let mut f: &File = f;
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Logs at error level.
pub fn error(msg: &str) {
    log(Level::Error, msg);
}

/// Logs at warning level.
pub fn warn(msg: &str) {
    log(Level::Warn, msg);
}

/// Logs at debug level (only with `--debug`), with the time since the process started.
pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        let t = START
            .get()
            .map(|s| s.elapsed().as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        log(Level::Debug, &format!("[{t:.2} ms] {msg}"));
    }
}

static START: OnceLock<std::time::Instant> = OnceLock::new();

/// Marks the process start for debug timings.
pub fn mark_start() {
    let _ = START.set(std::time::Instant::now());
}

/// Formats `t` as RFC 3339 in UTC ("2006-01-02T15:04:05Z", or with nanoseconds like Go's
/// RFC3339Nano, trailing zeros trimmed), with the `time` crate.
pub fn rfc3339(t: SystemTime, nanos: bool) -> String {
    let t = time::OffsetDateTime::from(t);
    let t = if nanos {
        t
    } else {
        t.replace_nanosecond(0).unwrap_or(t)
    };
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH, true), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339(t, true), "2023-11-14T22:13:20.12Z");
        assert_eq!(rfc3339(t, false), "2023-11-14T22:13:20Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap, false), "2000-02-29T00:00:00Z");
    }
}
