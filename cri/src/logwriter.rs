//! crustd's log writer: one formatted event per write, with every line break and control
//! character inside it escaped, so a client-supplied string (a pod or container name, an
//! image reference, an error that quotes one) cannot start a fake log line or send
//! terminal escape sequences. The event's final newline is kept.
//!
//! This relies on tracing-subscriber's fmt layer formatting an event into one buffer and
//! handing it over with one `write_all`; JSON output is escaped by the formatter already.

use std::io::Write;

/// Escapes what [`escape`] escapes in each write, then writes to stderr.
#[derive(Debug, Clone, Copy)]
pub struct MakeEscaped {
    /// Whether ANSI colour sequences are on (then ESC is left alone).
    pub ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeEscaped {
    type Writer = Escaped<std::io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaped {
            inner: std::io::stderr(),
            ansi: self.ansi,
        }
    }
}

/// A writer that escapes control characters of each buffer written (see [`escape`]).
#[derive(Debug)]
pub struct Escaped<W> {
    inner: W,
    ansi: bool,
}

impl<W: Write> Write for Escaped<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write_all(&escape(buf, self.ansi))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `buf` with `\n` and `\r` (but a final `\n`) and other control characters but tab
/// written as `\n`, `\r`, `\xHH`; ESC is kept when `ansi`.
pub fn escape(buf: &[u8], ansi: bool) -> Vec<u8> {
    let (body, end) = match buf.strip_suffix(b"\n") {
        Some(b) => (b, &b"\n"[..]),
        None => (buf, &b""[..]),
    };
    let mut out = Vec::with_capacity(buf.len());
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0x1b if ansi => out.push(b),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_inside_an_event_are_escaped() {
        assert_eq!(
            escape(
                b"INFO pod sandbox ready name=a\nERROR fake\r\x1b[2J\tx\n",
                false
            ),
            b"INFO pod sandbox ready name=a\\nERROR fake\\r\\x1b[2J\tx\n"
        );
        assert_eq!(
            escape(b"\x1b[32mINFO\x1b[0m x\n", true),
            b"\x1b[32mINFO\x1b[0m x\n"
        );
        assert_eq!(escape(b"no newline", false), b"no newline");
        let mut w = Escaped {
            inner: Vec::new(),
            ansi: false,
        };
        write!(w, "a\nb\n").unwrap();
        assert_eq!(w.inner, b"a\\nb\n");
    }
}
