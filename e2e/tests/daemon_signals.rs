//! crustd's signals: SIGHUP reloads the config's `log_level` (and names the settings that
//! need a restart), SIGUSR1/2 are ignored with a log line, neither kills crustd; SIGTERM
//! and SIGQUIT stop it cleanly with its socket removed, also while calls that never end by
//! themselves are open (kubelet's evented PLEG keeps a GetContainerEvents stream open: it
//! ends with Unavailable; a call still in flight is dropped after the drain limit). Needs
//! root (crustd's directories and cgroups).

use std::time::{Duration, Instant};

use crust_e2e::daemon::Crustd;
use crust_e2e::require_root;
use k8s_cri::v1 as kc;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn signal(d: &Crustd, s: Signal) {
    kill(Pid::from_raw(d.pid().expect("running") as i32), s).expect("kill");
}

/// Waits until crustd's log contains `needle` (after `from` bytes).
fn wait_log(d: &Crustd, from: usize, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = d.log();
        let tail = log.get(from..).unwrap_or("").to_string();
        if tail.contains(needle) {
            return tail;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in crustd's log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn version(d: &Crustd) {
    k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(d.channel().await)
        .version(kc::VersionRequest::default())
        .await
        .expect("Version: crustd still serves");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_log_level_and_keeps_serving() {
    require_root!();
    let mut d = Crustd::start("[network]\nenabled = false\n");
    // The log level from the config file, not the flag, so SIGHUP may change it.
    d.stop();
    d.log_level = None;
    d.restart();
    let cfg = std::fs::read_to_string(d.config()).expect("config");

    let at = d.log().len();
    signal(&d, Signal::SIGHUP);
    wait_log(&d, at, "log level unchanged");
    version(&d).await;

    // log_level = "debug" (a top-level key: before the tables).
    std::fs::write(d.config(), format!("log_level = \"debug\"\n{cfg}")).expect("config");
    let at = d.log().len();
    signal(&d, Signal::SIGHUP);
    let tail = wait_log(&d, at, "log level changed");
    assert!(tail.contains("debug"), "{tail}");
    // Debug output now shows; the transport crates stay quiet.
    version(&d).await;
    let tail = wait_log(&d, at, "DEBUG");
    assert!(!tail.contains(" h2::"), "h2 held at info: {tail}");

    // A setting that needs a restart is named, and not applied.
    std::fs::write(
        d.config(),
        format!(
            "log_level = \"debug\"\n{}",
            cfg.replace("enabled = false", "enabled = true")
        ),
    )
    .expect("config");
    let at = d.log().len();
    signal(&d, Signal::SIGHUP);
    let tail = wait_log(&d, at, "apply only after a restart");
    assert!(tail.contains("[network]"), "{tail}");

    // A broken file changes nothing.
    std::fs::write(d.config(), "log_level = [\n").expect("config");
    let at = d.log().len();
    signal(&d, Signal::SIGHUP);
    wait_log(&d, at, "config not reloaded");
    version(&d).await;

    signal(&d, Signal::SIGUSR1);
    wait_log(&d, at, "SIGUSR1");
    version(&d).await;

    assert!(d.stop(), "SIGTERM: clean exit\n{}", d.log());
    assert!(!d.socket().exists(), "socket removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigquit_stops_cleanly_and_removes_the_socket() {
    require_root!();
    let mut d = Crustd::start("[network]\nenabled = false\n");
    version(&d).await;
    let at = d.log().len();
    signal(&d, Signal::SIGQUIT);
    wait_log(&d, at, "crustd stopped");
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.socket().exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!d.socket().exists(), "socket removed\n{}", d.log());
    assert!(d.stop(), "exited 0");
}

/// Waits (at most `secs`) for crustd to exit; whether it did.
fn exits_within(d: &Crustd, secs: u64) -> bool {
    let pid = Pid::from_raw(d.pid().expect("running") as i32);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        // Signal 0: the process (or its zombie, until `stop` reaps it) still exists.
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        if zombie || kill(pid, None).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

// kubelet 1.32 with EventedPLEG: `kill -TERM crustd` left crustd hanging forever (socket
// closed, lock held, so no new crustd could start) because the graceful drain waited for
// the open GetContainerEvents stream.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_open_event_streams_and_exits() {
    require_root!();
    let mut d = Crustd::start("[network]\nenabled = false\n");
    let mut client =
        k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(d.channel().await);
    let mut events = client
        .get_container_events(kc::GetEventsRequest::default())
        .await
        .expect("GetContainerEvents")
        .into_inner();
    version(&d).await;
    let at = d.log().len();
    signal(&d, Signal::SIGTERM);
    let end = tokio::time::timeout(Duration::from_secs(10), events.message()).await;
    let exited = exits_within(&d, 10);
    let log = d.log();
    assert!(exited, "crustd still running 10 s after SIGTERM:\n{log}");
    assert!(log[at..].contains("crustd stopped"), "{log}");
    match end {
        Ok(Err(status)) => assert_eq!(
            status.code(),
            tonic::Code::Unavailable,
            "the stream ends with Unavailable: {status:?}"
        ),
        other => panic!("the event stream did not end with an error: {other:?}"),
    }
    assert!(!d.socket().exists(), "socket removed\n{log}");
    assert!(d.stop(), "exited 0");
}

// A call that never completes (a client that sends a request's headers and never its
// message) cannot hold crustd after SIGTERM beyond the drain limit.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_despite_a_call_that_never_completes() {
    require_root!();
    let mut d = Crustd::start("[network]\nenabled = false\n");
    let mut grpc = tonic::client::Grpc::new(d.channel().await);
    grpc.ready().await.expect("ready");
    let (keep, rx) = tokio::sync::mpsc::channel::<kc::VersionRequest>(1);
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/runtime.v1.RuntimeService/Version");
    let call = tokio::spawn(async move {
        grpc.client_streaming::<_, kc::VersionRequest, kc::VersionResponse, _>(
            tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx)),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
    });
    version(&d).await;
    let at = d.log().len();
    signal(&d, Signal::SIGTERM);
    let exited = exits_within(&d, 15);
    let log = d.log();
    assert!(exited, "crustd still running 15 s after SIGTERM:\n{log}");
    assert!(
        log[at..].contains("calls still in flight at shutdown"),
        "{log}"
    );
    assert!(log[at..].contains("crustd stopped"), "{log}");
    let answer = tokio::time::timeout(Duration::from_secs(5), call).await;
    assert!(
        matches!(answer, Ok(Ok(Err(_)))),
        "the unfinished call fails once crustd is gone: {answer:?}"
    );
    drop(keep);
    assert!(d.stop(), "exited 0");
}
