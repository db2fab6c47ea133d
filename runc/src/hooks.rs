//! Runs OCI hooks: the container state JSON on stdin, `hook.env` as the whole environment,
//! `hook.args` as argv (args[0] included), killed after `hook.timeout` seconds.
//!
//! Failure semantics (runtime-spec, as runc 1.1): a failing prestart, createRuntime,
//! createContainer or startContainer hook fails the operation; poststart and poststop
//! failures are logged and the remaining hooks still run.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// A failed hook.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("error running {kind} hook #{index} {path:?}: start")]
    Start {
        kind: &'static str,
        index: usize,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "error running {kind} hook #{index} {path:?}: {status}, stdout: {stdout}, stderr: {stderr}"
    )]
    Failed {
        kind: &'static str,
        index: usize,
        path: String,
        status: String,
        stdout: String,
        stderr: String,
    },
    #[error("error running {kind} hook #{index} {path:?}: timeout after {secs}s")]
    Timeout {
        kind: &'static str,
        index: usize,
        path: String,
        secs: i64,
    },
}

/// Runs one hook to completion.
fn run_one(kind: &'static str, index: usize, hook: &Hook, state: &str) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear()
        .envs(
            hook.env()
                .iter()
                .flatten()
                .filter_map(|e| e.split_once('=')),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure only calls sigprocmask, which is async-signal-safe; it gives the
    // hook an empty signal mask even when the foreground runtime blocks the signals it
    // forwards.
    unsafe {
        cmd.pre_exec(|| {
            let empty = nix::sys::signal::SigSet::empty();
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&empty),
                None,
            )
            .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(|source| HookError::Start {
        kind,
        index,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may not read its stdin; EPIPE is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut pause = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(source) => {
                return Err(HookError::Start {
                    kind,
                    index,
                    path,
                    source,
                })
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                kind,
                index,
                path,
                secs: hook.timeout().unwrap_or(0),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    };
    if status.success() {
        return Ok(());
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (_, Some(s)) => format!("signal: {s}"),
        _ => "failed".into(),
    };
    Err(HookError::Failed {
        kind,
        index,
        path,
        status,
        stdout: stdout.trim_end().into(),
        stderr: stderr.trim_end().into(),
    })
}

/// Runs `hooks` in order, stopping at the first failure.
pub fn run(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &str) -> Result<(), HookError> {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        run_one(kind, i, h, state)?;
    }
    Ok(())
}

/// Runs all `hooks`, logging (not returning) failures: for poststart and poststop.
pub fn run_logged(kind: &'static str, hooks: Option<&Vec<Hook>>, state: &str) {
    for (i, h) in hooks.into_iter().flatten().enumerate() {
        if let Err(e) = run_one(kind, i, h, state) {
            crate::logging::warn(&e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(v: serde_json::Value) -> Hook {
        serde_json::from_value(v).expect("hook")
    }

    #[test]
    fn state_on_stdin_and_failure() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("out");
        let h = hook(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > {}", out.display())]
        }));
        run("prestart", Some(&vec![h]), "{\"id\":\"x\"}").expect("run");
        assert_eq!(
            std::fs::read_to_string(&out).expect("read"),
            "{\"id\":\"x\"}"
        );
        let bad = hook(
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "echo oops >&2; exit 3"]}),
        );
        let e = run("prestart", Some(&vec![bad]), "{}")
            .expect_err("fails")
            .to_string();
        assert!(e.contains("exit status 3") && e.contains("oops"), "{e}");
    }

    #[test]
    fn timeout_kills() {
        let h =
            hook(serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}));
        let t = Instant::now();
        let e = run("createRuntime", Some(&vec![h]), "{}").expect_err("times out");
        assert!(matches!(e, HookError::Timeout { .. }));
        assert!(t.elapsed() < Duration::from_secs(3));
    }
}
