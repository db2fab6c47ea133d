//! Restart after `kill -9 crustd` (issue 20): crustd serves Version and ListPodSandbox (with
//! every pod) before the host half of its recovery (network reconcile, orphan shims,
//! leftovers) is done, and RunPodSandbox, which that work could mistake for a crash's
//! leftover, waits for it.

use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crust_e2e::pods::{self, pod_config, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

/// A socket in the shims' directory that accepts connections and never answers, as a
/// hung orphan shim: recovery's reaping of it waits for its ping's timeout (5 s).
struct HungShim {
    path: std::path::PathBuf,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HungShim {
    fn start(path: std::path::PathBuf) -> Self {
        let l = UnixListener::bind(&path).expect("bind the hung shim's socket");
        l.set_nonblocking(true).expect("nonblocking");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => {
                        held.push(c);
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HungShim {
            path,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HungShim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_host_recovery_does_not_delay_serving() {
    require_root!();
    let (_reg, mut d, mut rt, _img, logs, _g) = setup().await;
    let ld = logs.path().to_str().expect("utf-8");
    let pod = pods::run_pod(&mut rt, &pod_config("restart-a", ld))
        .await
        .expect("RunPodSandbox");
    drop(rt);
    d.kill9();
    let sock = d
        .state()
        .join("shims/s")
        .join(format!("{}.sock", "f".repeat(32)));
    let hung = HungShim::start(sock.clone());
    let t0 = Instant::now();
    d.restart();
    let mut rt = pods::Runtime::new(d.channel().await);
    let v = rt
        .version(kc::VersionRequest::default())
        .await
        .expect("Version")
        .into_inner();
    assert_eq!(v.runtime_name, "crust");
    let listed = rt
        .list_pod_sandbox(kc::ListPodSandboxRequest::default())
        .await
        .expect("ListPodSandbox")
        .into_inner()
        .items;
    let answered = t0.elapsed();
    assert!(
        listed.iter().any(|p| p.id == pod),
        "ListPodSandbox after the restart lacks {pod}: {listed:?}"
    );
    // The hung orphan's socket goes once its ping timed out: still there, the reaping was
    // not finished when Version and ListPodSandbox were answered.
    assert!(
        sock.exists(),
        "Version and ListPodSandbox were answered only after the orphan shim's reaping ({answered:?} after the restart began)\n{}",
        d.log()
    );
    // RunPodSandbox waits for the host recovery: answered only once the orphan is reaped.
    let pod2 = pods::run_pod(&mut rt, &pod_config("restart-b", ld))
        .await
        .expect("RunPodSandbox during recovery");
    assert!(
        hung.accepted.load(Ordering::Relaxed) > 0,
        "recovery never tried the orphan shim\n{}",
        d.log()
    );
    assert!(
        !sock.exists(),
        "RunPodSandbox was answered before the orphan shim's reaping ended\n{}",
        d.log()
    );
    drop(hung);
    for p in [pod, pod2] {
        pods::remove_pod(&mut rt, &p).await;
    }
}
