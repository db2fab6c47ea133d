//! Docker credential helpers: the `credHelpers` and `credsStore` entries of a docker
//! `config.json` name a program `docker-credential-<name>` (looked up on `PATH`) that
//! answers `get` with the server URL on stdin and `{"ServerURL","Username","Secret"}` as
//! JSON on stdout. A `Username` of `<token>` marks `Secret` as an identity token.
//!
//! Hand-written because the crates that speak this protocol (docker_credential) call the
//! helper without a time limit; a hung helper must not hang a pull forever.
//!
//! The helper runs under tokio (no async worker blocks on it), in its own process group,
//! with one deadline for everything: writing stdin, reading stdout and stderr to EOF and
//! its exit. Past the deadline the whole group is SIGKILLed, so a grandchild that keeps
//! the helper's stdout open cannot hold the pull either.
//!
//! Invariant: a helper name is one path component (letters, digits, `.`, `_`, `-`), so a
//! config file cannot make crustd run an arbitrary path.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::hosts::Credentials;

/// How long a helper may take before it is killed and the pull fails.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The server URL docker hands a helper for `registry` (docker.io's is its v1 index URL).
pub fn server_url(registry: &str) -> String {
    if registry == "docker.io" || registry == "index.docker.io" {
        "https://index.docker.io/v1/".into()
    } else {
        registry.into()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Finds `docker-credential-<name>` in `search` (the directories of `PATH` when `None`).
fn program(name: &str, search: Option<&Path>) -> Option<PathBuf> {
    let file = format!("docker-credential-{name}");
    let dirs: Vec<PathBuf> = match search {
        Some(d) => vec![d.to_path_buf()],
        None => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).collect(),
    };
    dirs.into_iter()
        .map(|d| d.join(&file))
        .find(|p| p.is_file())
}

/// Kills the helper's process group (the helper and whatever it forked) unless disarmed:
/// on the deadline, and when the pull that awaits the helper is dropped.
struct GroupKill(Option<i32>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Asks helper `name` for the credentials of `registry`. `Ok(None)` when the helper has
/// none for it; an error names the helper and what went wrong. The helper, its output
/// and its exit together get `timeout`.
pub async fn get(
    name: &str,
    registry: &str,
    search: Option<&Path>,
    timeout: Duration,
) -> Result<Option<Credentials>, String> {
    if !valid_name(name) {
        return Err(format!(
            "credential helper name {name:?} is not a plain name"
        ));
    }
    let prog = program(name, search)
        .ok_or_else(|| format!("credential helper docker-credential-{name} not found"))?;
    let mut child = tokio::process::Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("run {}: {e}", prog.display()))?;
    // The group's id is the helper's pid (process_group(0)).
    let mut group = GroupKill(child.id().map(|p| p as i32));
    let url = server_url(registry);
    let run = async {
        let (mut stdin, mut stdout, mut stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let write = async {
            if let Some(mut w) = stdin.take() {
                // A helper that exits without reading gives EPIPE; its exit status says more.
                let _ = w.write_all(url.as_bytes()).await;
            }
        };
        let read = |r: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| async move {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v).await;
            }
            v
        };
        let ((), out, err, status) = tokio::join!(
            write,
            read(stdout.take().map(|s| Box::new(s) as _)),
            read(stderr.take().map(|s| Box::new(s) as _)),
            child.wait()
        );
        (out, err, status)
    };
    let (stdout, stderr, status) = match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => {
            drop(group);
            return Err(format!(
                "credential helper docker-credential-{name} did not answer within {timeout:?}"
            ));
        }
    };
    // The helper has exited and its pipes are closed: nothing of its group to kill (and its
    // pid, hence the group id, may be reused from now on).
    group.0 = None;
    let status = status.map_err(|e| format!("wait for docker-credential-{name}: {e}"))?;
    if !status.success() {
        let msg = String::from_utf8_lossy(if stdout.is_empty() { &stderr } else { &stdout });
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        return Err(format!(
            "credential helper docker-credential-{name} failed ({status}): {}",
            msg.trim()
        ));
    }
    let a: HelperAnswer = serde_json::from_slice(&stdout)
        .map_err(|e| format!("credential helper docker-credential-{name}: bad answer: {e}"))?;
    if a.username == "<token>" {
        return Ok(Some(Credentials {
            identity_token: a.secret,
            ..Default::default()
        }));
    }
    Ok(Some(Credentials {
        username: a.username,
        password: a.secret,
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::Instant;

    fn helper(dir: &Path, name: &str, body: &str) {
        let p = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn protocol() {
        let d = tempfile::tempdir().unwrap();
        // Echoes the server URL it was given back as the user name.
        helper(
            d.path(),
            "echo",
            r#"[ "$1" = get ] || exit 2; read -r url; printf '{"ServerURL":"%s","Username":"%s","Secret":"pw"}' "$url" "$url""#,
        );
        helper(
            d.path(),
            "tok",
            r#"echo '{"Username":"<token>","Secret":"idt"}'"#,
        );
        helper(
            d.path(),
            "none",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        helper(d.path(), "broken", "echo boom >&2; exit 1");
        helper(d.path(), "slow", "sleep 5");
        helper(d.path(), "garbage", "echo not-json");
        let t = HELPER_TIMEOUT;
        let c = get("echo", "docker.io", Some(d.path()), t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "https://index.docker.io/v1/");
        assert_eq!(c.password, "pw");
        let c = get("echo", "127.0.0.1:5000", Some(d.path()), t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "127.0.0.1:5000");
        let c = get("tok", "r", Some(d.path()), t).await.unwrap().unwrap();
        assert_eq!(c.identity_token, "idt");
        assert!(c.username.is_empty());
        assert!(get("none", "r", Some(d.path()), t).await.unwrap().is_none());
        let e = get("broken", "r", Some(d.path()), t).await.unwrap_err();
        assert!(e.contains("boom"), "{e}");
        let e = get("garbage", "r", Some(d.path()), t).await.unwrap_err();
        assert!(e.contains("bad answer"), "{e}");
        let e = get("missing", "r", Some(d.path()), t).await.unwrap_err();
        assert!(e.contains("not found"), "{e}");
        let e = get("../../bin/sh", "r", Some(d.path()), t)
            .await
            .unwrap_err();
        assert!(e.contains("plain name"), "{e}");
        let start = Instant::now();
        let e = get("slow", "r", Some(d.path()), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.contains("did not answer"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    /// The deadline covers the output too: a helper that answers and exits but leaves a
    /// grandchild holding its stdout (and stderr) open fails at the deadline instead of
    /// hanging the pull, and the grandchild is killed with the helper's process group.
    #[tokio::test]
    async fn grandchild_holding_stdout_open() {
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("grandchild.pid");
        helper(
            d.path(),
            "forky",
            &format!(
                r#"sleep 30 & echo $! > {}; echo '{{"Username":"u","Secret":"p"}}'; exit 0"#,
                pidfile.display()
            ),
        );
        let start = Instant::now();
        let e = get("forky", "r", Some(d.path()), Duration::from_millis(500))
            .await
            .unwrap_err();
        let took = start.elapsed();
        assert!(e.contains("did not answer"), "{e}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed (and reaped by init, or a zombie until then): no longer running.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            if state.is_none_or(|s| s == "Z" || s == "X") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "grandchild {pid} still runs: {stat}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The helper runs on tokio's process machinery: a current-thread runtime keeps
    /// serving other tasks while a helper takes its time.
    #[tokio::test(flavor = "current_thread")]
    async fn does_not_block_the_runtime() {
        let d = tempfile::tempdir().unwrap();
        helper(
            d.path(),
            "sleepy",
            r#"sleep 0.5; echo '{"Username":"u","Secret":"p"}'"#,
        );
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let t2 = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                t2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let c = get("sleepy", "r", Some(d.path()), HELPER_TIMEOUT)
            .await
            .unwrap()
            .unwrap();
        ticker.abort();
        assert_eq!(c.username, "u");
        let n = ticks.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            n >= 10,
            "only {n} ticks of 20 ms while the helper ran 500 ms"
        );
    }
}
