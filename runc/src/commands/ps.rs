//! `ps [--format table|json] ID [ps options]`: the container's processes, from its cgroup.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// `ps` flags.
#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Select one of: table or json.
    #[arg(short, long, default_value = "table")]
    pub format: String,
    /// Container id.
    pub id: String,
    /// Options passed to ps(1) (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// Lists processes.
pub fn run(root: &Path, a: &PsArgs) -> Result<i32> {
    let st = super::load(root, &a.id)?;
    let pids: Vec<i32> = match &st.cgroup {
        Some(cg) => cg.pids().context("read cgroup pids")?,
        None if st.init_alive() => vec![st.init_pid],
        None => vec![],
    };
    match a.format.as_str() {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(0)
        }
        "table" => {
            let args = if a.ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                a.ps_args.clone()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                bail!("ps: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let pid_col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .context("couldn't find PID field in ps output")?;
            println!("{header}");
            for l in lines {
                let pid = l
                    .split_whitespace()
                    .nth(pid_col)
                    .and_then(|p| p.parse().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{l}");
                }
            }
            Ok(0)
        }
        f => bail!("invalid format option {f:?}"),
    }
}
