//! Reading what a streaming session (CRI Exec or Attach through crust's client) writes to
//! its local stdout.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Reads `out` until what arrived contains `want`, and returns it. With `poke`, writes that
/// line to its input before every read: an attach subscribes to the container's output only
/// once the session is up, so an answer to the first line can be lost. Panics after 20 s
/// with what arrived and `context()` (the crustd log, say).
pub async fn read_until(
    out: &mut DuplexStream,
    mut poke: Option<(&mut DuplexStream, &[u8])>,
    want: &str,
    context: impl Fn() -> String,
) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains(want) {
        assert!(
            Instant::now() < deadline,
            "no {want:?} in the session's output, got {seen:?}\n{}",
            context()
        );
        if let Some((input, line)) = poke.as_mut() {
            input
                .write_all(line)
                .await
                .expect("write the session's input");
        }
        let mut buf = [0u8; 1024];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), out.read(&mut buf)).await
        {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    seen
}
