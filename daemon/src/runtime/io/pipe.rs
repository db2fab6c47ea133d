//! The plumbing of a streaming session (exec or attach): the caller's streams
//! ([`StreamIo`]), the FIFOs the shim writes into and reads from, the copy loops between
//! them, and terminal resizes forwarded to the shim.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};

use crate::runtime::error::{io, Result};
use crate::runtime::shim::Shim;

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// Input side of a session.
pub type Input = Box<dyn AsyncRead + Send + Unpin>;
/// Output side of a session.
pub type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// The caller's ends of one exec or attach session. A `None` stream is not wanted.
pub struct StreamIo {
    /// Run with a pty (then only `stdout` carries output).
    pub tty: bool,
    /// Client input; EOF when the client closes stdin.
    pub stdin: Option<Input>,
    /// Where the process's stdout goes; a failing write means the client is gone.
    pub stdout: Option<Output>,
    /// Where the process's stderr goes.
    pub stderr: Option<Output>,
    /// Terminal sizes from the client (tty only).
    pub resize: Option<mpsc::Receiver<TermSize>>,
    /// Turns true once the client's connection is gone.
    pub gone: watch::Receiver<bool>,
}

/// Resolves once `gone` turns true (or its sender is dropped without saying so, which
/// means nobody will tell: never resolves then).
pub(crate) async fn client_gone(mut gone: watch::Receiver<bool>) {
    if gone.wait_for(|g| *g).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The FIFO directory of one session (`<state>/exec/<exec-id>/`,
/// `<state>/attach/<container>-<random>/`); removed with its FIFOs on drop, which sessions
/// do as soon as the shim has opened them.
pub(crate) struct FifoDir(PathBuf);

impl FifoDir {
    /// Creates the (empty) directory `dir`.
    pub(crate) fn create(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(FifoDir(dir))
    }

    /// A new FIFO `name` in the directory, when `on`.
    pub(crate) fn fifo(&self, name: &str, on: bool) -> Result<Option<PathBuf>> {
        if !on {
            return Ok(None);
        }
        let p = self.0.join(name);
        mkfifo(&p)?;
        Ok(Some(p))
    }

    /// A new FIFO `name` with its read end open: (its path for the shim, the reader).
    pub(crate) fn reader(&self, name: &str) -> Result<(String, pipe::Receiver)> {
        let p = self.0.join(name);
        mkfifo(&p)?;
        Ok((p.display().to_string(), open_reader(&p)?))
    }
}

impl Drop for FifoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates a FIFO (mode 0600) at `path`.
pub(crate) fn mkfifo(path: &Path) -> Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| io("mkfifo", path)(std::io::Error::from(e)))
}

/// Opens the read end of a FIFO without blocking (no writer needed yet).
pub(crate) fn open_reader(path: &Path) -> Result<pipe::Receiver> {
    pipe::OpenOptions::new()
        .open_receiver(path)
        .map_err(io("open fifo", path))
}

/// Copies `from` to `to` until EOF or a failed write, then shuts `to` down.
pub(crate) async fn copy_out(mut from: pipe::Receiver, mut to: Output) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Copies `from` into `to` until EOF or a failed read/write; leaves `to` open (the caller
/// closes the process's stdin with `CloseIO`).
pub(crate) async fn copy_in(mut from: Input, to: &mut pipe::Sender) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Forwards terminal sizes to the shim until the client stops sending them.
pub(crate) async fn forward_resizes(
    shim: Shim,
    id: String,
    exec_id: String,
    mut rx: mpsc::Receiver<TermSize>,
) {
    while let Some(sz) = rx.recv().await {
        if let Err(e) = shim
            .resize_pty(&id, &exec_id, sz.width.into(), sz.height.into())
            .await
        {
            tracing::debug!(id, exec_id, error = %e, "resize pty");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fifo_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        mkfifo(&p).unwrap();
        let r = open_reader(&p).unwrap();
        let mut w = pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&p)
            .unwrap();
        let (client, mut ours) = tokio::io::duplex(1024);
        let copy = tokio::spawn(copy_out(r, Box::new(client)));
        copy_in(Box::new(&b"hello"[..]), &mut w).await;
        let mut got = [0u8; 5];
        ours.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        drop(w);
        copy.await.unwrap();
        let mut rest = Vec::new();
        ours.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
