//! One crustd per root, per state directory and per socket: a second crustd that names the
//! root, the state or the socket of a running one refuses to start, names the holder's pid,
//! and changes nothing (the first one's containers keep running, its socket keeps serving).
//! A socket another live server answers is refused; a stale one is replaced; the socket is
//! removed at exit only while it is still crustd's own. Needs root (pods, cgroups).

use std::path::Path;

use crust_e2e::daemon::{refused_start, Crustd};
use crust_e2e::pods::{self, pod_with_container, setup};
use crust_e2e::require_root;
use k8s_cri::v1 as kc;

/// A second crustd on `root`, `state`, `socket` and `d`'s config refuses, naming `d`'s pid.
fn refused_by(d: &Crustd, root: &Path, state: &Path, socket: &Path, watch: &Path) -> String {
    let out = refused_start(root, state, socket, &d.config(), watch);
    let pid = d.pid().expect("pid");
    assert!(
        out.contains(&format!("pid {pid}")),
        "names the holder: {out}"
    );
    out
}

async fn assert_still_running(d: &Crustd, c: &str) {
    let mut rt = pods::Runtime::new(d.channel().await);
    let st = pods::status(&mut rt, c).await;
    assert_eq!(
        st.state,
        kc::ContainerState::ContainerRunning as i32,
        "the first crustd's container still runs: {st:?}\n{}",
        d.log()
    );
    let (out, code) = pods::exec(&mut rt, c, "echo alive").await;
    assert_eq!((out.as_str(), code), ("alive\n", 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn same_state_other_root_is_refused_and_changes_nothing() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let (_pod, c) = pod_with_container(
        &mut rt,
        "lockstate",
        logs.path(),
        &img,
        "s",
        &["sleep", "1000"],
    )
    .await;
    let other = tempfile::tempdir().expect("dir");
    let sock = other.path().join("crust.sock");
    let out = refused_by(&d, &other.path().join("root"), &d.state(), &sock, &sock);
    assert!(out.contains(&d.state().display().to_string()), "{out}");
    assert!(!out.contains("killing"), "{out}");
    assert_still_running(&d, &c).await;
    assert!(d.state().join("bundles").join(&c).exists(), "bundle kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn same_root_other_state_is_refused_and_changes_nothing() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let (_pod, c) = pod_with_container(
        &mut rt,
        "lockroot",
        logs.path(),
        &img,
        "s",
        &["sleep", "1000"],
    )
    .await;
    let other = tempfile::tempdir().expect("dir");
    let sock = other.path().join("crust.sock");
    let out = refused_by(&d, &d.root(), &other.path().join("state"), &sock, &sock);
    assert!(out.contains(&d.root().display().to_string()), "{out}");
    assert_still_running(&d, &c).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn same_socket_other_dirs_is_refused_and_keeps_serving() {
    require_root!();
    let (_reg, d, mut rt, img, logs, _g) = setup().await;
    let (_pod, c) = pod_with_container(
        &mut rt,
        "locksock",
        logs.path(),
        &img,
        "s",
        &["sleep", "1000"],
    )
    .await;
    let other = tempfile::tempdir().expect("dir");
    let (root, state) = (other.path().join("root"), other.path().join("state"));
    let out = refused_by(&d, &root, &state, &d.socket(), &d.socket());
    assert!(out.contains(&d.socket().display().to_string()), "{out}");
    assert!(d.socket().exists(), "socket left in place");
    assert_still_running(&d, &c).await;
}

/// A socket some other live server answers (not a crustd) is refused and left alone; a
/// stale socket file (nobody listening) is replaced.
#[tokio::test(flavor = "multi_thread")]
async fn live_foreign_socket_is_refused_stale_one_replaced() {
    require_root!();
    let dir = tempfile::tempdir().expect("dir");
    let sock = dir.path().join("foreign.sock");
    let foreign = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    std::fs::write(dir.path().join("c.toml"), "[network]\nenabled = false\n").expect("config");
    let out = refused_start(
        &dir.path().join("root"),
        &dir.path().join("state"),
        &sock,
        &dir.path().join("c.toml"),
        &sock,
    );
    assert!(out.contains("answers"), "{out}");
    assert!(out.contains(&sock.display().to_string()), "{out}");
    assert!(
        std::os::unix::net::UnixStream::connect(&sock).is_ok(),
        "the foreign server still has its socket"
    );
    drop(foreign); // the file stays: now a stale socket
    assert!(sock.exists());
    let mut d = Crustd::start("[network]\nenabled = false\n");
    d.kill9();
    // crustd's own directory, socket path moved onto the stale file.
    std::fs::rename(&sock, d.socket()).expect("stale socket in place");
    d.restart();
    let mut rt = pods::Runtime::new(d.channel().await);
    rt.version(kc::VersionRequest::default())
        .await
        .expect("Version on the replaced socket");
}

/// The socket is removed at exit only if it is still crustd's (same inode): one that
/// another process put there since is left alone.
#[tokio::test(flavor = "multi_thread")]
async fn socket_removed_at_exit_only_if_still_ours() {
    require_root!();
    let mut d = Crustd::start("[network]\nenabled = false\n");
    assert!(d.stop(), "clean exit: {}", d.log());
    assert!(!d.socket().exists(), "crustd removed its own socket");
    d.restart();
    std::fs::remove_file(d.socket()).expect("rm");
    let theirs = std::os::unix::net::UnixListener::bind(d.socket()).expect("bind");
    assert!(d.stop(), "clean exit: {}", d.log());
    assert!(
        d.socket().exists(),
        "someone else's socket kept: {}",
        d.log()
    );
    assert!(std::os::unix::net::UnixStream::connect(d.socket()).is_ok());
    drop(theirs);
}

/// A second crustd refused while the first runs can start once the first has stopped (the
/// locks are released by the process's death, even a kill -9).
#[tokio::test(flavor = "multi_thread")]
async fn locks_are_released_when_crustd_dies() {
    require_root!();
    let mut d = Crustd::start("[network]\nenabled = false\n");
    d.kill9();
    d.restart();
    let mut rt = pods::Runtime::new(d.channel().await);
    rt.version(kc::VersionRequest::default())
        .await
        .expect("Version after restart on the same dirs");
    assert!(d.stop(), "{}", d.log());
}
