//! Stdio through real shims: the CRI log format (partial lines, stderr vs stdout, final
//! partial, reopen), stdin kept open, ttys and resize, and OOM reporting. Root only.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use common::*;
use containerd_shim_protos::api;

fn mkfifo(p: &Path) -> std::fs::File {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(0)
        .open(p)
        .unwrap()
}

fn is_rfc3339_nano_utc(ts: &str) -> bool {
    let b = ts.as_bytes();
    ts.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && ts.ends_with('Z')
        && (b[19] == b'Z'
            || (b[19] == b'.' && ts[20..ts.len() - 1].bytes().all(|c| c.is_ascii_digit())))
}

#[tokio::test]
async fn cri_log_format() {
    if !is_root() {
        return;
    }
    let script = "echo out1; echo err1 >&2; head -c 20000 /dev/zero | tr '\\0' x; echo; echo err2 >&2; printf partial";
    let (mut shim, b) = Shim::start(&["sh", "-c", script], &SpecOpts::default()).await;
    let log = shim.path("c.log");
    let uri = format!("crilog://{}", log.display());
    shim.create(&b, ["", &uri, &uri], false).await.unwrap();
    shim.start_task(&b.id, "").await.unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    // Wait returns only after the output is drained: the log is complete now.
    let text = std::fs::read_to_string(&log).unwrap();
    let recs = cri_records(&text);
    for (ts, stream, tag, _) in &recs {
        assert!(is_rfc3339_nano_utc(ts), "bad timestamp {ts}");
        assert!(stream == "stdout" || stream == "stderr");
        assert!(tag == "P" || tag == "F");
    }
    let by = |s: &str| -> Vec<(String, String)> {
        recs.iter()
            .filter(|r| r.1 == s)
            .map(|r| (r.2.clone(), r.3.clone()))
            .collect()
    };
    let out = by("stdout");
    let err = by("stderr");
    assert_eq!(
        err,
        vec![("F".into(), "err1".into()), ("F".into(), "err2".into())]
    );
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(out[0], ("F".into(), "out1".into()));
    assert_eq!(out[1].0, "P");
    assert_eq!(out[1].1.len(), 16 * 1024);
    assert_eq!(out[2].0, "F");
    assert_eq!(out[1].1.len() + out[2].1.len(), 20000);
    assert!(out[1].1.bytes().chain(out[2].1.bytes()).all(|c| c == b'x'));
    // The unterminated last line is flushed on exit.
    assert_eq!(out[3], ("F".into(), "partial".into()));
    shim.delete(&b.id, "").await.unwrap();
}

#[tokio::test]
async fn cri_log_reopen_and_stdin_kept_open() {
    if !is_root() {
        return;
    }
    let script = "echo a; read x; echo b$x; read y; echo c$y";
    let (mut shim, b) = Shim::start(&["sh", "-c", script], &SpecOpts::default()).await;
    let log = shim.path("r.log");
    let stdin = shim.path("stdin");
    let mut fifo = mkfifo(&stdin);
    let uri = format!("crilog://{}", log.display());
    shim.create(&b, [stdin.to_str().unwrap(), &uri, &uri], false)
        .await
        .unwrap();
    shim.start_task(&b.id, "").await.unwrap();
    assert!(
        eventually(|| std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(" a\n"))
        .await
    );
    // Rotate like kubelet: rename, then ask for a reopen.
    let rotated = shim.path("r.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let mut ur = api::UpdateTaskRequest::new();
    ur.id = b.id.clone();
    ur.annotations
        .insert(crust_shim::REOPEN_LOG_ANNOTATION.into(), "".into());
    shim.client.update(ctx(), &ur).await.unwrap();
    // Two attach sessions: stdin stays open between them.
    fifo.write_all(b"1\n").unwrap();
    drop(fifo);
    let mut again = std::fs::OpenOptions::new()
        .write(true)
        .open(&stdin)
        .unwrap();
    again.write_all(b"2\n").unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    let old = cri_records(&std::fs::read_to_string(&rotated).unwrap());
    let new = cri_records(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(old.iter().map(|r| r.3.as_str()).collect::<Vec<_>>(), ["a"]);
    assert_eq!(
        new.iter().map(|r| r.3.as_str()).collect::<Vec<_>>(),
        ["b1", "c2"]
    );
    shim.delete(&b.id, "").await.unwrap();
}

#[tokio::test]
async fn close_io_ends_stdin() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["sh", "-c", "wc -l"], &SpecOpts::default()).await;
    let out = shim.path("out");
    let stdin = shim.path("stdin");
    let mut fifo = mkfifo(&stdin);
    let o = format!("file://{}", out.display());
    shim.create(&b, [stdin.to_str().unwrap(), &o, ""], false)
        .await
        .unwrap();
    shim.start_task(&b.id, "").await.unwrap();
    fifo.write_all(b"x\ny\nz\n").unwrap();
    drop(fifo);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(shim.status(&b.id, "").await, api::Status::RUNNING);
    shim.close_stdin(&b.id, "").await.unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "3");
    shim.delete(&b.id, "").await.unwrap();
}

#[tokio::test]
async fn close_io_delivers_everything_written_before_it() {
    if !is_root() {
        return;
    }
    // A slow reader (the shell reads a pipe a byte at a time): when CloseIO arrives, most
    // of the input still sits in the FIFO and the shim's copy buffer.
    let (mut shim, b) = Shim::start(
        &[
            "sh",
            "-c",
            "n=0; while read -r l; do n=$((n+1)); done; echo $n",
        ],
        &SpecOpts::default(),
    )
    .await;
    let out = shim.path("out");
    let stdin = shim.path("stdin");
    let fifo = mkfifo(&stdin);
    let o = format!("file://{}", out.display());
    shim.create(&b, [stdin.to_str().unwrap(), &o, ""], false)
        .await
        .unwrap();
    shim.start_task(&b.id, "").await.unwrap();
    let line = format!("{}\n", "x".repeat(999));
    let writer = tokio::task::spawn_blocking(move || {
        let mut fifo = fifo;
        for _ in 0..300 {
            fifo.write_all(line.as_bytes()).unwrap();
        }
    });
    writer.await.unwrap();
    shim.close_stdin(&b.id, "").await.unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "300");
    shim.delete(&b.id, "").await.unwrap();
}

#[tokio::test]
async fn tty_and_resize() {
    if !is_root() {
        return;
    }
    let o = SpecOpts {
        terminal: true,
        ..Default::default()
    };
    let (mut shim, b) = Shim::start(&["sh", "-c", "read x; stty size; sleep 0.2"], &o).await;
    let out = shim.path("tty-out");
    let stdin = shim.path("tty-in");
    let mut fifo = mkfifo(&stdin);
    let uri = format!("file://{}", out.display());
    shim.create(&b, [stdin.to_str().unwrap(), &uri, ""], true)
        .await
        .unwrap();
    shim.start_task(&b.id, "").await.unwrap();
    shim.resize(&b.id, "", 123, 45).await.unwrap();
    fifo.write_all(b"go\n").unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("45 123"), "{text:?}");
    // A pty turns \n into \r\n: proof the output went through a terminal.
    assert!(text.contains("\r\n"), "{text:?}");
    // Resizing a process without a terminal is a clear error.
    shim.delete(&b.id, "").await.unwrap();
}

#[tokio::test]
async fn exec_with_tty_writes_cri_log() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["sleep", "100"], &SpecOpts::default()).await;
    shim.run(&b).await;
    let e = shim.resize(&b.id, "", 10, 10).await.unwrap_err();
    assert_eq!(code(&e), ttrpc::Code::INVALID_ARGUMENT);
    let log = shim.path("x.log");
    let uri = format!("crilog://{}", log.display());
    shim.exec(
        &b.id,
        "t",
        &["sh", "-c", "echo in-tty; exit 7"],
        ["", &uri, ""],
        true,
    )
    .await
    .unwrap();
    shim.start_task(&b.id, "t").await.unwrap();
    assert_eq!(shim.wait(&b.id, "t").await.unwrap(), 7);
    let recs = cri_records(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!((recs[0].1.as_str(), recs[0].2.as_str()), ("stdout", "F"));
    assert_eq!(recs[0].3.trim_end_matches('\r'), "in-tty");
    shim.kill_and_delete(&b.id).await;
}

#[tokio::test]
async fn oom_is_reported() {
    if !is_root() {
        return;
    }
    let o = SpecOpts {
        memory_limit: Some(16 << 20),
        ..Default::default()
    };
    let (mut shim, b) = Shim::start(&["tail", "/dev/zero"], &o).await;
    shim.run(&b).await;
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 137);
    assert!(
        shim.wait_event("/tasks/oom", 1).await,
        "no oom event: {:?}",
        shim.events()
    );
    assert!(
        shim.wait_event("/tasks/exit", 1).await,
        "no exit event: {:?}",
        shim.events()
    );
    // OOM is published before the exit, so a client can mark the exit OOMKilled.
    let ev = shim.events();
    let pos = |t: &str| ev.iter().position(|e| e == t).unwrap();
    assert!(pos("/tasks/oom") < pos("/tasks/exit"), "{ev:?}");
    // Without events, a client can still tell: Stats answers until Delete, with the
    // OOM-kill count.
    let mut sr = api::StatsRequest::new();
    sr.id = b.id.clone();
    let stats = shim.client.stats(ctx(), &sr).await.unwrap();
    if stats.stats.type_url == "io.containerd.cgroups.v1.Metrics" {
        use containerd_shim_protos::cgroups::metrics::Metrics;
        let m: Metrics = protobuf::Message::parse_from_bytes(&stats.stats.value).unwrap();
        assert!(m.memory_oom_control.oom_kill >= 1, "{m:?}");
    }
    let mut count: HashMap<String, usize> = HashMap::new();
    for e in shim.events() {
        *count.entry(e).or_default() += 1;
    }
    assert_eq!(count.get("/tasks/exit"), Some(&1), "{count:?}");
    shim.delete(&b.id, "").await.unwrap();
}

#[tokio::test]
async fn binary_logging_driver() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(
        &["sh", "-c", "echo to-out; echo to-err >&2"],
        &SpecOpts::default(),
    )
    .await;
    // containerd's logging-binary protocol: stdout on fd 3, stderr on fd 4, close fd 5
    // when ready; the query's keys (and values) are the arguments.
    let logger = shim.path("logger.sh");
    std::fs::write(
        &logger,
        "#!/bin/sh\nexec 5>&-\ncat <&3 > \"$1.out\" &\ncat <&4 > \"$1.err\"\nwait\necho \"$CONTAINER_ID $CONTAINER_NAMESPACE\" > \"$1.env\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let base = shim.path("bin-log");
    let uri = format!("binary://{}?{}", logger.display(), base.display());
    shim.create(&b, ["", &uri, &uri], false).await.unwrap();
    shim.start_task(&b.id, "").await.unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 0);
    let read = |ext: &str| std::fs::read_to_string(base.with_extension(ext)).unwrap_or_default();
    assert!(
        eventually(|| read("env") == format!("{} {NS}\n", b.id)).await,
        "{}",
        read("env")
    );
    assert_eq!(read("out"), "to-out\n");
    assert_eq!(read("err"), "to-err\n");
    shim.delete(&b.id, "").await.unwrap();
}
