//! The harness's start-up sweep ([`crust_e2e::sweep`]): a test process killed by SIGKILL
//! leaves its crustd running with its pod's mounts; a later sweep removes that directory,
//! and never a live test's. Root only.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crust_e2e::daemon::Crustd;
use crust_e2e::pods::{self, pod_config, Runtime};
use crust_e2e::{require_root, sweep};

const CHILD: &str = "CRUST_E2E_SWEEP_CHILD";
const HELPER: &str = "helper_crustd_with_a_pod_until_killed";
/// What the helper prints before its crustd's pid and directory.
const MARK: &str = "sweep-helper: crustd ";

/// The mount points under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(dir))
        .map(String::from)
        .collect()
}

/// Cleans up after the helper if the sweep did not (the test failed).
struct Helper(Option<PathBuf>);

impl Drop for Helper {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            sweep::clean(&dir);
        }
    }
}

/// Run by the test below as a process of its own: a crustd with one pod (nsfs and shm
/// mounts under its directory), then it waits to be killed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a helper process of a_killed_tests_directory_is_swept_and_a_live_ones_is_not"]
async fn helper_crustd_with_a_pod_until_killed() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let d = Crustd::start(&pods::config());
    let mut rt = Runtime::new(d.channel().await);
    let logs = d.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    pods::run_pod(&mut rt, &pod_config("swept", logs.to_str().unwrap()))
        .await
        .expect("RunPodSandbox");
    // On a line of its own: libtest has written the test's name without a newline.
    println!("\n{MARK}{} {}", d.pid().unwrap(), d.dir.path().display());
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_tests_directory_is_swept_and_a_live_ones_is_not() {
    require_root!();
    // This test's own crustd: a live test's directory, which no sweep may touch.
    let live = Crustd::start(&pods::config());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            HELPER,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            if let Some((_, rest)) = l.split_once(MARK) {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the helper's crustd and pod");
    let (pid, dir) = line.split_once(' ').unwrap();
    let (pid, dir): (i32, PathBuf) = (pid.parse().unwrap(), dir.into());
    let mut helper = Helper(Some(dir.clone()));
    assert!(!mounts_under(&dir).is_empty(), "the pod has no mounts");

    // SIGKILL: the test process runs no Drop; its directory and the pod's mounts stay (and
    // crustd, unless it noticed its parent's death).
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dir.join(sweep::LOCK).exists());
    assert!(!mounts_under(&dir).is_empty());

    let swept = sweep::sweep_dead(&std::env::temp_dir());
    assert!(
        swept.contains(&dir),
        "{} not swept: {swept:?}",
        dir.display()
    );
    assert!(!sweep::alive(pid), "crustd {pid} still runs");
    assert_eq!(mounts_under(&dir), Vec::<String>::new());
    assert!(!dir.exists());
    helper.0 = None;

    assert!(!swept.contains(&live.dir.path().to_path_buf()));
    assert!(live.dir.path().join(sweep::LOCK).exists());
    let mut rt = Runtime::new(live.channel().await);
    rt.version(k8s_cri::v1::VersionRequest::default())
        .await
        .expect("the live crustd still answers");
}
