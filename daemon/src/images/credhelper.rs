//! Docker credential helpers: the `credHelpers` and `credsStore` entries of a docker
//! `config.json` name a program `docker-credential-<name>` (looked up on `PATH`) that
//! answers `get` with the server URL on stdin and `{"ServerURL","Username","Secret"}` as
//! JSON on stdout. A `Username` of `<token>` marks `Secret` as an identity token.
//!
//! Hand-written because the crates that speak this protocol (docker_credential) call the
//! helper without a time limit; a hung helper must not hang a pull forever.
//!
//! Invariant: a helper name is one path component (letters, digits, `.`, `_`, `-`), so a
//! config file cannot make crustd run an arbitrary path.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

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

/// Asks helper `name` for the credentials of `registry`. `Ok(None)` when the helper has
/// none for it; an error names the helper and what went wrong.
pub fn get(
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
    let mut child = Command::new(&prog)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {}: {e}", prog.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives EPIPE here; its exit status says more.
        let _ = stdin.write_all(server_url(registry).as_bytes());
    }
    // Both pipes are drained on threads so a chatty helper cannot block on a full pipe
    // while we wait for it.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "credential helper docker-credential-{name} did not answer within {timeout:?}"
                ));
            }
            Err(e) => return Err(format!("wait for docker-credential-{name}: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
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

    fn helper(dir: &Path, name: &str, body: &str) {
        let p = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn protocol() {
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
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "https://index.docker.io/v1/");
        assert_eq!(c.password, "pw");
        let c = get("echo", "127.0.0.1:5000", Some(d.path()), t)
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "127.0.0.1:5000");
        let c = get("tok", "r", Some(d.path()), t).unwrap().unwrap();
        assert_eq!(c.identity_token, "idt");
        assert!(c.username.is_empty());
        assert!(get("none", "r", Some(d.path()), t).unwrap().is_none());
        let e = get("broken", "r", Some(d.path()), t).unwrap_err();
        assert!(e.contains("boom"), "{e}");
        let e = get("garbage", "r", Some(d.path()), t).unwrap_err();
        assert!(e.contains("bad answer"), "{e}");
        let e = get("missing", "r", Some(d.path()), t).unwrap_err();
        assert!(e.contains("not found"), "{e}");
        let e = get("../../bin/sh", "r", Some(d.path()), t).unwrap_err();
        assert!(e.contains("plain name"), "{e}");
        let start = Instant::now();
        let e = get("slow", "r", Some(d.path()), Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("did not answer"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
