//! `crust-runc` command line: runc 1.1's commands, flags, output and exit codes.
//!
//! Global flags come before the command (`crust-runc --root R --log L --log-format json
//! create ...`), as containerd and the shims call runc. Errors are logged (JSON with
//! `--log-format json`, which containerd parses) and printed to stderr; the exit code is 1.

mod commands;

use std::path::PathBuf;

use clap::Parser;

/// `--version` text, shaped like runc's ("runc version X", "commit: ", "spec: ") so tools
/// that parse it (go-runc) find the fields.
const VERSION: &str = concat!(
    "crust-runc version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: crust-runc-",
    env!("CARGO_PKG_VERSION"),
    "\nspec: 1.0.2-dev\nruntime: runc 1.1 compatible"
);

#[derive(Parser, Debug)]
#[command(
    name = "crust-runc",
    about = "crust-runc: crust's Open Container Initiative runtime (a drop-in for runc 1.1)",
    long_about = "crust-runc: crust's Open Container Initiative runtime (a drop-in for runc 1.1).\n\n\
        Runs containers from OCI bundles: each container's configuration is the bundle's \
        config.json (`--bundle`, default the current directory); there is no configuration \
        file of its own. crust-shim runs it for crustd; containerd can use it as runc's \
        BinaryName.",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Enable debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Set the log file to write runtime logs to (default: stderr).
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Set the log format ('text' (default), or 'json').
    #[arg(long = "log-format", global = true, default_value = "text")]
    pub log_format: String,
    /// Root directory for storage of container state (this should be located in tmpfs).
    #[arg(long, global = true, default_value = "/run/crust-runc")]
    pub root: PathBuf,
    /// Path to the criu binary used for checkpoint and restore (default: criu in PATH).
    #[arg(long, global = true)]
    pub criu: Option<String>,
    /// Use systemd for cgroups: the container's cgroup is a transient scope, cgroupsPath
    /// `slice:prefix:name` (cgroup v2 with systemd as init only; refused elsewhere).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Ignore cgroup permission errors ('true', 'false', or 'auto'); accepted for compatibility.
    #[arg(long, hide = true)]
    pub rootless: Option<String>,
    #[command(subcommand)]
    pub command: Option<commands::Command>,
}

fn main() {
    // The re-executed init must not pay for argument parsing or logging setup.
    if std::env::args_os().nth(1).is_some_and(|a| a == "init") {
        crust_runc::init::main();
    }
    crust_runc::logging::mark_start();
    // runc exits 1 on usage errors (clap's default is 2); help stays 0.
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { 1 } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    let Some(command) = &cli.command else {
        if cli.version {
            println!("{VERSION}");
            std::process::exit(0);
        }
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        std::process::exit(0);
    };
    let format = match cli.log_format.as_str() {
        "json" => crust_runc::logging::Format::Json,
        "text" => crust_runc::logging::Format::Text,
        other => {
            eprintln!("invalid log-format: {other}");
            std::process::exit(1);
        }
    };
    let file = cli.log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| eprintln!("open log file {p:?}: {e}"))
            .ok()
    });
    crust_runc::logging::init(file, format, cli.debug);
    let code = match commands::run(&cli, command) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            crust_runc::logging::error(&msg);
            if crust_runc::logging::has_file() {
                eprintln!("{msg}");
            }
            1
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn containerd_style_invocation_parses() {
        let cli = Cli::try_parse_from([
            "runc",
            "--root",
            "/r",
            "--log",
            "/l",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/p",
            "id1",
        ])
        .expect("parse");
        assert_eq!(cli.root, PathBuf::from("/r"));
        assert!(matches!(cli.command, Some(commands::Command::Create(_))));
        let cli = Cli::try_parse_from(["runc", "exec", "--detach", "id", "sh", "-c", "echo hi"])
            .expect("parse exec");
        match cli.command {
            Some(commands::Command::Exec(e)) => assert_eq!(e.command, ["sh", "-c", "echo hi"]),
            _ => panic!("not exec"),
        }
        Cli::try_parse_from(["runc", "kill", "--all", "id", "KILL"]).expect("kill");
    }
}
