//! A process's stdio: the URIs containerd and crustd pass, turned into the fds the
//! runtime hands to the container, plus the copy tasks the shim runs.
//!
//! Accepted forms for `stdin` / `stdout` / `stderr` (empty means `/dev/null`):
//! - a plain path or `fifo://path`: a FIFO (containerd's default). Output FIFOs are opened
//!   read-write and handed to the container directly (no copying in the shim).
//! - `file:///path`: a file opened for appending, handed to the container directly.
//! - `binary:///path?key=value`: containerd's logging-binary protocol: the binary gets the
//!   container's stdout/stderr on fds 3 and 4, and closes fd 5 once ready.
//! - `crilog:///path` (crust): the CRI log format written by the shim itself (see
//!   [`crate::crilog`]); stdout and stderr naming the same path share one file.
//! - `discard://` (crust): copied by the shim to attach subscribers only (a CRI container
//!   with no log path can still be attached to, as with containerd).
//!
//! Stdin is copied from its FIFO (opened read-write, so it stays open across attach
//! sessions) into a pipe until CloseIO. With a terminal, the pty master arrives on a
//! console socket and is copied to/from the same targets; only stdout is used.
//!
//! Streams the shim copies (CRI log; a terminal's output to any target) also feed a
//! [`Tee`] of attach subscribers, after the chunk was written to its target.
//!
//! Invariant: the copy tasks in [`ProcessStdio::outputs`] finish when the container's
//! side of the stream is closed by every process holding it, and then end their tee.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::task::JoinHandle;

use crate::crilog::{LineWriter, LogFile, Stream};
use crate::error::{Result, ShimError};
use crate::reaper::Reaper;
use crate::runtime::ProcessIo;
use crate::tee::Tee;

/// How long a logging binary may take to signal readiness.
const BINARY_READY_MS: u16 = 10_000;

/// Copy buffer per active stream, allocated when the stream's copy task starts.
const COPY_BUF: usize = 8 * 1024;

/// Where one stdio URI points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Null,
    Fifo(PathBuf),
    File(PathBuf),
    Binary {
        path: PathBuf,
        args: Vec<(String, String)>,
    },
    CriLog(PathBuf),
    Discard,
}

/// Parses a stdio URI (see the module docs).
pub fn parse(uri: &str) -> Result<Target> {
    if uri.is_empty() {
        return Ok(Target::Null);
    }
    if uri == "discard://" {
        return Ok(Target::Discard);
    }
    let bad = || ShimError::InvalidRequest(format!("unsupported stdio uri {uri:?}"));
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Ok(Target::Fifo(PathBuf::from(uri)));
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !path.starts_with('/') {
        return Err(bad());
    }
    let path = PathBuf::from(path);
    match scheme {
        "fifo" => Ok(Target::Fifo(path)),
        "file" => Ok(Target::File(path)),
        "crilog" => Ok(Target::CriLog(path)),
        "binary" => {
            let args = query
                .split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            Ok(Target::Binary { path, args })
        }
        _ => Err(bad()),
    }
}

/// The shim's side of one process's stdio.
#[derive(Default)]
pub struct ProcessStdio {
    /// Copies of container output; awaited (bounded) before an exit is reported.
    pub outputs: Vec<JoinHandle<()>>,
    /// The stdin copy. CloseIO closes the container's stdin: through `stdin_close` for a
    /// pipe (what was written before CloseIO is still delivered), by aborting it for a pty.
    pub stdin: Option<JoinHandle<()>>,
    /// Tells the pipe stdin copy to deliver what its FIFO holds, then close.
    pub stdin_close: Option<tokio::sync::oneshot::Sender<()>>,
    /// The pty master, for ResizePty.
    pub console: Option<Arc<AsyncFd<OwnedFd>>>,
    /// The CRI log, for reopening.
    pub log: Option<LogFile>,
    /// Attach subscribers of stdout and stderr, for the streams the shim copies (CRI
    /// log, or a terminal's output); `None` where the container writes directly.
    pub tees: [Option<Tee>; 2],
}

impl ProcessStdio {
    pub fn close_stdin(&mut self) {
        if let Some(close) = self.stdin_close.take() {
            // The copy ends by itself once the FIFO is drained (or the process is gone).
            let _ = close.send(());
            self.stdin = None;
        } else if let Some(h) = self.stdin.take() {
            h.abort();
        }
    }

    /// Resizes the pty, if the process has one.
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(master) = &self.console else {
            return Err(ShimError::InvalidRequest("process has no terminal".into()));
        };
        let ws = libc::winsize {
            ws_row: height as u16,
            ws_col: width as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; the fd is an open pty.
        let r = unsafe { libc::ioctl(master.get_ref().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if r != 0 {
            return Err(ShimError::io(
                "resize pty",
                "console",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    pub fn reopen_log(&self) -> Result<()> {
        match &self.log {
            Some(log) => log.reopen(),
            None => Err(ShimError::InvalidRequest(
                "process does not write a CRI log".into(),
            )),
        }
    }
}

/// What a process was asked to use.
pub struct StdioRequest<'a> {
    pub stdin: &'a str,
    pub stdout: &'a str,
    pub stderr: &'a str,
    pub terminal: bool,
    /// For the logging binary's environment.
    pub id: &'a str,
    pub namespace: &'a str,
}

/// What the runtime gets, and what the shim does once the process exists.
pub struct Prepared {
    pub io: ProcessIo,
    pending: Pending,
}

/// The shim's half of a prepared stdio, finished once the runtime has run.
pub struct Pending {
    stdio: ProcessStdio,
    /// Present with a terminal: accept the master from it after the runtime ran.
    console: Option<(std::os::unix::net::UnixListener, PathBuf, Target, Target)>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some((_, sock, _, _)) = &self.console {
            let _ = std::fs::remove_file(sock);
        }
        self.stdio.close_stdin();
        for h in &self.stdio.outputs {
            h.abort();
        }
    }
}

impl Prepared {
    /// The fds for the runtime, and the part to finish after it ran.
    pub fn split(self) -> (ProcessIo, Pending) {
        (self.io, self.pending)
    }
}

fn stdio_err(uri: &str) -> impl FnOnce(std::io::Error) -> ShimError + '_ {
    move |source| ShimError::Stdio {
        uri: uri.to_string(),
        source,
    }
}

fn open_output(path: &Path, fifo: bool) -> std::io::Result<OwnedFd> {
    let mut o = std::fs::OpenOptions::new();
    if fifo {
        o.read(true).write(true);
    } else {
        o.append(true).create(true).mode(0o640);
    }
    Ok(o.open(path)?.into())
}

/// Prepares a process's stdio before the runtime runs. `console_dir` holds the console
/// socket when a terminal is asked for.
pub fn prepare(req: &StdioRequest<'_>, reaper: &Reaper, console_dir: &Path) -> Result<Prepared> {
    let tin = parse(req.stdin)?;
    let tout = parse(req.stdout)?;
    let terr = parse(req.stderr)?;
    if matches!(
        tin,
        Target::File(_) | Target::Binary { .. } | Target::CriLog(_) | Target::Discard
    ) {
        return Err(ShimError::InvalidRequest(format!(
            "stdin must be a fifo, got {:?}",
            req.stdin
        )));
    }
    let mut stdio = ProcessStdio::default();
    for t in [&tout, &terr] {
        if let Target::CriLog(p) = t {
            if stdio.log.as_ref().is_none_or(|l| l.path() != p) {
                stdio.log = Some(LogFile::open(p)?);
            }
        }
    }

    if req.terminal {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sock = console_dir.join(format!("pty-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&sock);
        let l = std::os::unix::net::UnixListener::bind(&sock)
            .map_err(|e| ShimError::io("bind console socket", &sock, e))?;
        return Ok(Prepared {
            io: ProcessIo::Console(sock.clone()),
            pending: Pending {
                stdio,
                console: Some((l, sock, tin, tout)),
            },
        });
    }

    let mut stdin_fd = None;
    if let Target::Fifo(p) = &tin {
        let (rx, tx) = pipe().map_err(stdio_err(req.stdin))?;
        let fifo = pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(p)
            .map_err(stdio_err(req.stdin))?;
        let tx = pipe::Sender::from_owned_fd(tx).map_err(stdio_err(req.stdin))?;
        let (close_tx, close_rx) = tokio::sync::oneshot::channel();
        stdio.stdin = Some(tokio::spawn(copy_stdin(fifo, tx, close_rx)));
        stdio.stdin_close = Some(close_tx);
        stdin_fd = Some(rx);
    }

    let mut binary_fds: Option<(OwnedFd, OwnedFd)> = None;
    let mut outs: [Option<OwnedFd>; 2] = [None, None];
    for (i, (t, uri, stream)) in [
        (&tout, req.stdout, Stream::Stdout),
        (&terr, req.stderr, Stream::Stderr),
    ]
    .into_iter()
    .enumerate()
    {
        outs[i] = match t {
            Target::Null => None,
            Target::Fifo(p) => Some(open_output(p, true).map_err(stdio_err(uri))?),
            Target::File(p) => Some(open_output(p, false).map_err(stdio_err(uri))?),
            Target::CriLog(_) => {
                let (rx, tx) = pipe().map_err(stdio_err(uri))?;
                let rx = pipe::Receiver::from_owned_fd(rx).map_err(stdio_err(uri))?;
                let log = stdio.log.clone().ok_or_else(|| {
                    ShimError::InvalidRequest("crilog target without a log".into())
                })?;
                let tee = Tee::default();
                stdio.tees[i] = Some(tee.clone());
                stdio.outputs.push(tokio::spawn(copy_to_log(
                    Source::Pipe(rx),
                    LineWriter::new(log, stream),
                    tee,
                )));
                Some(tx)
            }
            Target::Discard => {
                let (rx, tx) = pipe().map_err(stdio_err(uri))?;
                let rx = pipe::Receiver::from_owned_fd(rx).map_err(stdio_err(uri))?;
                let tee = Tee::default();
                stdio.tees[i] = Some(tee.clone());
                stdio
                    .outputs
                    .push(tokio::spawn(copy_to_tee(Source::Pipe(rx), tee)));
                Some(tx)
            }
            Target::Binary { path, args } => {
                if binary_fds.is_none() {
                    binary_fds = Some(spawn_binary(path, args, req, reaper)?);
                }
                let (o, e) = binary_fds
                    .as_ref()
                    .ok_or_else(|| ShimError::InvalidRequest("logging binary".into()))?;
                let fd = if i == 0 { o } else { e };
                Some(fd.try_clone().map_err(stdio_err(uri))?)
            }
        };
    }
    let [stdout, stderr] = outs;
    Ok(Prepared {
        io: ProcessIo::Fds {
            stdin: stdin_fd,
            stdout,
            stderr,
        },
        pending: Pending {
            stdio,
            console: None,
        },
    })
}

impl Pending {
    /// After the runtime created the process: receive the pty master and start copying.
    pub fn finish(mut self) -> Result<ProcessStdio> {
        let Some((listener, sock, tin, tout)) = self.console.take() else {
            return Ok(std::mem::take(&mut self.stdio));
        };
        let r = receive_master(&listener);
        let _ = std::fs::remove_file(&sock);
        let master = r.map_err(|e| ShimError::io("receive pty master", &sock, e))?;
        let master = Arc::new(async_fd(master).map_err(|e| ShimError::io("pty", &sock, e))?);
        if let Target::Fifo(p) = &tin {
            let fifo = pipe::OpenOptions::new()
                .read_write(true)
                .open_receiver(p)
                .map_err(|e| ShimError::io("open stdin fifo", p, e))?;
            let (close_tx, close_rx) = tokio::sync::oneshot::channel();
            self.stdio.stdin = Some(tokio::spawn(copy_to_pty(fifo, master.clone(), close_rx)));
            self.stdio.stdin_close = Some(close_tx);
        }
        let source = Source::Pty(master.clone());
        let tee = Tee::default();
        if !matches!(tout, Target::Null | Target::Binary { .. }) {
            self.stdio.tees[0] = Some(tee.clone());
        }
        match &tout {
            Target::Null => {}
            Target::Discard => {
                self.stdio
                    .outputs
                    .push(tokio::spawn(copy_to_tee(source, tee)));
            }
            Target::CriLog(_) => {
                if let Some(log) = self.stdio.log.clone() {
                    let w = LineWriter::new(log, Stream::Stdout);
                    self.stdio
                        .outputs
                        .push(tokio::spawn(copy_to_log(source, w, tee)));
                }
            }
            Target::Fifo(p) => {
                let fd = open_output(p, true).map_err(|e| ShimError::io("open stdout", p, e))?;
                set_nonblocking(&fd);
                let fd = async_fd(fd).map_err(|e| ShimError::io("stdout", p, e))?;
                self.stdio
                    .outputs
                    .push(tokio::spawn(copy_to_fd(source, fd, tee)));
            }
            Target::File(p) => {
                // Regular files cannot be polled; writes to them do not block for long.
                let f = open_output(p, false).map_err(|e| ShimError::io("open stdout", p, e))?;
                self.stdio
                    .outputs
                    .push(tokio::spawn(copy_to_file(source, f.into(), tee)));
            }
            Target::Binary { .. } => {
                return Err(ShimError::InvalidRequest(
                    "binary:// logging with a terminal is not supported".into(),
                ))
            }
        }
        self.stdio.console = Some(master);
        Ok(std::mem::take(&mut self.stdio))
    }
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// Registers an owned fd with the reactor.
pub(crate) fn async_fd(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd stays open and refers to the same file until the AsyncFd drops it.
    unsafe { AsyncFd::register(fd) }.map_err(|e| std::io::Error::other(e.to_string()))
}

fn set_nonblocking(fd: &impl AsRawFd) {
    // SAFETY: F_GETFL/F_SETFL on an open fd owned by the caller.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// Accepts the runtime's connection on the console socket and takes the fd it sent.
fn receive_master(listener: &std::os::unix::net::UnixListener) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    listener.set_nonblocking(true)?;
    let (conn, _) = listener.accept()?;
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this fd in our table; we own it now.
                let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                set_nonblocking(&fd);
                return Ok(fd);
            }
        }
    }
    Err(std::io::Error::other(
        "console socket message carried no fd",
    ))
}

fn spawn_binary(
    path: &Path,
    args: &[(String, String)],
    req: &StdioRequest<'_>,
    reaper: &Reaper,
) -> Result<(OwnedFd, OwnedFd)> {
    let err = |e| ShimError::Stdio {
        uri: path.display().to_string(),
        source: e,
    };
    let (out_r, out_w) = pipe().map_err(err)?;
    let (err_r, err_w) = pipe().map_err(err)?;
    let (ready_r, ready_w) = pipe().map_err(err)?;
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd(), ready_w.as_raw_fd()];
    let mut cmd = Command::new(path);
    for (k, v) in args {
        if v.is_empty() {
            cmd.arg(k);
        } else {
            cmd.arg(k).arg(v);
        }
    }
    cmd.env("CONTAINER_ID", req.id)
        .env("CONTAINER_NAMESPACE", req.namespace);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            for (i, fd) in fds.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let (child, _exit) = reaper.spawn(&mut cmd).map_err(err)?;
    drop(child);
    drop((out_r, err_r, ready_w));
    // Wait until it closes fd 5 (or dies). This blocks the shim's only thread, so it
    // is bounded: a logger that is not ready within BINARY_READY gets the pipes anyway.
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&ready_r),
        nix::poll::PollFlags::POLLIN,
    )];
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(BINARY_READY_MS));
    drop(ready_r);
    Ok((out_w, err_w))
}

enum Source {
    Pipe(pipe::Receiver),
    Pty(Arc<AsyncFd<OwnedFd>>),
}

impl Source {
    /// Reads a chunk; 0 at end of stream (EIO on a pty whose slave is gone counts as end).
    async fn read(&mut self, buf: &mut [u8]) -> usize {
        match self {
            Source::Pipe(p) => p.read(buf).await.unwrap_or(0),
            Source::Pty(fd) => loop {
                let Ok(mut guard) = fd.readable().await else {
                    return 0;
                };
                match guard.try_io(|f| {
                    let n = nix::unistd::read(f.get_ref(), buf).map_err(std::io::Error::from)?;
                    Ok(n)
                }) {
                    Ok(Ok(n)) => return n,
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Ok(Err(_)) => return 0,
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

/// Copies a stream into the CRI log, then to the attach subscribers (never waiting on
/// them).
async fn copy_to_log(mut src: Source, mut w: LineWriter, tee: Tee) {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = src.read(&mut buf).await;
        if n == 0 {
            break;
        }
        w.feed(&buf[..n]);
        tee.send(&buf[..n]);
    }
    w.finish();
    tee.end();
}

/// Copies a stream to the attach subscribers only.
async fn copy_to_tee(mut src: Source, tee: Tee) {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = src.read(&mut buf).await;
        if n == 0 {
            break;
        }
        tee.send(&buf[..n]);
    }
    tee.end();
}

async fn write_all_fd(fd: &AsyncFd<OwnedFd>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        let Ok(mut guard) = fd.writable().await else {
            return false;
        };
        match guard.try_io(|f| nix::unistd::write(f.get_ref(), data).map_err(Into::into)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(_)) => return false,
            Err(_would_block) => continue,
        }
    }
    true
}

async fn copy_to_fd(mut src: Source, dst: AsyncFd<OwnedFd>, tee: Tee) {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = src.read(&mut buf).await;
        if n == 0 || !write_all_fd(&dst, &buf[..n]).await {
            break;
        }
        tee.send(&buf[..n]);
    }
    tee.end();
}

async fn copy_to_file(mut src: Source, mut dst: std::fs::File, tee: Tee) {
    use std::io::Write;
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = src.read(&mut buf).await;
        if n == 0 || dst.write_all(&buf[..n]).is_err() {
            break;
        }
        tee.send(&buf[..n]);
    }
    tee.end();
}

/// Copies the stdin FIFO into the process's stdin pipe until `close` (CloseIO); then
/// delivers whatever the FIFO still holds and drops the pipe, so the process sees EOF only
/// after every byte written before CloseIO.
async fn copy_stdin(
    mut fifo: pipe::Receiver,
    mut tx: pipe::Sender,
    mut close: tokio::sync::oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        tokio::select! {
            // Data first: CloseIO is only acted on once the FIFO has nothing ready.
            biased;
            r = fifo.read(&mut buf) => match r {
                Ok(n) if n > 0 => {
                    if tx.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                _ => return,
            },
            _ = &mut close => break,
        }
    }
    while let Ok(n) = fifo.try_read(&mut buf) {
        if n == 0 || tx.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// As [`copy_stdin`] for a terminal: on CloseIO what the FIFO already holds still reaches
/// the pty (the master stays open, it carries the output too).
async fn copy_to_pty(
    mut fifo: pipe::Receiver,
    master: Arc<AsyncFd<OwnedFd>>,
    mut close: tokio::sync::oneshot::Receiver<()>,
) {
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        tokio::select! {
            biased;
            r = fifo.read(&mut buf) => match r {
                Ok(n) if n > 0 => {
                    if !write_all_fd(&master, &buf[..n]).await {
                        return;
                    }
                }
                _ => return,
            },
            _ = &mut close => break,
        }
    }
    while let Ok(n) = fifo.try_read(&mut buf) {
        if n == 0 || !write_all_fd(&master, &buf[..n]).await {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        assert_eq!(parse("").unwrap(), Target::Null);
        assert_eq!(
            parse("/run/x/stdout").unwrap(),
            Target::Fifo("/run/x/stdout".into())
        );
        assert_eq!(
            parse("file:///var/log/a").unwrap(),
            Target::File("/var/log/a".into())
        );
        assert_eq!(
            parse("crilog:///l/c.log").unwrap(),
            Target::CriLog("/l/c.log".into())
        );
        assert_eq!(
            parse("binary:///bin/logger?a=b&c").unwrap(),
            Target::Binary {
                path: "/bin/logger".into(),
                args: vec![("a".into(), "b".into()), ("c".into(), String::new())]
            }
        );
        assert_eq!(parse("discard://").unwrap(), Target::Discard);
        assert!(parse("discard:///x").is_err());
        assert!(parse("http://x/y").is_err());
        assert!(parse("file://relative").is_err());
    }
}
