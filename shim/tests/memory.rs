//! The shim drops its executable's code pages once idle, and they come back on use
//! (see crust_shim::memory). Root only.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use containerd_shim_protos::api;

/// Resident kB of the shim's own executable text mapping.
fn text_rss(pid: u32) -> u64 {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_text = false;
    let mut total = 0;
    for l in smaps.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 6 && f[0].contains('-') {
            in_text = f[1] == "r-xp" && std::path::Path::new(f[5]) == exe;
        } else if in_text && f.first() == Some(&"Rss:") {
            total += f[1].parse::<u64>().unwrap();
        }
    }
    total
}

#[tokio::test]
async fn idle_shim_drops_code_pages_and_keeps_working() {
    if !is_root() {
        return;
    }
    let (mut shim, b) = Shim::start(&["sleep", "100"], &SpecOpts::default()).await;
    shim.run(&b).await;
    let pid = shim.shim_pid().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let idle = text_rss(pid);
    // Requests fault code back in (retried: a stalled machine may trim before we look).
    let mut busy = 0;
    for _ in 0..5 {
        let mut pr = api::PidsRequest::new();
        pr.id = b.id.clone();
        shim.client.pids(ctx(), &pr).await.unwrap();
        let mut sr = api::StatsRequest::new();
        sr.id = b.id.clone();
        shim.client.stats(ctx(), &sr).await.unwrap();
        busy = text_rss(pid);
        if busy > idle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(
        busy > idle,
        "requests faulted no code in: idle {idle} kB, busy {busy} kB"
    );
    // ... and once idle again they are dropped.
    assert!(
        eventually(|| text_rss(pid) < busy).await,
        "code pages not dropped: busy {busy} kB, now {} kB",
        text_rss(pid)
    );
    // The shim still works after its code was dropped.
    assert_eq!(shim.status(&b.id, "").await, api::Status::RUNNING);
    shim.kill(&b.id, "", 9).await.unwrap();
    assert_eq!(shim.wait(&b.id, "").await.unwrap(), 137);
    shim.delete(&b.id, "").await.unwrap();
}
