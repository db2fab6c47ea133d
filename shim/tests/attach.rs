//! The attach tee through real shims: subscribers get the raw output while the CRI log
//! stays complete; slow and gone subscribers are dropped without delaying the log; EOF at
//! the end of the stream; bad attach requests rejected with nothing opened. Root only.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use containerd_shim_protos::api;

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// A FIFO and its read end, opened non-blocking before the shim is asked (as crustd does).
struct Reader {
    path: PathBuf,
    file: std::fs::File,
}

impl Reader {
    fn new(shim: &Shim, name: &str) -> Reader {
        let path = shim.path(name);
        mkfifo(&path);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        Reader { path, file }
    }

    /// Reads until EOF (blocking, in a thread) or `limit`; panics after `limit`.
    async fn read_to_eof(self, limit: Duration) -> Vec<u8> {
        let fd = self.file.as_raw_fd();
        // SAFETY: F_GETFL/F_SETFL on the reader's own open fd.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
        }
        let mut f = self.file;
        let h = tokio::task::spawn_blocking(move || {
            let mut v = Vec::new();
            f.read_to_end(&mut v).unwrap();
            v
        });
        tokio::time::timeout(limit, h)
            .await
            .expect("no EOF on the attach fifo")
            .unwrap()
    }

    fn value(&self) -> String {
        self.path.display().to_string()
    }
}

async fn attach(shim: &Shim, id: &str, json: &str) -> ttrpc::Result<()> {
    let mut r = api::UpdateTaskRequest::new();
    r.id = id.into();
    r.annotations
        .insert(crust_shim::ATTACH_ANNOTATION.into(), json.into());
    shim.client.update(ctx(), &r).await.map(drop)
}

fn streams(out: Option<&Reader>, err: Option<&Reader>) -> String {
    let mut m = serde_json::Map::new();
    if let Some(r) = out {
        m.insert("stdout".into(), r.value().into());
    }
    if let Some(r) = err {
        m.insert("stderr".into(), r.value().into());
    }
    serde_json::Value::Object(m).to_string()
}

/// How many of the shim's fds point at `path`.
fn shim_fds_on(pid: u32, path: &Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| l == path)
        .count()
}

/// A container that waits for a line on stdin, then runs `body`.
async fn gated(body: &str, o: &SpecOpts) -> (Shim, common::Bundle, std::fs::File, PathBuf) {
    let script = format!("read go; {body}");
    let (mut shim, b) = Shim::start(&["sh", "-c", &script], o).await;
    let log = shim.path("c.log");
    let stdin = shim.path("stdin");
    mkfifo(&stdin);
    let gate = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&stdin)
        .unwrap();
    let uri = format!("crilog://{}", log.display());
    let err = if o.terminal { "" } else { uri.as_str() };
    shim.create(&b, [stdin.to_str().unwrap(), &uri, err], o.terminal)
        .await
        .unwrap();
    shim.start_task(&b.id, "").await.unwrap();
    (shim, b, gate, log)
}

#[tokio::test]
async fn subscribers_get_raw_stdout_and_stderr_and_the_log_stays_complete() {
    if !is_root() {
        return;
    }
    let body =
        "i=0; while [ $i -lt 300 ]; do echo o$i; echo e$i >&2; i=$((i+1)); done; printf tail";
    let (shim, b, mut gate, log) = gated(body, &SpecOpts::default()).await;
    let out = Reader::new(&shim, "a-out");
    let err = Reader::new(&shim, "a-err");
    let out2 = Reader::new(&shim, "a-out2");
    attach(&shim, &b.id, &streams(Some(&out), Some(&err)))
        .await
        .unwrap();
    // A second subscriber on the same stream.
    attach(&shim, &b.id, &streams(Some(&out2), None))
        .await
        .unwrap();
    let (o, e, o2) = (
        tokio::spawn(out.read_to_eof(Duration::from_secs(30))),
        tokio::spawn(err.read_to_eof(Duration::from_secs(30))),
        tokio::spawn(out2.read_to_eof(Duration::from_secs(30))),
    );
    gate.write_all(b"go\n").unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    let mut want_out: String = (0..300).map(|i| format!("o{i}\n")).collect();
    want_out.push_str("tail");
    let want_err: String = (0..300).map(|i| format!("e{i}\n")).collect();
    // Raw bytes, not CRI records; EOF once the process exited.
    assert_eq!(String::from_utf8(o.await.unwrap()).unwrap(), want_out);
    assert_eq!(String::from_utf8(o2.await.unwrap()).unwrap(), want_out);
    assert_eq!(String::from_utf8(e.await.unwrap()).unwrap(), want_err);
    let recs = cri_records(&std::fs::read_to_string(&log).unwrap());
    let of = |s: &str| -> Vec<String> {
        recs.iter()
            .filter(|r| r.1 == s)
            .map(|r| r.3.clone())
            .collect()
    };
    let mut lines: Vec<String> = want_out.lines().map(String::from).collect();
    assert_eq!(of("stdout"), lines);
    lines = want_err.lines().map(String::from).collect();
    assert_eq!(of("stderr"), lines);
    // The stream ended: attaching now is refused.
    let late = Reader::new(&shim, "late");
    let e = attach(&shim, &b.id, &streams(Some(&late), None))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ttrpc::Code::FAILED_PRECONDITION, "{e:?}");
    shim.delete(&b.id, "").await.unwrap();
}

#[tokio::test]
async fn tty_output_is_teed_and_stderr_is_refused() {
    if !is_root() {
        return;
    }
    let o = SpecOpts {
        terminal: true,
        ..Default::default()
    };
    let (shim, b, mut gate, log) = gated("echo hello-tty; echo bye", &o).await;
    let err = Reader::new(&shim, "t-err");
    let e = attach(&shim, &b.id, &streams(None, Some(&err)))
        .await
        .unwrap_err();
    assert_eq!(code(&e), ttrpc::Code::FAILED_PRECONDITION, "{e:?}");
    let out = Reader::new(&shim, "t-out");
    attach(&shim, &b.id, &streams(Some(&out), None))
        .await
        .unwrap();
    let o = tokio::spawn(out.read_to_eof(Duration::from_secs(30)));
    gate.write_all(b"go\n").unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    let got = String::from_utf8(o.await.unwrap()).unwrap();
    // The terminal's raw bytes (echoed input, \r\n line ends).
    assert!(got.ends_with("hello-tty\r\nbye\r\n"), "{got:?}");
    let recs = cri_records(&std::fs::read_to_string(&log).unwrap());
    let texts: Vec<&str> = recs.iter().map(|r| r.3.trim_end_matches('\r')).collect();
    assert!(texts.ends_with(&["hello-tty", "bye"]), "{texts:?}");
    shim.delete(&b.id, "").await.unwrap();
}

#[tokio::test]
async fn late_reader_gets_everything_and_slow_one_is_dropped_without_delaying_the_log() {
    if !is_root() {
        return;
    }
    // Phase 1: 600 kB (more than a pipe holds, less than the 1 MiB queue). Phase 2:
    // 3 MB, then a marker, then the container stays up.
    let line = "x".repeat(99);
    let body = format!(
        "yes {line} | head -n 6000; echo mid; read again; yes {line} | head -n 30000; echo done; sleep 100"
    );
    let (shim, b, mut gate, log) = gated(&body, &SpecOpts::default()).await;
    let pid = shim.shim_pid().await;
    let slow = Reader::new(&shim, "slow");
    let late = Reader::new(&shim, "late");
    attach(&shim, &b.id, &streams(Some(&slow), None))
        .await
        .unwrap();
    attach(&shim, &b.id, &streams(Some(&late), None))
        .await
        .unwrap();
    let log_ends = |tail: &str| {
        let (log, tail) = (log.clone(), tail.to_string());
        move || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .ends_with(&tail)
        }
    };
    gate.write_all(b"go\n").unwrap();
    // The log completes while neither reader has read anything.
    assert!(
        eventually(log_ends(" stdout F mid\n")).await,
        "no mid marker"
    );
    let phase1: Vec<u8> = format!("{line}\n").repeat(6000).into_bytes();
    // The late reader gets every byte, in order: the queue held what the pipe could not.
    let want = [phase1.as_slice(), b"mid\n"].concat();
    let mut f = late.file;
    // SAFETY: F_GETFL/F_SETFL on the reader's own open fd.
    unsafe {
        let fd = f.as_raw_fd();
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
    }
    let n = want.len();
    let got = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let mut v = vec![0u8; n];
            f.read_exact(&mut v).unwrap();
            v
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(got == want, "late reader got different bytes");
    gate.write_all(b"go\n").unwrap();
    assert!(
        eventually(log_ends(" stdout F done\n")).await,
        "no done marker"
    );
    assert_eq!(
        cri_records(&std::fs::read_to_string(&log).unwrap()).len(),
        36002
    );
    // The slow subscriber was dropped: its FIFO is closed while the container runs.
    assert!(
        eventually(|| shim_fds_on(pid, &slow.path) == 0).await,
        "slow subscriber still open"
    );
    let got = slow.read_to_eof(Duration::from_secs(10)).await;
    assert!(!got.is_empty() && got.len() <= 1 << 20, "{}", got.len());
    assert!(got == phase1[..got.len()], "slow subscriber got a gap");
    assert_eq!(shim.status(&b.id, "").await, api::Status::RUNNING);
    shim.kill_and_delete(&b.id).await;
}

#[tokio::test]
async fn closed_reader_is_dropped() {
    if !is_root() {
        return;
    }
    let body = "echo one; read again; echo two; sleep 100";
    let (shim, b, mut gate, log) = gated(body, &SpecOpts::default()).await;
    let pid = shim.shim_pid().await;
    let r = Reader::new(&shim, "gone");
    attach(&shim, &b.id, &streams(Some(&r), None))
        .await
        .unwrap();
    let path = r.path.clone();
    assert_eq!(shim_fds_on(pid, &path), 1);
    // Gone while the container writes nothing: noticed without any output.
    drop(r);
    assert!(
        eventually(|| shim_fds_on(pid, &path) == 0).await,
        "idle subscriber with a closed reader still open"
    );
    // Gone while output flows: dropped on EPIPE.
    let r2 = Reader::new(&shim, "gone2");
    attach(&shim, &b.id, &streams(Some(&r2), None))
        .await
        .unwrap();
    let path2 = r2.path.clone();
    assert_eq!(shim_fds_on(pid, &path2), 1);
    drop(r2);
    gate.write_all(b"go\n").unwrap();
    assert!(
        eventually(|| shim_fds_on(pid, &path2) == 0).await,
        "subscriber with a closed reader still open"
    );
    gate.write_all(b"go\n").unwrap();
    assert!(
        eventually(|| std::fs::read_to_string(&log)
            .unwrap_or_default()
            .ends_with(" stdout F two\n"))
        .await
    );
    let recs = cri_records(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(
        recs.iter().map(|r| r.3.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    shim.kill_and_delete(&b.id).await;
}

#[tokio::test]
async fn bad_attach_requests_open_nothing() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["sh", "-c", "echo x"], &SpecOpts::default()).await;
    let pid = shim.shim_pid().await;
    let r = Reader::new(&shim, "bad");
    let json = streams(Some(&r), None);
    // Unknown container.
    let e = attach(&shim, "nope", &json).await.unwrap_err();
    assert_eq!(code(&e), ttrpc::Code::NOT_FOUND, "{e:?}");
    // Output not copied by the shim (no CRI log): nothing to tee.
    let b2 = shim.bundle(&["sleep", "100"], &SpecOpts::default());
    shim.create(&b2, ["", "", ""], false).await.unwrap();
    let e = attach(&shim, &b2.id, &json).await.unwrap_err();
    assert_eq!(code(&e), ttrpc::Code::FAILED_PRECONDITION, "{e:?}");
    // Malformed values.
    let log = shim.path("l.log");
    let uri = format!("crilog://{}", log.display());
    shim.create(&b, ["", &uri, &uri], false).await.unwrap();
    for bad in ["{", r#"{"stdin":"/x"}"#, "{}", r#"{"stdout":"relative"}"#] {
        let e = attach(&shim, &b.id, bad).await.unwrap_err();
        assert_eq!(code(&e), ttrpc::Code::INVALID_ARGUMENT, "{bad}: {e:?}");
    }
    // A regular file is not a FIFO: refused and left as it was.
    let plain = shim.path("plain");
    std::fs::write(&plain, "keep").unwrap();
    let e = attach(
        &shim,
        &b.id,
        &format!(r#"{{"stdout":"{}"}}"#, plain.display()),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&e), ttrpc::Code::INVALID_ARGUMENT, "{e:?}");
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep");
    // A FIFO without a reader: clear error.
    let noreader = shim.path("noreader");
    mkfifo(&noreader);
    let e = attach(
        &shim,
        &b.id,
        &format!(r#"{{"stdout":"{}"}}"#, noreader.display()),
    )
    .await
    .unwrap_err();
    assert!(format!("{e:?}").contains("noreader"), "{e:?}");
    // Stopped container.
    shim.start_task(&b.id, "").await.unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    let e = attach(&shim, &b.id, &json).await.unwrap_err();
    assert_eq!(code(&e), ttrpc::Code::FAILED_PRECONDITION, "{e:?}");
    assert_eq!(shim_fds_on(pid, &r.path), 0);
    assert_eq!(shim_fds_on(pid, &plain), 0);
    assert_eq!(shim_fds_on(pid, &noreader), 0);
    shim.delete(&b.id, "").await.unwrap();
    shim.delete(&b2.id, "").await.unwrap();
}
