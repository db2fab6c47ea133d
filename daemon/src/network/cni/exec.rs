//! Running one CNI plugin binary per the spec: config on stdin, `CNI_*` environment,
//! result or error JSON on stdout, killed when the per-call timeout expires.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::super::error::{NetworkError, Result};

/// The CNI_* parameters of one call.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// ADD, DEL or CHECK.
    pub command: &'static str,
    /// CNI_CONTAINERID.
    pub container_id: &'a str,
    /// CNI_NETNS.
    pub netns: &'a Path,
    /// CNI_IFNAME.
    pub ifname: &'a str,
    /// CNI_ARGS.
    pub args: &'a str,
    /// Bin dirs (CNI_PATH).
    pub bin_dirs: &'a [PathBuf],
    /// Limit for the call.
    pub timeout: Duration,
}

/// The error object a failing plugin prints.
#[derive(Debug, Deserialize)]
struct ErrorResult {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// The binary of plugin `ty` in the first bin dir that has it.
pub fn find_plugin(bin_dirs: &[PathBuf], ty: &str) -> Result<PathBuf> {
    bin_dirs
        .iter()
        .map(|d| d.join(ty))
        .find(|p| p.is_file())
        .ok_or_else(|| NetworkError::CniPluginNotFound {
            plugin: ty.to_string(),
            dirs: bin_dirs.to_vec(),
        })
}

/// Runs plugin `ty` with `stdin`; returns its stdout on success.
pub async fn exec(ty: &str, inv: &Invocation<'_>, stdin: &[u8]) -> Result<Vec<u8>> {
    let bin = find_plugin(inv.bin_dirs, ty)?;
    let exec_err = |source| NetworkError::CniExec {
        plugin: ty.to_string(),
        command: inv.command,
        container: inv.container_id.to_string(),
        source,
    };
    let path =
        std::env::join_paths(inv.bin_dirs).map_err(|e| exec_err(std::io::Error::other(e)))?;
    let mut attempt = 0;
    let mut child = loop {
        let spawned = tokio::process::Command::new(&bin)
            .env("CNI_COMMAND", inv.command)
            .env("CNI_CONTAINERID", inv.container_id)
            .env("CNI_NETNS", inv.netns)
            .env("CNI_IFNAME", inv.ifname)
            .env("CNI_ARGS", inv.args)
            .env("CNI_PATH", &path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(c) => break c,
            // A plugin binary just written by another thread can be briefly "busy".
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => return Err(exec_err(e)),
        }
    };
    if let Some(mut input) = child.stdin.take() {
        // A plugin may exit without reading its stdin; that is not our error.
        let _ = input.write_all(stdin).await;
    }
    let out = match tokio::time::timeout(inv.timeout, child.wait_with_output()).await {
        Ok(r) => r.map_err(exec_err)?,
        Err(_) => {
            return Err(NetworkError::CniTimeout {
                plugin: ty.to_string(),
                command: inv.command,
                container: inv.container_id.to_string(),
                timeout: inv.timeout,
            })
        }
    };
    if out.status.success() {
        return Ok(out.stdout);
    }
    let (code, msg, details) = match serde_json::from_slice::<ErrorResult>(&out.stdout) {
        Ok(e) if !e.msg.is_empty() || e.code != 0 => (e.code, e.msg, e.details),
        _ => (
            0,
            format!("plugin exited with {}", out.status),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ),
    };
    Err(NetworkError::CniPlugin {
        plugin: ty.to_string(),
        command: inv.command,
        container: inv.container_id.to_string(),
        code,
        msg,
        details,
    })
}
