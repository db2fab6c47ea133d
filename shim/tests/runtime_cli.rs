//! The shim drives its OCI runtime by runc's command line only (contract 3 in
//! docs/ARCHITECTURE.md): StartContainer is `<runtime> start <id>`, whatever the runtime is
//! called, with crust-runc and with Debian's runc. The runtime here is a wrapper named
//! `crust-runc` that logs its arguments and execs the real runtime, so a shim that released
//! the init through crust-runc's exec fifo itself (as it once did for a binary of that name)
//! leaves no `start` line and fails this test. Root only.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

/// Whether some logged command line is `… start <id>`.
fn ran_start(log: &Path, id: &str) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= 2 && w[w.len() - 2] == "start" && w[w.len() - 1] == id
        })
}

#[tokio::test]
async fn start_is_the_runtimes_start_command_for_crust_runc_and_runc() {
    if !is_root() {
        return;
    }
    // The workspace's crust-runc (resolved before the wrapper takes over the variable).
    let crust_runc = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (log, target) = (dir.path().join("log"), dir.path().join("target"));
    let wrapper = dir.path().join("crust-runc");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexec \"$(cat {})\" \"$@\"\n",
            log.display(),
            target.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();

    for real in [crust_runc.as_str(), "/usr/sbin/runc"] {
        if !Path::new(real).is_file() {
            panic!("no runtime at {real}");
        }
        std::fs::write(&target, real).unwrap();
        std::fs::write(&log, "").unwrap();
        let (mut shim, b) = Shim::start_with_runtime(
            &["sh", "-c", "echo started; sleep 100"],
            &SpecOpts::default(),
            wrapper.to_str().unwrap(),
        )
        .await;
        let out = shim.path("out");
        let out_uri = format!("file://{}", out.display());
        let pid = shim
            .create(&b, ["", &out_uri, &out_uri], false)
            .await
            .unwrap();
        assert!(!ran_start(&log, &b.id), "{real}: start before StartTask");
        assert_eq!(shim.start_task(&b.id, "").await.unwrap(), pid);
        assert!(
            ran_start(&log, &b.id),
            "{real}: no `start {}` in the log",
            b.id
        );
        assert!(
            eventually(|| std::fs::read_to_string(&out).unwrap_or_default() == "started\n").await,
            "{real}: the program did not run"
        );
        shim.kill_and_delete(&b.id).await;
    }
}
