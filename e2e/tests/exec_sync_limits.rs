//! ExecSync under hostile commands (CVE-2022-31030 class): output is captured in memory,
//! each stream capped and the answer truncated to fit one gRPC message (never an error);
//! the process is killed on timeout and when the client gives up; nothing is left under
//! `<state>/exec`.

use std::time::{Duration, Instant};

use crust_e2e::pods::{self, container_config, pod_config};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;
use tonic::Code;

/// Pids of host processes whose command line contains `marker`.
fn procs_with(marker: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<i32>().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmd)
                .contains(marker)
                .then_some(pid)
        })
        .collect()
}

/// Waits up to 10 s for no process to carry `marker`.
async fn wait_no_procs(marker: &str) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = procs_with(marker);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn exec_entries(state: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(state.join("exec"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_sync_output_is_capped_and_processes_do_not_outlive_the_call() {
    require_root!();
    let (_reg, mut d, rt, img, logs, _g) = pods::setup().await;
    // kubelet's CRI client accepts 16 MiB answers; a little more here, so the test sees
    // what crustd sends rather than a client-side limit.
    let mut rt = rt.max_decoding_message_size(64 << 20);
    let state = d.dir.path().join("state");
    let pc = pod_config("execcap", logs.path().to_str().unwrap());
    let pod = pods::run_pod(&mut rt, &pc).await.expect("RunPodSandbox");
    let c = pods::run_container(
        &mut rt,
        &pod,
        &pc,
        container_config("sleeper", &img, &["/bin/sleep", "1000"]),
    )
    .await
    .expect("create+start");
    let sh = |script: &str| -> Vec<String> { vec!["/bin/sh".into(), "-c".into(), script.into()] };

    // 20 MB on each stream: answered, truncated to one message, each stream's start intact.
    let out = rt
        .exec_sync(kc::ExecSyncRequest {
            container_id: c.clone(),
            cmd: sh("busybox yes o | busybox head -c 20000000; \
                     busybox yes e | busybox head -c 20000000 >&2; exit 3"),
            timeout: 60,
        })
        .await
        .expect("ExecSync with 2 x 20 MB of output")
        .into_inner();
    let (o, e) = (out.stdout.len(), out.stderr.len());
    assert_eq!(out.exit_code, 3);
    assert!(o + e <= 16 << 20, "answer of {o} + {e} bytes");
    assert!(
        o >= (8 << 20) - 4096 && e >= (8 << 20) - 4096,
        "stdout {o}, stderr {e}"
    );
    assert!(out.stdout.starts_with(b"o\no\n") && out.stderr.starts_with(b"e\ne\n"));
    // One stream alone keeps up to 16 MiB minus the message's own bytes.
    let out = rt
        .exec_sync(kc::ExecSyncRequest {
            container_id: c.clone(),
            cmd: sh("busybox yes o | busybox head -c 20000000"),
            timeout: 60,
        })
        .await
        .expect("ExecSync with 20 MB of stdout")
        .into_inner();
    assert!(
        out.stdout.len() > (16 << 20) - 4096 && out.stdout.len() <= 16 << 20,
        "{}",
        out.stdout.len()
    );
    assert_eq!(exec_entries(&state), Vec::<String>::new());

    // Timeout: DeadlineExceeded, the process killed.
    let marker = format!("crust-exec-timeout-{}", std::process::id());
    let err = rt
        .exec_sync(kc::ExecSyncRequest {
            container_id: c.clone(),
            cmd: vec![
                "/bin/busybox".into(),
                "sh".into(),
                "-c".into(),
                format!("exec busybox yes {marker} >/dev/null"),
            ],
            timeout: 2,
        })
        .await
        .expect_err("ExecSync must time out");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert_eq!(
        wait_no_procs(&marker).await,
        Vec::<i32>::new(),
        "timed out exec still runs"
    );

    // The client gives up (no timeout in the request): the process is killed too, and its
    // unbounded output never reaches the disk.
    let marker = format!("crust-exec-cancel-{}", std::process::id());
    let mut rt2 = rt.clone();
    let call = rt2.exec_sync(kc::ExecSyncRequest {
        container_id: c.clone(),
        cmd: vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            format!("exec busybox yes {marker}"),
        ],
        timeout: 0,
    });
    assert!(
        tokio::time::timeout(Duration::from_secs(3), call)
            .await
            .is_err(),
        "an endless exec answered"
    );
    assert!(!procs_with(&marker).is_empty() || exec_entries(&state).is_empty());
    assert_eq!(
        wait_no_procs(&marker).await,
        Vec::<i32>::new(),
        "exec still runs after its client gave up\n{}",
        d.log()
    );
    assert_eq!(exec_entries(&state), Vec::<String>::new());

    // The container is unharmed, and a restart finds nothing to clean under exec/.
    let (text, code) = pods::exec(&mut rt, &c, "echo still here").await;
    assert_eq!((text.as_str(), code), ("still here\n", 0));
    assert!(d.stop(), "crustd did not stop cleanly");
    // What a crash between mkfifo and the shim opening the FIFOs would leave.
    let leftover = state.join("exec/exec-leftover");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("stdout"), b"x").unwrap();
    d.restart();
    assert_eq!(exec_entries(&state), Vec::<String>::new());
    let mut rt = pods::Runtime::new(d.channel().await);
    pods::remove_pod(&mut rt, &pod).await;
}
