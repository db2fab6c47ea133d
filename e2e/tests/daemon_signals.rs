//! crustd's signals: SIGHUP reloads the config's `log_level` (and names the settings that
//! need a restart), SIGUSR1/2 are ignored with a log line, neither kills crustd; SIGTERM
//! and SIGQUIT stop it cleanly with its socket removed. Needs root (crustd's directories
//! and cgroups).

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
